//! The kube9-operator binary: `run` (the default: the operator in a cluster) and `assess` (the
//! checks over manifest files, offline).

use clap::{Parser, Subcommand};
use kube9_operator::base::config::{Config, Flags};

/// The in-cluster half of the kube9 toolkit.
#[derive(Parser, Debug)]
#[command(name = "kube9-operator", version, about, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// With no subcommand: `run`'s flags.
    #[command(flatten)]
    run: Flags,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the operator (the default when no subcommand is given).
    Run(Box<Flags>),
    /// Assess Kubernetes manifests against the Well-Architected checks, without a cluster.
    Assess(kube9_assess::Args),
}

fn main() -> std::process::ExitCode {
    kube9_operator::base::memory::limit_arenas();
    let cli = Cli::parse();
    let flags = match cli.command {
        Some(Command::Assess(args)) => return assess(&args),
        Some(Command::Run(flags)) => *flags,
        None => cli.run,
    };
    match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime.block_on(operate(flags)),
        Err(e) => {
            eprintln!("kube9-operator: cannot start the async runtime: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn operate(flags: Flags) -> std::process::ExitCode {
    let config = match Config::from_flags(flags, std::env::var("KUBE9_API_KEY").ok()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("kube9-operator: invalid configuration: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    // TLS for kube9-server uses rustls with the ring provider, like the Kubernetes client.
    let _ = rustls::crypto::ring::default_provider().install_default();
    kube9_operator::base::telemetry::init(&config.log_level, config.log_format);
    match kube9_operator::run(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "kube9-operator stopped");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `kube9-operator assess`: the checks over manifests, offline.
fn assess(args: &kube9_assess::Args) -> std::process::ExitCode {
    use std::io::Write;
    let outcome = kube9_assess::run(args);
    let _ = std::io::stderr().write_all(outcome.stderr.as_bytes());
    let _ = std::io::stdout().write_all(outcome.stdout.as_bytes());
    std::process::ExitCode::from(outcome.code)
}
