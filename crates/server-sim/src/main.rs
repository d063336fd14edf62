//! `kube9-server-sim`: run the simulator as a process (for the demo).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use kube9_server_sim::{Options, Simulator};

/// A kube9-server simulator for tests and demos, on loopback.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Serve HTTPS with a generated CA (see --ca-out).
    #[arg(long)]
    tls: bool,
    /// Write the CA certificate (PEM) here.
    #[arg(long)]
    ca_out: Option<PathBuf>,
    /// An API key to accept (repeatable).
    #[arg(long = "api-key")]
    api_keys: Vec<String>,
    /// An API key to answer as expired (repeatable).
    #[arg(long = "expired-key")]
    expired_keys: Vec<String>,
    #[arg(long, default_value_t = 60)]
    status_interval_seconds: u64,
    #[arg(long, default_value_t = 24.0)]
    reregistration_interval_hours: f64,
    /// `configuration.metricsIntervalSeconds` told to registering operators.
    #[arg(long, default_value_t = 3600)]
    metrics_interval_seconds: u64,
    /// Answer every metrics upload with one more insight, about an object no operator sent
    /// (also `PUT /_sim/unmappable`).
    #[arg(long)]
    extra_unmappable_insight: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter("info").with_writer(std::io::stderr).init();
    let cli = Cli::parse();
    let sim = Simulator::start(Options {
        listen: cli.listen,
        tls: cli.tls,
        tls_identity: None,
        api_keys: cli.api_keys,
        expired_keys: cli.expired_keys,
        status_update_interval_seconds: cli.status_interval_seconds,
        reregistration_interval_hours: cli.reregistration_interval_hours,
        metrics_interval_seconds: cli.metrics_interval_seconds,
        extra_unmappable_insight: cli.extra_unmappable_insight,
        insight_text_suffix: String::new(),
    })
    .await?;
    if let (Some(path), Some(pem)) = (&cli.ca_out, sim.ca_pem()) {
        std::fs::write(path, pem).with_context(|| format!("writing {}", path.display()))?;
    }
    let mut out = std::io::stdout();
    writeln!(out, "listening on {}", sim.url())?;
    out.flush()?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    sim.shutdown().await;
    Ok(())
}
