//! The offline CLI over 5,000 manifest documents (run with `cargo xtask bench`): 50 YAML files
//! of 100 documents each (Namespaces, Deployments, Services, StatefulSets, CronJobs, bare Pods,
//! Roles, PDBs, HPAs, ConfigMaps), assessed by the release binary as a CI job would run it.
//! Prints wall time and the child's peak resident memory (from wait4) per output format;
//! asserts nothing about them.
//!
//! Then the real-world corpus (`../shared/fixtures/realcorpus`), and checkov over it in the
//! same run when `KUBE9_BENCH_CHECKOV` names its executable.
//!
//! Baseline, measured in the same run: the same binary over the same files running one check
//! (`--check cost-optimization.load-balancers`), which still reads, parses and indexes every
//! document; the difference is what the 55 checks and the output cost.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const FILES: usize = 50;
const PER_FILE: usize = 100;
const RUNS: usize = 5;

fn document(i: usize) -> String {
    let ns = format!("team-{}", i % 100);
    let name = format!("app-{i}");
    match i % 10 {
        0 => format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}-{i}\n  labels:\n    team: t{i}\n"),
        1..=3 => format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: {ns}\n  labels:\n    app: {name}\n\
             spec:\n  replicas: {replicas}\n  selector:\n    matchLabels:\n      app: {name}\n  template:\n    metadata:\n      labels:\n        app: {name}\n\
             \x20   spec:\n      containers:\n      - name: app\n        image: registry.example/{name}:{tag}\n        ports:\n        - containerPort: 8080\n\
             \x20       resources:\n          requests:\n            cpu: 100m\n            memory: 128Mi\n          limits:\n            memory: 256Mi\n\
             \x20       readinessProbe:\n          httpGet:\n            path: /ready\n            port: 8080\n\
             \x20       securityContext:\n          runAsNonRoot: {non_root}\n          allowPrivilegeEscalation: false\n\
             \x20       env:\n        - name: MODE\n          value: production\n",
            replicas = 1 + i % 3,
            tag = if i.is_multiple_of(7) { "latest".to_owned() } else { format!("1.{i}") },
            non_root = i % 4 != 1,
        ),
        4 => format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  type: {kind}\n  selector:\n    app: app-{app}\n  ports:\n  - port: 80\n    targetPort: 8080\n",
            kind = if i % 40 == 4 { "LoadBalancer" } else { "ClusterIP" },
            app = i - 1,
        ),
        5 => format!(
            "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  replicas: 3\n  serviceName: {name}\n\
             \x20 selector:\n    matchLabels:\n      app: {name}\n  template:\n    metadata:\n      labels:\n        app: {name}\n    spec:\n\
             \x20     containers:\n      - name: db\n        image: registry.example/db:15\n        volumeMounts:\n        - name: data\n          mountPath: /data\n\
             \x20 volumeClaimTemplates:\n  - metadata:\n      name: data\n    spec:\n      accessModes: [ReadWriteOnce]\n      resources:\n        requests:\n          storage: 1Gi\n"
        ),
        6 => format!(
            "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  schedule: \"*/5 * * * *\"\n  jobTemplate:\n    spec:\n      template:\n        spec:\n\
             \x20         restartPolicy: OnFailure\n          containers:\n          - name: job\n            image: registry.example/job:1\n"
        ),
        7 => format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  containers:\n  - name: debug\n    image: registry.example/debug\n\
             \x20   securityContext:\n      privileged: {privileged}\n",
            privileged = i.is_multiple_of(3),
        ),
        8 => format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: {name}\n  namespace: {ns}\nrules:\n- apiGroups: [\"\"]\n  resources: [secrets]\n  verbs: [get, list]\n"
        ),
        _ => format!(
            "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  minAvailable: 1\n  selector:\n    matchLabels:\n      app: app-{app}\n",
            app = i - 8,
        ),
    }
}

fn write_manifests(dir: &Path) -> anyhow::Result<u64> {
    std::fs::create_dir_all(dir)?;
    let mut bytes = 0;
    for f in 0..FILES {
        let mut text = String::new();
        for d in 0..PER_FILE {
            let _ = write!(text, "---\n{}", document(f * PER_FILE + d));
        }
        bytes += text.len() as u64;
        std::fs::write(dir.join(format!("manifests-{f:02}.yaml")), text)?;
    }
    Ok(bytes)
}

/// Runs the binary once: wall time, peak resident KiB, exit code, bytes written to stdout.
fn run_once(bin: &Path, args: &[&str]) -> anyhow::Result<(Duration, i64, i32, u64)> {
    let started = Instant::now();
    let mut child = Command::new(bin).args(args).stdout(Stdio::piped()).stderr(Stdio::null()).spawn()?;
    let mut out = child.stdout.take().expect("piped");
    let counting = std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()).unwrap_or(0));
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it for the child we spawned.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    // SAFETY: waits for our own child; std's Child is not waited on afterwards.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = started.elapsed();
    anyhow::ensure!(waited == pid, "wait4 failed: {}", std::io::Error::last_os_error());
    let written = counting.join().unwrap_or(0);
    let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { -1 };
    Ok((wall, usage.ru_maxrss, code, written))
}

