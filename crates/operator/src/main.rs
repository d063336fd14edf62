//! The kube9-operator binary: `run` (the default: the operator in a cluster), `assess` (the
//! checks over manifest files, offline), `query` (the operator's store, read-only) and `ui` (the
//! web UI, on the user's own identity).

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
    /// Read the running operator's store (event history, Assessment runs, the status), or Argo
    /// CD's Applications from the API server.
    Query(QueryArgs),
    /// Serve the web UI (127.0.0.1:8484 by default) on your kubeconfig's identity.
    Ui(kube9_ui::Args),
}

/// `query`: the store's commands, and `argocd`, which reads the API server.
#[derive(clap::Args, Debug)]
struct QueryArgs {
    /// The operator's data directory (the chart sets KUBE9_DATA_DIR in the container).
    #[arg(long, env = "KUBE9_DATA_DIR", global = true)]
    data_dir: Option<std::path::PathBuf>,
    #[command(subcommand)]
    what: QueryWhat,
}

#[derive(Subcommand, Debug)]
enum QueryWhat {
    /// Argo CD Applications and their resource trees, read live from the API server.
    Argocd {
        #[command(subcommand)]
        command: kube9_operator::ArgoCdQuery,
    },
    #[command(flatten)]
    Store(kube9_store::cli::What),
}

fn main() -> std::process::ExitCode {
    kube9_operator::base::memory::limit_arenas();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return bad_arguments(e),
    };
    let flags = match cli.command {
        Some(Command::Assess(args)) => return assess(&args),
        Some(Command::Query(args)) => return query(args),
        Some(Command::Ui(args)) => return ui(args),
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

/// Flags clap refuses: `query`'s callers read a JSON error naming the flag on stderr (exit 2);
/// everything else gets clap's own message.
fn bad_arguments(error: clap::Error) -> std::process::ExitCode {
    use clap::error::ErrorKind;
    let is_query = std::env::args().nth(1).as_deref() == Some("query");
    let shown = matches!(
        error.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    );
    if !is_query || shown {
        error.exit();
    }
    let rendered = error.render().to_string();
    let message = rendered.lines().next().unwrap_or_default().trim_start_matches("error: ");
    write(&kube9_store::cli::failure(2, "bad-flag", message))
}

/// `kube9-operator query`: the store, read-only, beside the running operator; `query argocd`
/// asks the API server.
fn query(args: QueryArgs) -> std::process::ExitCode {
    match args.what {
        QueryWhat::Store(what) => {
            // In a standby the leader answers: every Pod gives the leader's answer.
            let words: Vec<String> = std::env::args().skip_while(|a| a != "query").skip(1).collect();
            if let Some(dir) = &args.data_dir
                && let Some(outcome) = kube9_operator::forward_query(dir, &words)
            {
                return write(&outcome);
            }
            write(&kube9_store::cli::run(&kube9_store::cli::Args { data_dir: args.data_dir, what }))
        }
        QueryWhat::Argocd { command } => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(runtime) => write(&runtime.block_on(kube9_operator::argocd_query(&command))),
                Err(e) => {
                    write(&kube9_store::cli::failure(1, "runtime", &format!("cannot start the async runtime: {e}")))
                }
            }
        }
    }
}

fn write(outcome: &kube9_store::cli::Outcome) -> std::process::ExitCode {
    use std::io::Write;
    let _ = std::io::stderr().write_all(outcome.stderr.as_bytes());
    let _ = std::io::stdout().write_all(outcome.stdout.as_bytes());
    std::process::ExitCode::from(outcome.code)
}

/// `kube9-operator ui`: the web UI until SIGTERM or Ctrl-C.
fn ui(args: kube9_ui::Args) -> std::process::ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    kube9_operator::base::telemetry::init(&args.log_level, kube9_operator::base::config::LogFormat::Auto);
    match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(runtime) => match runtime.block_on(kube9_ui::run(args)) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("kube9-operator ui: {e:#}");
                std::process::ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("kube9-operator ui: cannot start the async runtime: {e}");
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
