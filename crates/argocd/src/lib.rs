//! Argo CD as kube9 reads it, from the Kubernetes API only (no Argo CD token, nothing written
//! to Argo CD's objects): the Application and AppProject model (`app`), what the operator keeps
//! of each Application and the drift it records (`record`), Argo CD's resource health rules
//! (`health`), an Application's resource tree (`tree`) and whether Argo CD is installed
//! (`detect`). No client and no I/O: the operator lists and watches, the checks read
//! snapshots, and both hand the objects here.

pub mod app;
pub mod detect;
pub mod health;
pub mod record;
pub mod tree;
