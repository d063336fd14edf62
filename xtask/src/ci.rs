//! `cargo xtask ci`: everything CI checks, in the order that fails fastest: the static checks,
//! the unit tests, every cluster and chart test on the current Kubernetes (with a node), then
//! the API-version fallback tests on the oldest supported one (1.20).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::testenv::Kubernetes;
use crate::{checksdoc, crdgen, image, layers, pyenv, testenv};

/// Test counts summed over every summary line cargo and pytest printed.
#[derive(Default)]
pub struct Counts {
    passed: u64,
    failed: u64,
    ignored: u64,
}

pub fn run(root: &Path) -> Result<()> {
    // An interrupt reaches the cargo children (same process group) and ends them; this
    // process stays alive long enough to tear the control plane down.
    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = interrupted.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst)).context("installing the interrupt handler")?;

    let started = Instant::now();
    let mut counts = Counts::default();

    step("cargo fmt --check", || cargo(root, &["fmt", "--all", "--check"]))?;
    step("cargo clippy", || {
        cargo(root, &["clippy", "--workspace", "--all-targets", "--locked", "--", "-D", "warnings"])
    })?;
    step("crdgen --check", || crdgen::run(root, true))?;
    step("checks-doc --check", || checksdoc::run(root, true))?;
    step("layers", || layers::run(root))?;
    step("unit tests", || cargo_test(root, &["--workspace", "--exclude", "kube9-tests"], None, &mut counts))?;

    // The cluster tests run the operator binary as a process, as a cluster would.
    step("build the operator and the kube9-server simulator", || {
        cargo(root, &["build", "--locked", "-p", "kube9-operator", "-p", "kube9-server-sim"])
    })?;
    let python = step("python environment for the chart tests", || pyenv::ensure(root))?;
    let image = step("operator image", || image::build(root))?;

    // Leg 1: every cluster and chart test on the current Kubernetes, with a node.
    let current = Kubernetes::requested(None)?;
    let leg = format!("Kubernetes {}", current.label());
    let cluster = step(&format!("testenv up --node ({leg})"), || testenv::up(false, true, &current))?;
    if testenv::node::running(&testenv::state_dir()) {
        step("import the operator image into the node", || testenv::node::import_image(&testenv::state_dir(), &image))?;
    }
    // The real components some tests need (their own modules; built once and cached).
    let with_addons = cluster.started_here;
    if with_addons {
        step(&format!("testenv up --with {} ({leg})", ADDON_NAMES), || {
            testenv::addons::up(&testenv::state_dir(), &current, &cluster.kubeconfig, ADDONS)
        })?;
    }
    let tests = step(&format!("cluster tests ({leg})"), || {
        if interrupted.load(Ordering::SeqCst) {
            bail!("interrupted");
        }
        // With the add-ons started here, their tests must run rather than skip.
        let require: &[(&str, &str)] = if with_addons { &[("KUBE9_REQUIRE_ADDONS", "1")] } else { &[] };
        cargo_test_env(root, &["--package", "kube9-tests"], Some(&cluster.kubeconfig), require, &mut counts)
    })
    .and_then(|()| {
        step(&format!("chart and image tests ({leg})"), || {
            if interrupted.load(Ordering::SeqCst) {
                bail!("interrupted");
            }
            // CI has a node, so the end-to-end tests must run rather than skip.
            pytest(root, &python, &cluster.kubeconfig, &["--require-node".to_owned()], &mut counts)
        })
    })
    .and_then(|()| {
        // After the others (its 200 fake Nodes would be in every test's view), before the outage
        // test: a scale test right after an API server restart measured the restart as well.
        if !cluster.started_here {
            return Ok(());
        }
        step(&format!("testenv up --kwok {KWOK_NODES} ({leg})"), || {
            let bin = testenv::ensure_binaries(&current, true)?;
            testenv::kwok::up(&testenv::state_dir(), &current, &bin, &cluster.kubeconfig, KWOK_NODES, 4)
        })?;
        step(&format!("scale test: {KWOK_NODES} kwok Nodes, 5,000 Pods ({leg})"), || {
            if interrupted.load(Ordering::SeqCst) {
                bail!("interrupted");
            }
            // And the AI Conformance rows of accelerator Nodes (the first 4 have GPUs).
            let args = ["--package", "kube9-tests", "--test", "cluster", "--", "kwok::", "ai_conformance::kwok_"];
            cargo_test_env(root, &args, Some(&cluster.kubeconfig), &[("KUBE9_REQUIRE_KWOK", "1")], &mut counts)
        })
    })
    .and_then(|()| {
        // Alone, last: these stop the local API server for a while.
        if !cluster.started_here {
            return Ok(());
        }
        step(&format!("API server outage tests, alone ({leg})"), || {
            if interrupted.load(Ordering::SeqCst) {
                bail!("interrupted");
            }
            let args = ["--package", "kube9-tests", "--test", "cluster", "--", "--ignored", "--test-threads", "1"];
            cargo_test(root, &args, Some(&cluster.kubeconfig), &mut counts)
        })
    });
    let teardown = if cluster.started_here {
        step("testenv down", testenv::down)
    } else {
        println!("==> leaving the existing cluster at {} as it was", cluster.kubeconfig.display());
        Ok(())
    };

    // Leg 2: the oldest supported Kubernetes, for the old side of every API-version fallback
    // (and the CRDs). Only on a local control plane: a cluster KUBECONFIG names has one version.
    let oldest = if cluster.started_here && tests.is_ok() && teardown.is_ok() {
        oldest_leg(root, &interrupted, &mut counts)
    } else {
        Ok(())
    };

    println!("==> ci finished in {:.0?}", started.elapsed());
    println!("ci: {} passed, {} failed, {} skipped", counts.passed, counts.failed, counts.ignored);
    tests?;
    teardown?;
    oldest
}

