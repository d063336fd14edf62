//! The Kubernetes AI Conformance readiness self-check's I/O (docs/ai-conformance.md): the
//! gathering of the evidence from the API server (`observe`) and the task that runs the
//! self-check when due and records its report (`task`). The checklists and the judging are
//! `kube9_conformance`'s.

pub(crate) mod observe;
pub(crate) mod task;
