//! The Kubernetes AI Conformance readiness self-check (docs/ai-conformance.md), without a
//! client: the CNCF checklists as data (`checklist`), what the API showed (`evidence`), each
//! requirement judged from it (`evaluate`, one module per family of requirements, and the
//! known products it looks for in `solutions`), and the report and its schedule (`report`).
//! The operator gathers the evidence and runs the self-check.

pub mod checklist;
pub mod evaluate;
pub mod evidence;
pub mod report;
pub mod solutions;
