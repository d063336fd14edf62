//! Project automation, run as `cargo xtask <command>`.

mod bench;
mod browser;
mod checksdoc;
mod ci;
mod crdgen;
mod demo;
mod docs;
mod image;
mod layers;
mod pyenv;
mod testenv;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "kube9-operator project automation")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write docs/checks.md from the check registry.
    ChecksDoc {
        /// Write nothing; fail and show the difference when the committed copy is stale.
        #[arg(long)]
        check: bool,
    },
    /// Write the CRD YAML (crds/ and the chart's crds/) from the Rust types.
    Crdgen {
        /// Write nothing; fail and show the difference when a committed copy is stale.
        #[arg(long)]
        check: bool,
    },
    /// A real Kubernetes control plane on loopback for tests and the demo.
    Testenv {
        #[command(subcommand)]
        command: testenv::Command,
    },
    /// The operator against the local control plane: without a key, then with one.
    Demo {
        /// Install the chart on a real node instead (`testenv up --node`), the operator as a Pod.
        #[arg(long)]
        node: bool,
    },
    /// Check the documentation against the tree: README size and first screen, links, no
    /// outside paths, docs/architecture.md's crates and modules.
    Docs,
    /// Check that no crate under crates/ has an import circle between its modules, and the
    /// operator crate's layering (docs/architecture.md): no import up a layer, no I/O in a rule,
    /// no cycle between flows.
    Layers,
    /// The operator image (no container engine needed), imported into the testenv node.
    Image,
    /// Figures: the release operator's idle memory and CPU, and its status latency.
    Bench,
    /// What the UI's browser tests need: Debian's chromium and chromium-driver, and axe-core
    /// from npm (cached).
    Browser,
    /// Every check CI runs: format, clippy, crdgen --check, unit tests, cluster tests, then
    /// the chart and image tests.
    Ci,
    /// Only the chart, RBAC and image tests (pytest with the real Helm SDK), against the
    /// running testenv or the cluster KUBECONFIG points at. Extra arguments go to pytest.
    ChartTest {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        pytest_args: Vec<String>,
    },
}

/// The workspace root (the parent of xtask/).
fn root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

fn main() {
    let cli = Cli::parse();
    let result: Result<()> = match cli.command {
        Command::Crdgen { check } => crdgen::run(&root(), check),
        Command::ChecksDoc { check } => checksdoc::run(&root(), check),
        Command::Testenv { command } => testenv::run(command),
        Command::Demo { node: false } => demo::run(&root()),
        Command::Demo { node: true } => demo::run_node(&root()),
        Command::Docs => docs::run(&root()),
        Command::Layers => layers::run(&root()),
        Command::Image => image::run(&root()),
        Command::Bench => bench::run(&root()),
        Command::Ci => ci::run(&root()),
        Command::Browser => browser::run(),
        Command::ChartTest { pytest_args } => ci::chart_test(&root(), &pytest_args),
    };
    if let Err(err) = result {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}
