//! kube9-ui: the operator's web UI, served by `kube9-operator ui`.
//!
//! It runs where the person is, with their kubeconfig (or, in the cluster, its own
//! ServiceAccount): every read and write goes to the API server under that identity, so RBAC
//! decides what is shown and what may change, and a refusal is shown as the API server's own
//! message. What only the operator's store holds (every finding, the long history, events) is
//! read the way the VS Code extension reads it: `kube9-operator query … --format=json` exec'd
//! into the first Running ready operator Pod (docs/ui.md).
//!
//! The modules: `args` (flags), `security` (the token, the Origin check, the headers),
//! `trend` (the score chart as SVG), `view` (plain values the pages render), `pages` (HTML,
//! escaped by construction with maud), `cluster` (reads and writes on the API server),
//! `store` (the operator's `query`), `live` (watches → server-sent events), `server` (routes).

pub mod args;
pub mod cluster;
pub mod live;
pub mod pages;
pub mod security;
pub mod server;
pub mod store;
pub mod trend;
pub mod view;

pub use args::Args;
pub use server::run;