/// The cluster tests that tell old servers from new (`versions::`, `crds::`, `cel::`, and the AI
/// Conformance self-check's "older than every checklist" path) on 1.20.
fn oldest_leg(root: &Path, interrupted: &AtomicBool, counts: &mut Counts) -> Result<()> {
    let oldest = Kubernetes::Debian;
    let leg = format!("Kubernetes {}", oldest.label());
    let cluster = step(&format!("testenv up ({leg})"), || testenv::up(true, false, &oldest))?;
    let tests = step(&format!("API-version fallback and CRD tests ({leg})"), || {
        if interrupted.load(Ordering::SeqCst) {
            bail!("interrupted");
        }
        let mut args = vec!["--package", "kube9-tests", "--test", "cluster", "--"];
        args.extend(OLDEST_LEG_TESTS);
        cargo_test(root, &args, Some(&cluster.kubeconfig), counts)
    });
    let teardown = step("testenv down", testenv::down);
    tests?;
    teardown
}

/// The add-ons of the current-version leg.
const ADDONS: &[testenv::addons::Addon] =
    &[testenv::addons::Addon::GatewayApi, testenv::addons::Addon::Kueue, testenv::addons::Addon::MetricsServer];
const ADDON_NAMES: &str = "gateway-api,kueue,metrics-server";

/// The fake Nodes of the scale test.
const KWOK_NODES: u32 = 200;

/// The test modules run on the oldest version too.
const OLDEST_LEG_TESTS: &[&str] = &["versions::", "crds::", "cel::", "ai_conformance::any_server"];

/// `cargo xtask chart-test`: the pytest suite alone, against a cluster that is already up.
pub fn chart_test(root: &Path, args: &[String]) -> Result<()> {
    let kubeconfig = match std::env::var_os("KUBECONFIG") {
        Some(path) => std::path::absolute(PathBuf::from(path))?,
        None => testenv::state_dir().join("kubeconfig"),
    };
    if !kubeconfig.exists() {
        bail!("{} does not exist: run `cargo xtask testenv up` first (or set KUBECONFIG)", kubeconfig.display());
    }
    cargo(root, &["build", "--locked", "-p", "kube9-operator", "-p", "kube9-server-sim"])?;
    let python = pyenv::ensure(root)?;
    let mut counts = Counts::default();
    let result = pytest(root, &python, &kubeconfig, args, &mut counts);
    println!("chart-test: {} passed, {} failed, {} skipped", counts.passed, counts.failed, counts.ignored);
    result
}

/// Runs one named step and prints how long it took.
fn step<T>(name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    println!("==> {name}");
    let started = Instant::now();
    let result = f().with_context(|| format!("step `{name}` failed"));
    let outcome = if result.is_ok() { "ok" } else { "FAILED" };
    println!("==> {name}: {outcome} in {:.1?}", started.elapsed());
    result
}

fn cargo_command(root: &Path) -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(root);
    cmd
}

fn cargo(root: &Path, args: &[&str]) -> Result<()> {
    let status = cargo_command(root).args(args).status().context("running cargo")?;
    if !status.success() {
        bail!("cargo {} exited with {status}", args.join(" "));
    }
    Ok(())
}