/// Median wall time and the largest peak over `RUNS` runs.
fn measure(bin: &Path, args: &[&str]) -> anyhow::Result<(Duration, i64, i32, u64)> {
    let mut walls = Vec::new();
    let (mut peak, mut code, mut written) = (0, 0, 0);
    for _ in 0..RUNS {
        let (wall, rss, c, w) = run_once(bin, args)?;
        walls.push(wall);
        (peak, code, written) = (peak.max(rss), c, w);
    }
    walls.sort();
    Ok((walls[RUNS / 2], peak, code, written))
}

fn binary() -> anyhow::Result<PathBuf> {
    let bin = std::env::var_os("KUBE9_OPERATOR_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/kube9-operator"));
    anyhow::ensure!(
        bin.is_file(),
        "{} is missing: build it with `cargo build --release -p kube9-operator` (cargo xtask bench does)",
        bin.display()
    );
    Ok(bin)
}

fn main() -> anyhow::Result<()> {
    let bin = binary()?;
    let dir = std::env::temp_dir().join(format!("kube9-cli-bench-{}", std::process::id()));
    let result = bench(&bin, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn bench(bin: &Path, dir: &Path) -> anyhow::Result<()> {
    let bytes = write_manifests(dir)?;
    let path = dir.to_str().expect("a UTF-8 temporary directory");
    println!(
        "kube9-operator assess over {} documents in {FILES} files ({:.1} MiB of YAML), median of {RUNS} runs",
        FILES * PER_FILE,
        bytes as f64 / (1 << 20) as f64
    );
    let (base, base_peak, base_code, _) =
        measure(bin, &["assess", "-f", path, "-o", "json", "--check", "cost-optimization.load-balancers"])?;
    anyhow::ensure!(base_code == 0, "the baseline run exited with {base_code}");
    println!(
        "  baseline, one check (read, parse, index):  {:7.1} ms   peak resident {:5.1} MiB",
        base.as_secs_f64() * 1e3,
        base_peak as f64 / 1024.0
    );
    for format in ["table", "json", "sarif"] {
        let (wall, peak, code, written) = measure(bin, &["assess", "-f", path, "-o", format, "--fail-on", "high"])?;
        anyhow::ensure!(code == 1, "-o {format} --fail-on high exited with {code}, expected 1 (there are findings)");
        println!(
            "  all checks, -o {format:<5} ({:5.1} MiB out):    {:7.1} ms   peak resident {:5.1} MiB   ({:.2}x baseline time)",
            written as f64 / (1 << 20) as f64,
            wall.as_secs_f64() * 1e3,
            peak as f64 / 1024.0,
            wall.as_secs_f64() / base.as_secs_f64()
        );
    }
    corpus(bin)
}

/// The real-world corpus beside the project (`../shared/fixtures/realcorpus`, 2,500 documents
/// from 25 public projects), when present; and checkov over the same files in the same run
/// when `KUBE9_BENCH_CHECKOV` names its executable (one run: it takes minutes).
fn corpus(bin: &Path) -> anyhow::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/realcorpus");
    if !root.is_dir() {
        println!("real corpus: skipped ({} is absent)", root.display());
        return Ok(());
    }
    let path = root.to_str().expect("a UTF-8 path");
    let (wall, peak, code, written) = measure(bin, &["assess", "-f", path, "-o", "json"])?;
    anyhow::ensure!(code != 2 || written > 0, "assess over the corpus produced nothing (exit {code})");
    println!(
        "kube9-operator assess -o json over the real corpus ({path}), median of {RUNS} runs: {:7.1} ms   peak resident {:5.1} MiB",
        wall.as_secs_f64() * 1e3,
        peak as f64 / 1024.0
    );
    let Some(checkov) = std::env::var_os("KUBE9_BENCH_CHECKOV") else {
        println!("  checkov: skipped (set KUBE9_BENCH_CHECKOV to the checkov executable to compare)");
        return Ok(());
    };
    let started = Instant::now();
    let status = Command::new(&checkov)
        .args(["-d", path, "--framework", "kubernetes", "-o", "json", "--quiet", "--compact", "--skip-download"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    let theirs = started.elapsed();
    anyhow::ensure!(status.code().is_some_and(|c| c <= 1), "checkov failed: {status}");
    println!(
        "  checkov over the same files, one run:        {:7.1} s    ({:.0}x kube9's time)",
        theirs.as_secs_f64(),
        theirs.as_secs_f64() / wall.as_secs_f64()
    );
    Ok(())
}
