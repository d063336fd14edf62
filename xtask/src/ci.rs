//! `cargo xtask ci`: everything CI checks, in the order that fails fastest: the static checks,
//! the unit tests, every cluster and chart test on the current Kubernetes (with a node), then
//! the API-version fallback tests on the oldest supported one (1.20).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::testenv::Kubernetes;
use crate::{browser, checksdoc, crdgen, image, layers, pyenv, testenv};

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

    let steps = Steps::new();
    let mut counts = Counts::default();
    let mut prepared = Prepared::default();
    let result = steps.run("cargo fmt --check", || cargo(root, &["fmt", "--all", "--check"])).and_then(|()| {
        prepared = prepare(root, &steps)?;
        steps_after_fmt(root, &steps, &prepared, &interrupted, &mut counts)
    });
    // After a failure, what no step waited for is of no use: stop it rather than leave it
    // running after CI has answered.
    prepared.stop();
    print!("{}", steps.table());
    println!("ci: {} passed, {} failed, {} skipped", counts.passed, counts.failed, counts.ignored);
    result
}

/// Starts building what later steps need beside the steps that come first. The control plane
/// of the first leg (and its add-ons) is needed as soon as the Rust builds are done, so it
/// builds at the same priority as they do; the operator image, kwok and the 1.20 control plane
/// are needed only after the cluster tests, which mostly wait on the API server, so they build
/// at the lowest priority and take the CPU those steps leave idle.
fn prepare(root: &Path, steps: &Steps) -> Result<Prepared> {
    let mut prepared = Prepared::default();
    let current = Kubernetes::requested(None)?;
    // A cluster KUBECONFIG names runs the tests instead of local control planes: build none.
    let local = testenv::existing_cluster().is_none();
    if local {
        let kubernetes = current.clone();
        prepared.start(
            steps,
            Priority::Normal,
            vec![
                Job::new(Need::ControlPlane, format!("Kubernetes {} and etcd", current.label()), move || {
                    testenv::prepare(&kubernetes, true).map(drop)
                }),
                Job::new(Need::Addons, format!("add-ons {ADDON_NAMES}"), || testenv::addons::build(ADDONS)),
                Job::new(
                    Need::Consumers,
                    "promtool, Prometheus, the dashboard validator, the report and Trivy CRD modules".into(),
                    testenv::consumers::build,
                ),
            ],
        );
    }
    let root = root.to_path_buf();
    let mut later = vec![Job::new(Need::Image, "operator image".into(), move || image::build(&root).map(drop))];
    if local {
        later.push(Job::new(Need::Kwok, format!("kwok {}", testenv::kwok::VERSION), testenv::kwok::build));
        later.push(Job::new(Need::Oldest, format!("Kubernetes {}", Kubernetes::Debian.label()), || {
            testenv::prepare(&Kubernetes::Debian, false).map(drop)
        }));
    }
    prepared.start(steps, Priority::Idle, later);
    Ok(prepared)
}

