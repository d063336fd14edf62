//! `kube9-operator ui`'s flags.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Serve the web UI: the operator's status, Assessments, findings, insights and events.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Where to listen. A loopback address unless --allow-remote is given.
    #[arg(long, default_value = "127.0.0.1:8484", env = "KUBE9_UI_ADDRESS")]
    pub address: SocketAddr,
    /// Allow an address other than loopback (anyone who reaches it acts with this process's
    /// identity); logs a warning.
    #[arg(long, env = "KUBE9_UI_ALLOW_REMOTE")]
    pub allow_remote: bool,
    /// A host name the browser may reach the UI by, besides localhost and IP addresses (say,
    /// the name of an Ingress in front of it); repeat it, or give several separated by commas.
    /// A request naming any other host is refused, so that no web page can reach the UI by
    /// pointing a name of its own at this address (DNS rebinding).
    #[arg(long = "allowed-host", env = "KUBE9_UI_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,
    /// A kubeconfig context to show (repeat for several: the first page is then the fleet).
    /// Without it, the current context (or, in a Pod, its ServiceAccount).
    #[arg(long = "context")]
    pub contexts: Vec<String>,
    /// Every context of the kubeconfig, as a fleet.
    #[arg(long, conflicts_with = "contexts")]
    pub all_contexts: bool,
    /// No Acknowledge, Reopen or Run now buttons, and POSTs refused (the chart sets it unless
    /// writes are granted).
    #[arg(long, env = "KUBE9_UI_READ_ONLY")]
    pub read_only: bool,
    /// The namespace of the operator's Pods when the OperatorStatus does not name it.
    #[arg(long, default_value = "kube9-system")]
    pub operator_namespace: String,
    /// Read the store from this data directory on this machine (`kube9-operator query
    /// --data-dir`) instead of exec'ing into the operator's Pod: for an operator run as a
    /// process beside the UI.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// The log level (RUST_LOG syntax).
    #[arg(long, default_value = "info", env = "KUBE9_LOG_LEVEL")]
    pub log_level: String,
}
