//! An API server outage on the local control plane (`cargo xtask testenv up`): the
//! kube-apiserver that `target/testenv/kube-apiserver.pid` names is stopped, and started again
//! with its own command line after a pause, the way `testenv` started it (its own process
//! group, logging to its log, its pid file rewritten so `testenv down` still stops it).
//!
//! This disturbs every client of that control plane, so the tests that use it are `#[ignore]`d
//! and run alone (`cargo xtask ci` runs them after the others; by hand:
//! `cargo test -p kube9-tests --test cluster -- --ignored --test-threads 1`). They refuse a
//! cluster that is not the local one.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::root;

fn state_dir() -> PathBuf {
    root().join("target/testenv")
}

/// The running kube-apiserver's pid, command line and working directory.
fn current() -> Result<(u32, Vec<String>, PathBuf)> {
    let pid_file = state_dir().join("kube-apiserver.pid");
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .with_context(|| format!("no local control plane ({}): run `cargo xtask testenv up`", pid_file.display()))?
        .trim()
        .parse()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).context("the kube-apiserver is not running")?;
    let args: Vec<String> =
        cmdline.split(|b| *b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
    if !args.first().is_some_and(|a| a.ends_with("kube-apiserver")) {
        bail!("pid {pid} is not a kube-apiserver: {args:?}");
    }
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd"))?;
    Ok((pid, args, cwd))
}

/// Whether the tests run against the local control plane (not a cluster KUBECONFIG names).
pub fn is_local() -> bool {
    let local = state_dir().join("kubeconfig");
    match std::env::var_os("KUBECONFIG").filter(|p| !p.is_empty()) {
        Some(path) => path == local.as_os_str(),
        None => local.exists(),
    }
}

/// Kills the kube-apiserver (SIGKILL, as a crash), waits `outage`, starts it again, and returns
/// the moment its `/readyz` answered ok.
pub async fn outage(outage: Duration) -> Result<Instant> {
    if !is_local() {
        bail!(
            "an API server outage needs the local control plane (`cargo xtask testenv up`), not KUBECONFIG's cluster"
        );
    }
    let (pid, args, cwd) = current()?;
    let log = state_dir().join("logs/kube-apiserver.log");
    Command::new("kill").args(["-KILL", &pid.to_string()]).status()?;
    let gone = Instant::now() + Duration::from_secs(10);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < gone {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(outage).await;
    let out = std::fs::OpenOptions::new().append(true).open(&log)?;
    let child = Command::new(&args[0])
        .args(&args[1..])
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .process_group(0)
        .spawn()
        .context("starting the kube-apiserver again")?;
    std::fs::write(state_dir().join("kube-apiserver.pid"), child.id().to_string())?;
    ready_again(&log).await
}

/// Pauses the local etcd (SIGSTOP: the API server stays up but cannot read or write), waits
/// `pause`, lets it go on (SIGCONT), and returns the moment the API server's `/readyz` answered ok.
pub async fn etcd_pause(pause: Duration) -> Result<Instant> {
    if !is_local() {
        bail!("pausing etcd needs the local control plane (`cargo xtask testenv up`), not KUBECONFIG's cluster");
    }
    let pid_file = state_dir().join("etcd.pid");
    let pid = std::fs::read_to_string(&pid_file)
        .with_context(|| format!("no local etcd ({})", pid_file.display()))?
        .trim()
        .to_owned();
    Command::new("kill").args(["-STOP", &pid]).status()?;
    tokio::time::sleep(pause).await;
    Command::new("kill").args(["-CONT", &pid]).status()?;
    ready_again(&state_dir().join("logs/kube-apiserver.log")).await
}

/// Waits (60 s at most) until the API server's `/readyz` answers ok; returns that moment.
async fn ready_again(log: &std::path::Path) -> Result<Instant> {
    let kubeconfig = state_dir().join("kubeconfig");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = Command::new("kubectl")
            .args(["get", "--raw", "/readyz"])
            .env("KUBECONFIG", &kubeconfig)
            .output()
            .is_ok_and(|o| o.status.success());
        if ready {
            return Ok(Instant::now());
        }
        if Instant::now() > deadline {
            bail!("the kube-apiserver was not ready within 60 s; see {}", log.display());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