fn steps_after_fmt(
    root: &Path,
    steps: &Steps,
    prepared: &Prepared,
    interrupted: &AtomicBool,
    counts: &mut Counts,
) -> Result<()> {
    steps.run("cargo clippy", || {
        cargo(root, &["clippy", "--workspace", "--all-targets", "--locked", "--", "-D", "warnings"])
    })?;
    steps.run("crdgen --check", || crdgen::run(root, true))?;
    steps.run("checks-doc --check", || checksdoc::run(root, true))?;
    steps.run("layers", || layers::run(root))?;
    // The cluster tests run the operator binary as a process, as a cluster would.
    let tests =
        steps.run("build the tests, the operator and the kube9-server simulator", || TestBinaries::build(root))?;
    steps.run("unit tests", || {
        tests.run_unit(counts)?;
        cargo_test(root, &["--workspace", "--doc"], counts)
    })?;
    let python = steps.run("python environment for the chart tests", || pyenv::ensure(root))?;
    let axe = steps.run("browser for the UI tests (chromium, chromium-driver, axe-core)", browser::ensure)?;
    let axe = axe.to_string_lossy().into_owned();

    // Leg 1: every cluster and chart test on the current Kubernetes, with a node.
    let current = Kubernetes::requested(None)?;
    let leg = format!("Kubernetes {}", current.label());
    prepared.wait(steps, Need::ControlPlane)?;
    let cluster = steps.run(&format!("testenv up --node ({leg})"), || testenv::up(false, true, &current))?;
    // The real components some tests need (their own modules; built once and cached).
    let with_addons = cluster.started_here;
    if with_addons {
        prepared.wait(steps, Need::Addons)?;
        steps.run(&format!("testenv up --with {ADDON_NAMES} ({leg})"), || {
            testenv::addons::up(&testenv::state_dir(), &current, &cluster.kubeconfig, ADDONS)
        })?;
    }
    let kubeconfig = cluster.kubeconfig.as_path();
    if cluster.started_here {
        prepared.wait(steps, Need::Consumers)?;
    }
    let tests_passed = steps
        .run(&format!("cluster tests ({leg})"), || {
            interruption(interrupted)?;
            // With the add-ons started here, their tests must run rather than skip; so must the
            // browser tests, whose browser was installed above.
            let mut require = vec![(browser::AXE_ENV, axe.as_str()), ("KUBE9_REQUIRE_BROWSER", "1")];
            if with_addons {
                require.push(("KUBE9_REQUIRE_ADDONS", "1"));
            }
            tests.run_cluster(&[], kubeconfig, &require, counts)
        })
        .and_then(|()| {
            // Only the chart tests use the image: it was built while the cluster tests ran.
            prepared.wait(steps, Need::Image)?;
            if testenv::node::running(&testenv::state_dir()) {
                steps.run("import the operator image into the node", || {
                    testenv::node::import_image(&testenv::state_dir(), &image::archive(root))
                })?;
            }
            steps.run(&format!("chart and image tests ({leg})"), || {
                interruption(interrupted)?;
                // CI has a node, so the end-to-end tests must run rather than skip.
                pytest(root, &python, kubeconfig, &["--require-node".to_owned()], counts)
            })
        })
        .and_then(|()| {
            // After the others (its 200 fake Nodes would be in every test's view), before the outage
            // test: a scale test right after an API server restart measured the restart as well.
            if !cluster.started_here {
                return Ok(());
            }
            prepared.wait(steps, Need::Kwok)?;
            steps.run(&format!("testenv up --kwok {KWOK_NODES} ({leg})"), || {
                let bin = testenv::ensure_binaries(&current, true)?;
                testenv::kwok::up(&testenv::state_dir(), &current, &bin, kubeconfig, KWOK_NODES, 4)
            })?;
            steps.run(&format!("scale test: {KWOK_NODES} kwok Nodes, 5,000 Pods ({leg})"), || {
                interruption(interrupted)?;
                // And the AI Conformance rows of accelerator Nodes (the first 4 have GPUs).
                let args = ["kwok::", "ai_conformance::kwok_"];
                tests.run_cluster(&args, kubeconfig, &[("KUBE9_REQUIRE_KWOK", "1")], counts)
            })
        })
        .and_then(|()| {
            // Alone, last: these stop the local API server for a while.
            if !cluster.started_here {
                return Ok(());
            }
            steps.run(&format!("API server outage tests, alone ({leg})"), || {
                interruption(interrupted)?;
                let args = ["--ignored", "--test-threads", "1"];
                tests.run_cluster(&args, kubeconfig, &[], counts)
            })
        });
    let teardown = if cluster.started_here {
        steps.run("testenv down", testenv::down)
    } else {
        println!("==> leaving the existing cluster at {} as it was", cluster.kubeconfig.display());
        Ok(())
    };
    tests_passed?;
    teardown?;

    // Leg 2: the oldest supported Kubernetes, for the old side of every API-version fallback
    // (and the CRDs). Only on a local control plane: a cluster KUBECONFIG names has one version.
    if !cluster.started_here {
        return Ok(());
    }
    prepared.wait(steps, Need::Oldest)?;
    oldest_leg(steps, &tests, interrupted, counts)
}

fn interruption(interrupted: &AtomicBool) -> Result<()> {
    if interrupted.load(Ordering::SeqCst) {
        bail!("interrupted");
    }
    Ok(())
}

