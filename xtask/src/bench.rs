//! `cargo xtask bench`: every benchmark, each printing its figures and a baseline measured in
//! the same run. The check engine and the offline CLI need no cluster; the operator's figures
//! (idle memory and CPU, status latency), an Assessment over 2,000 Deployments and a streamed
//! one over 130,000 objects under a 128Mi memory cgroup are measured on the release binary, as are the pro tier's (upload size for 2,000 Deployments, mapping back
//! 1,000 insights, `kubectl patch` to acknowledgement) and the event history's (resident memory
//! idle and while 50 Events/s flow, ingestion rate and catch-up delay) and the fault table
//! (leader stopped or killed, an endless kube9-server answer, twenty Assessments at once, the
//! API server gone for 30 s: recovery time and peak memory beside one idle process), the web
//! UI's (time to first byte, the first findings page of 100,000, bytes, memory) and the policy
//! reports' (time and API writes to publish 100,000 findings, beside the same run without
//! publishing), against a
//! control plane this command starts (or the one KUBECONFIG names) and stops again.

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
    let binary = root.join("target/release/kube9-operator");
    let bench = |package: &str, name: &str, kubeconfig: Option<&Path>| -> Result<()> {
        let mut command = Command::new(&cargo);
        command
            .current_dir(root)
            .args(["bench", "--locked", "-p", package, "--bench", name])
            .env("KUBE9_OPERATOR_BIN", &binary);
        if let Some(kubeconfig) = kubeconfig {
            command.env("KUBECONFIG", kubeconfig);
        }
        let status = command.status().with_context(|| format!("running cargo bench --bench {name}"))?;
        if !status.success() {
            bail!("the {name} benchmark failed");
        }
        Ok(())
    };
    bench("kube9-checks", "engine", None)?;
    bench("kube9-tests", "cli", None)?;
    let cluster = testenv::up(false, false, &testenv::Kubernetes::requested(None)?)?;
    let result = bench("kube9-tests", "operator", Some(&cluster.kubeconfig))
        .and_then(|()| bench("kube9-tests", "assessment", Some(&cluster.kubeconfig)))
        .and_then(|()| bench("kube9-tests", "scale", Some(&cluster.kubeconfig)))
        .and_then(|()| bench("kube9-tests", "pro", Some(&cluster.kubeconfig)))
        .and_then(|()| bench("kube9-tests", "events", Some(&cluster.kubeconfig)))
        .and_then(|()| bench("kube9-tests", "faults", Some(&cluster.kubeconfig)))
        .and_then(|()| bench("kube9-tests", "argocd", Some(&cluster.kubeconfig)))
        .and_then(|()| bench("kube9-tests", "ui", Some(&cluster.kubeconfig)))
        .and_then(|()| bench("kube9-tests", "reports", Some(&cluster.kubeconfig)));
    if cluster.started_here {
        testenv::down()?;
    }
    result
}
