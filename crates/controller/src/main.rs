//! The kube9-operator binary: parse and validate configuration, then run.

use clap::Parser;
use kube9_operator::config::{Config, Flags};

fn main() -> std::process::ExitCode {
    kube9_operator::memory::limit_arenas();
    if std::env::args_os().nth(1).is_some_and(|a| a == "assess") {
        return assess(std::env::args_os().skip(1));
    }
    match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime.block_on(operate()),
        Err(e) => {
            eprintln!("kube9-operator: cannot start the async runtime: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn operate() -> std::process::ExitCode {
    let flags = Flags::parse();
    let config = match Config::from_flags(flags, std::env::var("KUBE9_API_KEY").ok()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("kube9-operator: invalid configuration: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    // TLS for kube9-server uses rustls with the ring provider, like the Kubernetes client.
    let _ = rustls::crypto::ring::default_provider().install_default();
    kube9_operator::telemetry::init(&config.log_level, config.log_format);
    match kube9_operator::run(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "kube9-operator stopped");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `kube9-operator assess`: the checks over manifests, offline.
fn assess(args: impl Iterator<Item = std::ffi::OsString>) -> std::process::ExitCode {
    use std::io::Write;
    let args = kube9_operator::assess::Args::parse_from(args);
    let outcome = kube9_operator::assess::run(&args);
    let _ = std::io::stderr().write_all(outcome.stderr.as_bytes());
    let _ = std::io::stdout().write_all(outcome.stdout.as_bytes());
    std::process::ExitCode::from(outcome.code)
}