/// The cluster tests that tell old servers from new (`versions::`, `crds::`, `cel::`, and the AI
/// Conformance self-check's "older than every checklist" path) on 1.20.
fn oldest_leg(steps: &Steps, tests: &TestBinaries, interrupted: &AtomicBool, counts: &mut Counts) -> Result<()> {
    let oldest = Kubernetes::Debian;
    let leg = format!("Kubernetes {}", oldest.label());
    let cluster = steps.run(&format!("testenv up ({leg})"), || testenv::up(true, false, &oldest))?;
    let tests = steps.run(&format!("API-version fallback and CRD tests ({leg})"), || {
        interruption(interrupted)?;
        tests.run_cluster(OLDEST_LEG_TESTS, &cluster.kubeconfig, &[], counts)
    });
    let teardown = steps.run("testenv down", testenv::down);
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

/// The integration test target with the cluster tests (tests/cluster).
const CLUSTER_TESTS: &str = "cluster";

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

/// Every step CI ran (and each build beside them), for the table printed at the end.
#[derive(Clone)]
struct Steps {
    started: Instant,
    rows: Arc<Mutex<Vec<Row>>>,
}

struct Row {
    name: String,
    /// When it started, from the start of CI.
    at: Duration,
    took: Duration,
    ok: bool,
    beside: bool,
}

impl Steps {
    fn new() -> Steps {
        Steps { started: Instant::now(), rows: Arc::default() }
    }

    /// Runs one named step and prints how long it took.
    fn run<T>(&self, name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        println!("==> {name}");
        let started = Instant::now();
        let result = f().with_context(|| format!("step `{name}` failed"));
        self.record(name, started, result.is_ok(), false);
        result
    }

    fn record(&self, name: &str, started: Instant, ok: bool, beside: bool) {
        let took = started.elapsed();
        let outcome = if ok { "ok" } else { "FAILED" };
        let kind = if beside { "built beside the steps" } else { "step" };
        println!("==> {name}: {outcome} in {:.1?} ({kind})", took);
        let row = Row { name: name.to_owned(), at: started.duration_since(self.started), took, ok, beside };
        self.rows.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(row);
    }

    /// Each step with its start, time and outcome, in the order they started, and the total.
    fn table(&self) -> String {
        let mut rows: Vec<(String, Duration, Duration, &str)> = self
            .rows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|r| {
                let name = if r.beside { format!("  beside: {}", r.name) } else { r.name.clone() };
                (name, r.at, r.took, if r.ok { "ok" } else { "FAILED" })
            })
            .collect();
        rows.sort_by_key(|r| r.1);
        render(&rows, self.started.elapsed())
    }
}

fn render(rows: &[(String, Duration, Duration, &str)], total: Duration) -> String {
    let width = rows.iter().map(|r| r.0.chars().count()).chain([4]).max().unwrap_or(4);
    let mut out = format!("==> ci steps\n{:<width$}  {:>8}  {:>8}  outcome\n", "step", "start", "time");
    for (name, at, took, outcome) in rows {
        out.push_str(&format!("{name:<width$}  {:>8}  {:>8}  {outcome}\n", minutes(*at), minutes(*took)));
    }
    out.push_str(&format!("{:<width$}  {:>8}  {:>8}\n", "total", "", minutes(total)));
    out
}

/// `42.3s` under a minute, `12m05s` from there.
fn minutes(d: Duration) -> String {
    let seconds = d.as_secs();
    if seconds < 60 { format!("{:.1}s", d.as_secs_f64()) } else { format!("{}m{:02}s", seconds / 60, seconds % 60) }
}

/// What a later step needs built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Need {
    ControlPlane,
    Addons,
    /// What consumes the operator's output (promtool, Prometheus, ...) and other projects' CRDs.
    Consumers,
    Image,
    Kwok,
    Oldest,
}

/// A build for a later step.
struct Job {
    need: Need,
    name: String,
    build: Box<dyn FnOnce() -> Result<()> + Send>,
}

impl Job {
    fn new(need: Need, name: String, build: impl FnOnce() -> Result<()> + Send + 'static) -> Job {
        Job { need, name, build: Box::new(build) }
    }
}

#[derive(Clone, Copy)]
enum Priority {
    /// As the steps'.
    Normal,
    /// Only the CPU the steps leave idle.
    Idle,
}

/// Builds running beside the steps, each queue on a thread of its own, one build after another.
#[derive(Default)]
struct Prepared {
    pending: Mutex<HashMap<Need, Pending>>,
    threads: Vec<std::thread::JoinHandle<()>>,
    stopping: Arc<AtomicBool>,
}

/// A build's name and where its result arrives.
type Pending = (String, mpsc::Receiver<Result<()>>);

