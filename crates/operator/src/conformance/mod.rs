//! The Kubernetes AI Conformance readiness self-check (docs/ai-conformance.md): the CNCF
//! checklists as data (`checklist`), what the API showed (`evidence`), each requirement judged
//! from it (`evaluate`), the report and its schedule (`report`), and the gathering
//! (`observe`) and the task that runs it (`task`).

pub(crate) mod checklist;
pub(crate) mod evaluate;
pub(crate) mod evidence;
pub(crate) mod observe;
pub(crate) mod report;
pub(crate) mod task;
