//! Argo CD awareness's I/O (docs/argocd.md): the watches that follow Argo CD and its
//! Applications, and the `query argocd` command, all reading the Kubernetes API (no Argo CD
//! token, nothing written to Argo CD's objects). What they read is judged by `kube9_argocd`.

pub mod listed;
pub mod query;
pub mod watch;