impl Prepared {
    fn start(&mut self, steps: &Steps, priority: Priority, jobs: Vec<Job>) {
        let mut queue = Vec::new();
        for job in jobs {
            let (sender, receiver) = mpsc::channel();
            self.pending
                .get_mut()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(job.need, (job.name.clone(), receiver));
            queue.push((job, sender));
        }
        let stopping = self.stopping.clone();
        let steps = steps.clone();
        self.threads.push(std::thread::spawn(move || {
            if let Priority::Idle = priority {
                lowest_priority();
            }
            for (job, sender) in queue {
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                let started = Instant::now();
                let result = (job.build)().with_context(|| format!("building {}", job.name));
                if let Err(e) = &result {
                    println!("==> {}: FAILED beside the steps: {e:#}", job.name);
                }
                steps.record(&job.name, started, result.is_ok(), true);
                let _ = sender.send(result);
            }
        }));
    }

    /// Waits for the build `need` if one was started (a step that finds nothing prepared
    /// builds what it needs itself, as it would alone), recording the wait as a step.
    fn wait(&self, steps: &Steps, need: Need) -> Result<()> {
        let Some((name, done)) = self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&need)
        else {
            return Ok(());
        };
        steps.run(&format!("wait for {name}"), || {
            done.recv().unwrap_or_else(|_| Err(anyhow::anyhow!("the build of {name} ended without an answer")))
        })
    }

    /// Ends the builds no step waited for: skips the queued ones and stops the running one's
    /// processes.
    fn stop(&mut self) {
        self.stop_with(terminate_descendants);
    }

    fn stop_with(&mut self, terminate: impl Fn()) {
        self.stopping.store(true, Ordering::SeqCst);
        for thread in self.threads.drain(..) {
            while !thread.is_finished() {
                terminate();
                std::thread::sleep(Duration::from_millis(200));
            }
            let _ = thread.join();
        }
    }
}

/// This thread, and every process it starts from now on, at the lowest CPU priority (on Linux
/// the nice value is a thread's, and a child inherits its parent thread's).
fn lowest_priority() {
    // SAFETY: setpriority only reads its arguments; `who = 0` names the calling thread.
    let _ = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 19) };
}

/// Sends SIGTERM to this process's descendants in its own process group: the builds' processes.
/// The control planes testenv started run in process groups of their own and are left alone.
fn terminate_descendants() {
    let me = std::process::id();
    let mut table = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|p| p.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // After the command name in parentheses: state, ppid, pgrp.
        let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
        let (Some(ppid), Some(pgrp)) =
            (fields.get(1).and_then(|f| f.parse::<u32>().ok()), fields.get(2).and_then(|f| f.parse::<u32>().ok()))
        else {
            continue;
        };
        table.push((pid, ppid, pgrp));
    }
    for pid in below_in_group(&table, me) {
        // SAFETY: kill only sends a signal.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
    }
}

/// The descendants of `me` in its process group, from (pid, ppid, pgrp) of every process.
fn below_in_group(table: &[(u32, u32, u32)], me: u32) -> Vec<u32> {
    let Some(group) = table.iter().find(|p| p.0 == me).map(|p| p.2) else { return Vec::new() };
    let mut tree = vec![me];
    let mut grew = true;
    while grew {
        grew = false;
        for (pid, ppid, _) in table {
            if tree.contains(ppid) && !tree.contains(pid) {
                tree.push(*pid);
                grew = true;
            }
        }
    }
    table.iter().filter(|(pid, _, pgrp)| *pid != me && *pgrp == group && tree.contains(pid)).map(|p| p.0).collect()
}

/// The test executables of the whole workspace, built by one cargo invocation: the unit tests,
/// the cluster tests and the binaries they run share one build of every dependency (separate
/// `cargo test -p` runs select different features, tokio's `test-util` among them, and built
/// the dependencies twice).
struct TestBinaries {
    /// (package directory, target name, executable), in cargo test's order.
    executables: Vec<(PathBuf, String, PathBuf)>,
}