/// `cargo test` with its output passed through and its result lines counted.
fn cargo_test(root: &Path, args: &[&str], kubeconfig: Option<&Path>, counts: &mut Counts) -> Result<()> {
    cargo_test_env(root, args, kubeconfig, &[], counts)
}

/// `cargo_test` with more environment variables.
fn cargo_test_env(
    root: &Path,
    args: &[&str],
    kubeconfig: Option<&Path>,
    env: &[(&str, &str)],
    counts: &mut Counts,
) -> Result<()> {
    let mut cmd = cargo_command(root);
    cmd.arg("test").arg("--locked").args(args).envs(env.iter().copied()).stdout(Stdio::piped());
    if let Some(path) = kubeconfig {
        cmd.env("KUBECONFIG", path);
    }
    let mut child = cmd.spawn().context("running cargo test")?;
    let stdout = child.stdout.take().context("cargo test has no stdout")?;
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading cargo test output")?;
        println!("{line}");
        count(&line, counts);
    }
    let status = child.wait().context("waiting for cargo test")?;
    if !status.success() {
        bail!("cargo test {} exited with {status}", args.join(" "));
    }
    Ok(())
}

/// pytest over tests/chart (the chart, RBAC and image tests) against `kubeconfig`.
pub fn pytest(root: &Path, python: &Path, kubeconfig: &Path, args: &[String], counts: &mut Counts) -> Result<()> {
    let mut cmd = Command::new(python);
    cmd.current_dir(root.join("tests/chart"))
        .args(["-m", "pytest", "-v", "-p", "no:cacheprovider", "--durations=5"])
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .stdout(Stdio::piped());
    let mut child = cmd.spawn().context("running pytest")?;
    let stdout = child.stdout.take().context("pytest has no stdout")?;
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading pytest output")?;
        println!("{line}");
        count_pytest(&line, counts);
    }
    let status = child.wait().context("waiting for pytest")?;
    if !status.success() {
        bail!("pytest exited with {status}");
    }
    Ok(())
}

/// Adds the figures of pytest's closing line (`==== 2 failed, 30 passed, 1 skipped in 9.1s ====`).
fn count_pytest(line: &str, counts: &mut Counts) {
    let Some(inner) = line.strip_prefix('=').map(|l| l.trim_matches(|c| c == '=' || c == ' ')) else { return };
    let Some((figures, _time)) = inner.rsplit_once(" in ") else { return };
    let mut found = Counts::default();
    for part in figures.split(", ") {
        let Some((n, label)) = part.split_once(' ') else { return };
        let Ok(n) = n.parse::<u64>() else { return };
        match label {
            "passed" => found.passed += n,
            "failed" | "error" | "errors" => found.failed += n,
            "skipped" | "deselected" | "xfailed" | "xpassed" => found.ignored += n,
            _ => return,
        }
    }
    counts.passed += found.passed;
    counts.failed += found.failed;
    counts.ignored += found.ignored;
}

/// Adds the figures of a libtest summary line (`test result: ok. 3 passed; 0 failed; 1 ignored; ...`).
fn count(line: &str, counts: &mut Counts) {
    let Some(rest) = line.strip_prefix("test result: ") else { return };
    for part in rest.split(';') {
        let mut words = part.split_whitespace().rev();
        let (Some(label), Some(n)) = (words.next(), words.next()) else { continue };
        let Ok(n) = n.parse::<u64>() else { continue };
        match label {
            "passed" => counts.passed += n,
            "failed" => counts.failed += n,
            "ignored" => counts.ignored += n,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_lines_are_added_up() {
        let mut counts = Counts::default();
        count(
            "test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s",
            &mut counts,
        );
        count("test result: FAILED. 2 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out", &mut counts);
        count("running 3 tests", &mut counts);
        assert_eq!((counts.passed, counts.failed, counts.ignored), (5, 1, 1));
    }

    #[test]
    fn pytest_closing_lines_are_added_up() {
        let mut counts = Counts::default();
        count_pytest("==================== 2 failed, 30 passed, 1 skipped in 9.12s ====================", &mut counts);
        count_pytest("============================= 4 passed in 0.70s ==============================", &mut counts);
        count_pytest("=================================== FAILURES ===================================", &mut counts);
        count_pytest("=========== short test summary info in brief ===========", &mut counts);
        count_pytest("= 1 error in 0.1s =", &mut counts);
        assert_eq!((counts.passed, counts.failed, counts.ignored), (34, 3, 1));
    }
}
