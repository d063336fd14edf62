//! `cargo xtask bench`: the operator's figures (idle memory and CPU, status latency), measured
//! on the release binary against a control plane this command starts (or the one KUBECONFIG
//! names) and stops again.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::testenv;

pub fn run(root: &Path) -> Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(&cargo)
        .current_dir(root)
        .args(["build", "--release", "--locked", "-p", "kube9-operator"])
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("building the release operator failed");
    }
    let cluster = testenv::up(false, false)?;
    let result = Command::new(&cargo)
        .current_dir(root)
        .args(["bench", "--locked", "-p", "kube9-tests", "--bench", "operator"])
        .env("KUBECONFIG", &cluster.kubeconfig)
        .env("KUBE9_OPERATOR_BIN", root.join("target/release/kube9-operator"))
        .status()
        .context("running cargo bench");
    if cluster.started_here {
        testenv::down()?;
    }
    if !result?.success() {
        bail!("the benchmark failed");
    }
    Ok(())
}