impl TestBinaries {
    fn build(root: &Path) -> Result<TestBinaries> {
        let args =
            ["build", "--workspace", "--bins", "--tests", "--locked", "--message-format=json-render-diagnostics"];
        let mut child = cargo_command(root).args(args).stdout(Stdio::piped()).spawn().context("running cargo build")?;
        let stdout = child.stdout.take().context("cargo build has no stdout")?;
        let mut executables = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.context("reading cargo's messages")?;
            if let Some(test) = test_executable(&line) {
                executables.push(test);
            } else if !line.starts_with('{') {
                println!("{line}");
            }
        }
        let status = child.wait().context("waiting for cargo build")?;
        if !status.success() {
            bail!("cargo {} exited with {status}", args.join(" "));
        }
        executables.sort();
        executables.dedup();
        if !executables.iter().any(|(_, name, _)| name == CLUSTER_TESTS) {
            bail!("cargo built no `{CLUSTER_TESTS}` test target");
        }
        Ok(TestBinaries { executables })
    }

    /// Every test executable but the cluster tests', each in its package's directory as cargo
    /// test runs it; stops at the first that fails, as cargo test does.
    fn run_unit(&self, counts: &mut Counts) -> Result<()> {
        for (dir, name, exe) in self.executables.iter().filter(|(_, name, _)| name != CLUSTER_TESTS) {
            println!("     Running {name} ({})", exe.display());
            run_tests(Command::new(exe).current_dir(dir).env("CARGO_MANIFEST_DIR", dir), counts)?;
        }
        Ok(())
    }

    /// The cluster tests with libtest `args` (filters, `--ignored`) against `kubeconfig`.
    fn run_cluster(&self, args: &[&str], kubeconfig: &Path, env: &[(&str, &str)], counts: &mut Counts) -> Result<()> {
        let (dir, _, exe) =
            self.executables.iter().find(|(_, name, _)| name == CLUSTER_TESTS).context("no cluster test executable")?;
        println!("     Running {CLUSTER_TESTS} {}", args.join(" "));
        let mut cmd = Command::new(exe);
        cmd.current_dir(dir).env("CARGO_MANIFEST_DIR", dir).args(args).env("KUBECONFIG", kubeconfig);
        cmd.envs(env.iter().copied());
        run_tests(&mut cmd, counts)
    }
}

/// The test executable a `compiler-artifact` message of cargo's names, if it names one:
/// (package directory, target name, executable).
fn test_executable(line: &str) -> Option<(PathBuf, String, PathBuf)> {
    let message: serde_json::Value = serde_json::from_str(line).ok()?;
    if message["reason"] != "compiler-artifact" || message["profile"]["test"] != true {
        return None;
    }
    let exe = PathBuf::from(message["executable"].as_str()?);
    let dir = Path::new(message["manifest_path"].as_str()?).parent()?.to_path_buf();
    Some((dir, message["target"]["name"].as_str()?.to_owned(), exe))
}

/// Runs a libtest executable with its output passed through and its result lines counted.
fn run_tests(cmd: &mut Command, counts: &mut Counts) -> Result<()> {
    let mut child = cmd.stdout(Stdio::piped()).spawn().with_context(|| format!("running {:?}", cmd.get_program()))?;
    let stdout = child.stdout.take().context("the test executable has no stdout")?;
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading the tests' output")?;
        println!("{line}");
        count(&line, counts);
    }
    let status = child.wait().context("waiting for the tests")?;
    if !status.success() {
        bail!("{:?} exited with {status}", cmd.get_program());
    }
    Ok(())
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
fn cargo_test(root: &Path, args: &[&str], counts: &mut Counts) -> Result<()> {
    run_tests(cargo_command(root).arg("test").arg("--locked").args(args), counts)
}

/// pytest over tests/chart (the chart, RBAC and image tests) against `kubeconfig`.
pub fn pytest(root: &Path, python: &Path, kubeconfig: &Path, args: &[String], counts: &mut Counts) -> Result<()> {
    let mut cmd = Command::new(python);
    cmd.current_dir(root.join("tests/chart"))
        .args(["-m", "pytest", "-v", "-p", "no:cacheprovider", "--durations=5"])
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .stdout(Stdio::piped());
    // promtool, Prometheus and the dashboard validator, from their Go modules (cached).
    cmd.envs(testenv::consumers::env()?);
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

    #[test]
    fn the_table_lists_each_step_with_its_start_time_and_outcome_and_the_total() {
        let rows = vec![
            ("cargo fmt --check".to_owned(), Duration::ZERO, Duration::from_millis(400), "ok"),
            ("  beside: kwok 0.8.0".to_owned(), Duration::from_secs(1), Duration::from_secs(125), "ok"),
            ("cluster tests".to_owned(), Duration::from_secs(600), Duration::from_secs(61), "FAILED"),
        ];
        let table = render(&rows, Duration::from_secs(3000));
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[0], "==> ci steps");
        assert!(lines[2].starts_with("cargo fmt --check ") && lines[2].ends_with("0.0s      0.4s  ok"), "{table}");
        assert!(lines[3].contains("beside: kwok 0.8.0") && lines[3].ends_with("1.0s     2m05s  ok"), "{table}");
        assert!(lines[4].ends_with("10m00s     1m01s  FAILED"), "{table}");
        assert!(lines[5].starts_with("total ") && lines[5].ends_with("50m00s"), "{table}");
        assert_eq!(lines.len(), 6);
    }

    #[test]
    fn a_build_beside_the_steps_is_waited_for_and_shown_in_the_table() {
        let steps = Steps::new();
        let mut prepared = Prepared::default();
        prepared.start(
            &steps,
            Priority::Normal,
            vec![
                Job::new(Need::Kwok, "kwok".into(), || Ok(())),
                Job::new(Need::Oldest, "the old one".into(), || bail!("no source")),
            ],
        );
        prepared.wait(&steps, Need::Kwok).unwrap();
        let failed = prepared.wait(&steps, Need::Oldest).unwrap_err();
        assert!(format!("{failed:#}").contains("no source"), "{failed:#}");
        // Nothing was started for it: the step builds it itself.
        prepared.wait(&steps, Need::Image).unwrap();
        prepared.stop_with(|| {});
        let table = steps.table();
        for row in ["  beside: kwok ", "wait for kwok ", "  beside: the old one ", "wait for the old one "] {
            assert!(table.lines().any(|l| l.starts_with(row)), "{row:?} missing from\n{table}");
        }
        assert_eq!(table.lines().filter(|l| l.ends_with("FAILED")).count(), 2, "{table}");
        assert!(!table.contains("wait for operator image"), "{table}");
    }

    #[test]
    fn stopping_skips_the_builds_still_queued() {
        let steps = Steps::new();
        let mut prepared = Prepared::default();
        let ran = Arc::new(AtomicBool::new(false));
        let second = ran.clone();
        prepared.start(
            &steps,
            Priority::Idle,
            vec![
                Job::new(Need::Image, "slow".into(), || {
                    std::thread::sleep(Duration::from_millis(300));
                    Ok(())
                }),
                Job::new(Need::Kwok, "queued".into(), move || {
                    second.store(true, Ordering::SeqCst);
                    Ok(())
                }),
            ],
        );
        prepared.stop_with(|| {});
        assert!(!ran.load(Ordering::SeqCst), "the queued build ran after stop");
    }

    #[test]
    fn the_builds_processes_are_the_descendants_in_this_process_group() {
        // (pid, ppid, pgrp): 10 is CI in group 5; 11 a build, 12 its compiler; 13 an API server
        // in a group of its own, 14 its child; 20 is CI's parent, 30 another process.
        let table = [(10, 20, 5), (11, 10, 5), (12, 11, 5), (13, 10, 13), (14, 13, 13), (20, 1, 5), (30, 1, 30)];
        let mut found = below_in_group(&table, 10);
        found.sort_unstable();
        assert_eq!(found, [11, 12]);
        assert!(below_in_group(&table, 99).is_empty());
    }

    #[test]
    fn test_executables_are_read_from_cargos_messages() {
        let unit = r#"{"reason":"compiler-artifact","manifest_path":"/w/crates/checks/Cargo.toml","target":{"name":"kube9_checks","kind":["lib"]},"profile":{"test":true},"executable":"/w/target/debug/deps/kube9_checks-1"}"#;
        let cluster = r#"{"reason":"compiler-artifact","manifest_path":"/w/tests/Cargo.toml","target":{"name":"cluster","kind":["test"]},"profile":{"test":true},"executable":"/w/target/debug/deps/cluster-2"}"#;
        let binary = r#"{"reason":"compiler-artifact","manifest_path":"/w/crates/operator/Cargo.toml","target":{"name":"kube9-operator","kind":["bin"]},"profile":{"test":false},"executable":"/w/target/debug/kube9-operator"}"#;
        let library = r#"{"reason":"compiler-artifact","manifest_path":"/w/crates/api/Cargo.toml","target":{"name":"kube9_api","kind":["lib"]},"profile":{"test":false},"executable":null}"#;
        assert_eq!(
            test_executable(unit),
            Some((
                PathBuf::from("/w/crates/checks"),
                "kube9_checks".to_owned(),
                PathBuf::from("/w/target/debug/deps/kube9_checks-1")
            ))
        );
        assert_eq!(test_executable(cluster).map(|t| t.1), Some("cluster".to_owned()));
        assert_eq!(test_executable(binary), None);
        assert_eq!(test_executable(library), None);
        assert_eq!(test_executable(r#"{"reason":"build-finished","success":true}"#), None);
        assert_eq!(test_executable("   Compiling kube9-api"), None);
    }
}
