//! `cargo xtask testenv up | down | env | status`: a real Kubernetes control plane on
//! loopback (etcd, kube-apiserver, kube-controller-manager) with no Docker, and with
//! `up --node` a real node (containerd, kubelet, kube-scheduler; see node.rs).
//!
//! By default it runs a current Kubernetes ([`CURRENT`]), built from the `k8s.io/kubernetes`
//! Go module through the Go module proxy (gomod.rs); `--kubernetes 1.20` (or
//! `KUBE9_KUBERNETES=1.20`) runs the oldest supported version, built from Debian's
//! `kubernetes` source package. Binaries are built once per version and cached under
//! `${KUBE9_CACHE_DIR:-~/.cache/kube9-operator}`; runtime state (certificates, etcd data, pid
//! files, logs, kubeconfig) lives in `target/testenv`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

pub mod addons;
pub mod consumers;
pub mod gomod;
pub mod kwok;
pub mod node;

/// The release `up` runs by default: the newest the Go module proxy serves. Its node runs
/// containerd 2, built from its Go module too (a kubelet from 1.36 on refuses containerd 1.x).
pub const CURRENT: &str = "1.37.2";
/// The patch release `--kubernetes 1.X` means, for the minors before [`CURRENT`]'s that are
/// still run by hand (1.35 is the last whose node also runs on Debian's containerd 1.6).
pub const PINNED: &[&str] = &["1.35.4", "1.36.3", CURRENT];
/// The oldest supported release, built from Debian bookworm's source package.
pub const OLDEST: &str = "1.20";

/// Which Kubernetes the local control plane runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kubernetes {
    /// 1.20, from Debian bookworm's `kubernetes` source package.
    Debian,
    /// A release (`1.35.4`) built from the `k8s.io/kubernetes` Go module.
    Go(String),
}

/// The pinned patch release of minor `minor` (`"35"`).
fn pinned(minor: &str) -> Option<&'static str> {
    PINNED.iter().copied().find(|v| v.strip_prefix("1.").and_then(|rest| rest.split('.').next()) == Some(minor))
}

impl Kubernetes {
    /// `1.20` (or `1.20.x`, `oldest`), `current`, `1.35` (its [`PINNED`] patch release) or `1.X.Y`.
    pub fn parse(text: &str) -> Result<Self> {
        let text = text.trim().trim_start_matches('v');
        let parts: Vec<&str> = text.split('.').collect();
        match (text, parts.as_slice()) {
            ("oldest", _) | (_, ["1", "20"]) | (_, ["1", "20", _]) => Ok(Self::Debian),
            ("current" | "", _) => Ok(Self::Go(CURRENT.to_owned())),
            (_, ["1", minor]) if pinned(minor).is_some() => Ok(Self::Go(pinned(minor).unwrap_or(CURRENT).to_owned())),
            (_, ["1", minor, patch]) if minor.parse::<u32>().is_ok_and(|m| m >= 26) && patch.parse::<u32>().is_ok() => {
                Ok(Self::Go(text.to_owned()))
            }
            _ => {
                bail!("unsupported Kubernetes version {text:?}: use {OLDEST}, {CURRENT}, or another 1.X.Y from 1.26 on")
            }
        }
    }

    /// The `--kubernetes` argument, else `KUBE9_KUBERNETES`, else [`CURRENT`].
    pub fn requested(arg: Option<&str>) -> Result<Self> {
        let env = std::env::var("KUBE9_KUBERNETES").ok().filter(|v| !v.is_empty());
        match arg.map(str::to_owned).or(env) {
            Some(text) => Self::parse(&text),
            None => Ok(Self::Go(CURRENT.to_owned())),
        }
    }

    /// `1.20` or `1.37.2`.
    pub fn label(&self) -> &str {
        match self {
            Self::Debian => OLDEST,
            Self::Go(version) => version,
        }
    }

    /// Whether this is the 1.20 build, whose components still take the flags removed since.
    pub fn legacy(&self) -> bool {
        *self == Self::Debian
    }
}

/// The testenv subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Start (or reuse) a control plane and print how to use it.
    Up {
        /// Build and start a local control plane even if KUBECONFIG points at a reachable cluster.
        #[arg(long)]
        local: bool,
        /// Add a real node (containerd, kubelet, kube-scheduler) so Pods run.
        #[arg(long)]
        node: bool,
        /// The Kubernetes version: `current` (the default, 1.37.x from Go modules) or `1.20`
        /// (the oldest supported, from Debian's source package). Default: $KUBE9_KUBERNETES.
        #[arg(long, value_name = "VERSION")]
        kubernetes: Option<String>,
        /// Add this many fake Nodes run by kwok, where Pods that tolerate
        /// `kwok.x-k8s.io/node=fake:NoSchedule` reach Running without a container runtime.
        #[arg(long, value_name = "NODES")]
        kwok: Option<u32>,
        /// How many of the kwok Nodes have GPUs (`nvidia.com/gpu: 8`).
        #[arg(long, value_name = "NODES", default_value_t = 0)]
        kwok_gpu_nodes: u32,
        /// Real ecosystem components to add, built or read from their Go modules:
        /// `gateway-api` (CRDs), `kueue` (CRDs and controller), `metrics-server` (the
        /// `metrics.k8s.io` API; node metrics need `--node`). Comma-separated or repeated.
        #[arg(long = "with", value_enum, value_delimiter = ',', value_name = "ADDON")]
        with: Vec<addons::Addon>,
    },
    /// Stop the processes `up` started (safe to run twice).
    Down,
    /// Print `export KUBECONFIG=...` for the running environment.
    Env,
    /// Show what is running.
    Status,
}

/// What `up` produced.
pub struct Cluster {
    pub kubeconfig: PathBuf,
    /// True when this call started the processes (so the caller should stop them).
    pub started_here: bool,
}

/// Debian packages the control plane needs at run time.
const RUNTIME_PACKAGES: &[&str] = &["openssl"];
/// Debian packages needed to build kube-apiserver and kube-controller-manager.
const BUILD_PACKAGES: &[&str] = &["golang-go", "golang-github-modern-go-reflect2-dev", "dpkg-dev", "rsync", "make"];
const BINARIES: &[&str] = &["kube-apiserver", "kube-controller-manager"];
const SOURCES_FILE: &str = "/etc/apt/sources.list.d/kube9-src.sources";

pub fn run(cmd: Command) -> Result<()> {
    match cmd {
        Command::Up { local, node, kubernetes, kwok, kwok_gpu_nodes, with } => {
            let kubernetes = Kubernetes::requested(kubernetes.as_deref())?;
            let cluster = up(local, node, &kubernetes)?;
            let state = state_dir();
            if let Some(nodes) = kwok {
                let bin = ensure_binaries(&kubernetes, true)?;
                kwok::up(&state, &kubernetes, &bin, &cluster.kubeconfig, nodes, kwok_gpu_nodes)?;
            }
            addons::up(&state, &kubernetes, &cluster.kubeconfig, &with)
        }
        Command::Down => down(),
        Command::Env => {
            let kubeconfig = state_dir().join("kubeconfig");
            if !kubeconfig.exists() || !readyz(&kubeconfig) {
                bail!("no control plane is running: start one with `cargo xtask testenv up`");
            }
            println!("export KUBECONFIG={}", kubeconfig.display());
            Ok(())
        }
        Command::Status => status(),
    }
}

/// `<workspace>/target/testenv`.
pub fn state_dir() -> PathBuf {
    crate::root().join("target/testenv")
}

pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("KUBE9_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/var/cache"));
    base.join("kube9-operator")
}

fn port(var: &str, default: u16) -> Result<u16> {
    match std::env::var(var) {
        Ok(v) => v.parse().with_context(|| format!("{var}={v:?} is not a port number")),
        Err(_) => Ok(default),
    }
}

struct Ports {
    etcd: u16,
    etcd_peer: u16,
    apiserver: u16,
}

pub const DEFAULT_APISERVER_PORT: u16 = 16443;

fn ports() -> Result<Ports> {
    let etcd = port("KUBE9_TESTENV_ETCD_PORT", 23790)?;
    let apiserver = port("KUBE9_TESTENV_APISERVER_PORT", DEFAULT_APISERVER_PORT)?;
    Ok(Ports { etcd, etcd_peer: etcd.wrapping_add(10), apiserver })
}

/// The three processes, in start order.
const COMPONENTS: [&str; 3] = ["etcd", "kube-apiserver", "kube-controller-manager"];

/// The kubeconfig `KUBECONFIG` names, when the cluster it points at answers.
pub fn existing_cluster() -> Option<PathBuf> {
    let path = std::env::var_os("KUBECONFIG").filter(|p| !p.is_empty()).map(PathBuf::from)?;
    readyz(&path).then_some(path)
}

pub fn up(local: bool, with_node: bool, kubernetes: &Kubernetes) -> Result<Cluster> {
    if !local {
        if let Some(path) = existing_cluster() {
            println!("testenv: using the cluster KUBECONFIG points at ({})", path.display());
            return Ok(Cluster { kubeconfig: path, started_here: false });
        }
        if let Some(path) = std::env::var_os("KUBECONFIG").filter(|p| !p.is_empty()) {
            println!("testenv: KUBECONFIG={} does not answer; starting a local control plane", path.display());
        }
    }
    let state = state_dir();
    let kubeconfig = state.join("kubeconfig");
    let alive: Vec<bool> = COMPONENTS.iter().map(|c| running_pid(&state, c).is_some()).collect();
    let running_version = std::fs::read_to_string(state.join("kubernetes")).unwrap_or_default();
    if alive.iter().all(|a| *a) && readyz(&kubeconfig) && running_version.trim() != kubernetes.label() {
        println!(
            "testenv: Kubernetes {} is running and {} was asked for; stopping it first",
            running_version.trim(),
            kubernetes.label()
        );
        down()?;
    } else if alive.iter().all(|a| *a) && readyz(&kubeconfig) && !bound_as(&state, bind_address(with_node)) {
        println!("testenv: restarting the control plane so the node's Pods can reach the API server");
        down()?;
    } else if alive.iter().all(|a| *a) && readyz(&kubeconfig) {
        println!("testenv: the control plane is already running");
        let mut started_here = false;
        if with_node && !node::running(&state) {
            let mut stopped = Vec::new();
            node::down(&state, &mut stopped)?;
            ensure_packages(node::PACKAGES)?;
            if let Err(e) = node::up(&state, kubernetes, &ensure_binaries(kubernetes, true)?, &kubeconfig) {
                let _ = node::down(&state, &mut stopped);
                return Err(e);
            }
            started_here = true;
        }
        print_usage(&kubeconfig);
        return Ok(Cluster { kubeconfig, started_here });
    }
    let alive: Vec<bool> = COMPONENTS.iter().map(|c| running_pid(&state, c).is_some()).collect();
    if alive.iter().any(|a| *a) {
        println!("testenv: part of an earlier control plane is running; stopping it first");
        down()?;
    }

    let (etcd_binary, bin) = prepare(kubernetes, with_node)?;
    let ports = ports()?;
    for (port, var) in [
        (ports.etcd, "KUBE9_TESTENV_ETCD_PORT"),
        (ports.etcd_peer, "KUBE9_TESTENV_ETCD_PORT (peer port = client port + 10)"),
        (ports.apiserver, "KUBE9_TESTENV_APISERVER_PORT"),
    ] {
        if TcpListener::bind(("127.0.0.1", port)).is_err() {
            bail!("port {port} on 127.0.0.1 is in use by another process: stop it, or choose another port with {var}");
        }
    }

    std::fs::create_dir_all(state.join("logs")).context("creating target/testenv")?;
    let pki = ensure_pki(&state)?;
    ensure_client_certs(&pki)?;
    let started = Instant::now();

    let etcd_data = state.join("etcd");
    let _ = std::fs::remove_dir_all(&etcd_data);
    let etcd_client = format!("http://127.0.0.1:{}", ports.etcd);
    let etcd_peer = format!("http://127.0.0.1:{}", ports.etcd_peer);
    spawn(
        &state,
        "etcd",
        &etcd_binary,
        &[
            "--name=kube9".into(),
            format!("--data-dir={}", etcd_data.display()),
            format!("--listen-client-urls={etcd_client}"),
            format!("--advertise-client-urls={etcd_client}"),
            format!("--listen-peer-urls={etcd_peer}"),
            format!("--initial-advertise-peer-urls={etcd_peer}"),
            format!("--initial-cluster=kube9={etcd_peer}"),
        ],
    )?;
    wait(&state, "etcd", Duration::from_secs(30), || etcd_healthy(ports.etcd))?;

    let p = |name: &str| pki.join(name).display().to_string();
    let bind = bind_address(with_node);
    std::fs::write(state.join("bind-address"), bind)?;
    // Flags removed after 1.20 (the insecure ports were turned off there and are gone since).
    let legacy = |flag: &str| kubernetes.legacy().then(|| flag.to_owned());
    spawn(
        &state,
        "kube-apiserver",
        &bin.join("kube-apiserver"),
        &[
            format!("--etcd-servers={etcd_client}"),
            // With a node, every address (its Pods reach the API server at their bridge's
            // gateway, so they need no host network); else loopback only.
            format!("--bind-address={bind}"),
            "--advertise-address=127.0.0.1".into(),
            format!("--secure-port={}", ports.apiserver),
        ]
        .into_iter()
        .chain(legacy("--insecure-port=0"))
        .chain([
            format!("--cert-dir={}", state.join("apiserver-certs").display()),
            format!("--tls-cert-file={}", p("apiserver.crt")),
            format!("--tls-private-key-file={}", p("apiserver.key")),
            format!("--client-ca-file={}", p("ca.crt")),
            // The kubelet accepts this certificate (its x509 client CA is ours): exec and logs.
            format!("--kubelet-client-certificate={}", p("kubelet-client.crt")),
            format!("--kubelet-client-key={}", p("kubelet-client.key")),
            // The node's name does not resolve; its InternalIP is the machine's own address.
            "--kubelet-preferred-address-types=InternalIP,Hostname".into(),
            format!("--token-auth-file={}", p("tokens.csv")),
            // The aggregation layer (metrics-server): the API server proxies to aggregated
            // APIs with this client certificate and the user in request headers, straight to
            // the Service's endpoints (there is no kube-proxy).
            format!("--proxy-client-cert-file={}", p("front-proxy-client.crt")),
            format!("--proxy-client-key-file={}", p("front-proxy-client.key")),
            format!("--requestheader-client-ca-file={}", p("ca.crt")),
            "--requestheader-allowed-names=front-proxy-client".into(),
            "--requestheader-username-headers=X-Remote-User".into(),
            "--requestheader-group-headers=X-Remote-Group".into(),
            "--requestheader-extra-headers-prefix=X-Remote-Extra-".into(),
            "--enable-aggregator-routing=true".into(),
            "--authorization-mode=RBAC".into(),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
            "--api-audiences=https://kubernetes.default.svc.cluster.local".into(),
            format!("--service-account-key-file={}", p("sa.pub")),
            format!("--service-account-signing-key-file={}", p("sa.key")),
            "--service-cluster-ip-range=10.96.0.0/16".into(),
            "--allow-privileged=true".into(),
            // The only address is loopback, which the endpoints of the `kubernetes` Service may
            // not hold; nothing in the tests routes through that Service.
            "--endpoint-reconciler-type=none".into(),
        ])
        .collect::<Vec<_>>(),
    )?;
    write_kubeconfig(&kubeconfig, &pki, ports.apiserver)?;
    wait(&state, "kube-apiserver", Duration::from_secs(90), || readyz(&kubeconfig))?;

    spawn(
        &state,
        "kube-controller-manager",
        &bin.join("kube-controller-manager"),
        &[format!("--kubeconfig={}", kubeconfig.display()), "--leader-elect=false".into()]
            .into_iter()
            .chain(legacy("--port=0"))
            .chain([
                // No serving port at all, so two control planes never compete for one.
                "--secure-port=0".into(),
                "--use-service-account-credentials=false".into(),
                // Thousands of Pods (kwok) are created at this rate, not the default 20/s.
                "--kube-api-qps=200".into(),
                "--kube-api-burst=400".into(),
                format!("--service-account-private-key-file={}", p("sa.key")),
                format!("--root-ca-file={}", p("ca.crt")),
                format!("--cluster-signing-cert-file={}", p("ca.crt")),
                format!("--cluster-signing-key-file={}", p("ca.key")),
            ])
            .collect::<Vec<_>>(),
    )?;
    // The service-account controller creating `default` shows the controllers are running.
    wait(&state, "kube-controller-manager", Duration::from_secs(60), || {
        kubectl_ok(&kubeconfig, &["get", "serviceaccount", "default", "-n", "default"])
    })?;
    std::fs::write(state.join("kubernetes"), kubernetes.label())?;
    println!("testenv: control plane ready in {:.1?}: Kubernetes {}", started.elapsed(), server_version(&kubeconfig));
    if with_node && let Err(e) = node::up(&state, kubernetes, &bin, &kubeconfig) {
        let _ = down();
        return Err(e);
    }
    print_usage(&kubeconfig);
    Ok(Cluster { kubeconfig, started_here: true })
}

/// Installs and builds what `up` runs for `kubernetes` (and the node), starting nothing:
/// etcd, and the directory of the Kubernetes binaries.
pub fn prepare(kubernetes: &Kubernetes, with_node: bool) -> Result<(PathBuf, PathBuf)> {
    ensure_packages(RUNTIME_PACKAGES)?;
    // etcd: Debian's 3.4 for 1.20 (of its time); 3.6 from its Go module for a current release.
    let etcd = match kubernetes {
        Kubernetes::Debian => {
            ensure_packages(&["etcd-server"])?;
            PathBuf::from("/usr/bin/etcd")
        }
        Kubernetes::Go(_) => gomod::etcd()?,
    };
    if with_node {
        ensure_packages(node::PACKAGES)?;
        // A Go-built node runs containerd 2, built from its Go module too (node.rs).
        if let Kubernetes::Go(_) = kubernetes {
            gomod::containerd()?;
        }
    }
    Ok((etcd, ensure_binaries(kubernetes, with_node)?))
}

fn bind_address(with_node: bool) -> &'static str {
    if with_node { "0.0.0.0" } else { "127.0.0.1" }
}

/// Whether the running API server listens where `bind` asks (any address serves loopback).
fn bound_as(state: &Path, bind: &str) -> bool {
    let running = std::fs::read_to_string(state.join("bind-address")).unwrap_or_default();
    running.trim() == bind || (bind == "127.0.0.1" && running.trim() == "0.0.0.0")
}

fn print_usage(kubeconfig: &Path) {
    println!("  export KUBECONFIG={}", kubeconfig.display());
    println!("  kubectl get namespaces");
    println!("  cargo xtask testenv down   # when finished");
}

pub fn down() -> Result<()> {
    let state = state_dir();
    let mut stopped = Vec::new();
    for name in addons::COMPONENTS {
        stop(&state, name, &mut stopped)?;
    }
    stop(&state, "kwok", &mut stopped)?;
    node::down(&state, &mut stopped)?;
    for name in COMPONENTS.iter().rev() {
        stop(&state, name, &mut stopped)?;
    }
    // The next `up` starts from an empty etcd; certificates and tokens are kept.
    let _ = std::fs::remove_dir_all(state.join("etcd"));
    let _ = std::fs::remove_file(state.join("kubernetes"));
    if stopped.is_empty() {
        println!("testenv: nothing was running");
    } else {
        println!("testenv: stopped {}", stopped.join(", "));
    }
    Ok(())
}

fn status() -> Result<()> {
    let state = state_dir();
    for name in COMPONENTS.iter().chain(node::COMPONENTS.iter()).chain(&["kwok"]).chain(addons::COMPONENTS.iter()) {
        match running_pid(&state, name) {
            Some(pid) => println!("{name:<24} running (pid {pid})"),
            None => println!("{name:<24} not running"),
        }
    }
    let kubeconfig = state.join("kubeconfig");
    let ready = kubeconfig.exists() && readyz(&kubeconfig);
    println!("{:<24} {}", "/readyz", if ready { "ok" } else { "not answering" });
    if ready {
        println!("export KUBECONFIG={}", kubeconfig.display());
    }
    Ok(())
}

/// Starts a process in its own session, logging to `logs/<name>.log`, pid in `<name>.pid`.
fn spawn(state: &Path, name: &str, binary: &Path, args: &[String]) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let log_path = state.join("logs").join(format!("{name}.log"));
    let log = std::fs::File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
    let child = Process::new(binary)
        .args(args)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Its own process group: a Ctrl-C in the terminal does not reach it, `down` does.
        .process_group(0)
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    std::fs::write(state.join(format!("{name}.pid")), child.id().to_string())?;
    Ok(())
}

/// Waits for `ready`, failing with the tail of the component's log.
fn wait(state: &Path, name: &str, timeout: Duration, ready: impl Fn() -> bool) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if ready() {
            return Ok(());
        }
        let log = state.join("logs").join(format!("{name}.log"));
        // Liveness only: for a moment after the spawn, /proc does not show the new binary yet.
        let exited = !recorded_pid(state, name).is_some_and(alive);
        if exited || Instant::now() > deadline {
            let why = if exited { "exited" } else { "did not become ready" };
            let _ = down();
            bail!("{name} {why} (within {timeout:?}); the end of {}:\n{}", log.display(), tail(&log, 25));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

pub(crate) fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The pid recorded in `<name>.pid`.
fn recorded_pid(state: &Path, name: &str) -> Option<u32> {
    std::fs::read_to_string(state.join(format!("{name}.pid"))).ok()?.trim().parse().ok()
}

/// The recorded pid, if that process is alive and still runs the binary we started (a pid
/// can be reused after a reboot or a crash).
fn running_pid(state: &Path, name: &str) -> Option<u32> {
    let pid = recorded_pid(state, name)?;
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    let exe_name = exe.file_name()?.to_string_lossy().trim_end_matches(" (deleted)").to_owned();
    (exe_name == name && alive(pid)).then_some(pid)
}

/// Stops the process `<name>.pid` records (TERM, then KILL after 10 s), adds it to `stopped`
/// and removes its pid file. A pid file whose process is gone, or now runs another binary, is
/// only removed. Safe to run twice.
fn stop(state: &Path, name: &str, stopped: &mut Vec<String>) -> Result<()> {
    if let Some(pid) = running_pid(state, name) {
        signal(pid, "TERM");
        let deadline = Instant::now() + Duration::from_secs(10);
        while alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if alive(pid) {
            signal(pid, "KILL");
            std::thread::sleep(Duration::from_millis(200));
        }
        if alive(pid) {
            bail!("{name} (pid {pid}) survived SIGKILL; stop it by hand");
        }
        stopped.push(format!("{name} ({pid})"));
    }
    let _ = std::fs::remove_file(state.join(format!("{name}.pid")));
    Ok(())
}

/// Alive and not a zombie.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit(')').next().and_then(|rest| rest.split_whitespace().next()) != Some("Z"),
        Err(_) => false,
    }
}

fn signal(pid: u32, sig: &str) {
    let _ = Process::new("kill").args([format!("-{sig}"), pid.to_string()]).stderr(Stdio::null()).status();
}

fn etcd_healthy(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.contains("\"health\":\"true\"")
}

fn kubectl_ok(kubeconfig: &Path, args: &[&str]) -> bool {
    Process::new("kubectl")
        .args(["--request-timeout=5s"])
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The API server's `gitVersion` (`v1.37.2`), or why it is unknown.
pub fn server_version(kubeconfig: &Path) -> String {
    let out = Process::new("kubectl")
        .args(["--request-timeout=5s", "get", "--raw", "/version"])
        .env("KUBECONFIG", kubeconfig)
        .output();
    match out {
        Ok(out) if out.status.success() => serde_json::from_slice::<serde_json::Value>(&out.stdout)
            .ok()
            .and_then(|v| v["gitVersion"].as_str().map(str::to_owned))
            .unwrap_or_else(|| "(unreadable /version)".into()),
        _ => "(no /version)".into(),
    }
}

fn readyz(kubeconfig: &Path) -> bool {
    kubectl_ok(kubeconfig, &["get", "--raw", "/readyz"])
}

/// Runs each `openssl` command in `dir`, stopping at the first that fails.
fn openssl(dir: &Path, steps: &[&[&str]]) -> Result<()> {
    for args in steps {
        let out = Process::new("openssl").args(*args).current_dir(dir).output().context("running openssl")?;
        if !out.status.success() {
            bail!("openssl {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
        }
    }
    Ok(())
}

/// A client certificate `<name>.crt`/`<name>.key` signed by the testenv CA, made once beside
/// the rest of the PKI: the API server's for the kubelet (`kubectl exec`, `kubectl logs`) and
/// its front-proxy client for aggregated APIs (metrics-server).
fn ensure_client_cert(pki: &Path, name: &str, subject: &str) -> Result<()> {
    let crt = format!("{name}.crt");
    if pki.join(&crt).exists() {
        return Ok(());
    }
    let (key, csr, tmp) = (format!("{name}.key"), format!("{name}.csr"), format!("{name}.crt.tmp"));
    let steps: [&[&str]; 2] = [
        &["req", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &csr, "-subj", subject],
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &tmp,
            "-days",
            "3650",
        ],
    ];
    openssl(pki, &steps)?;
    std::fs::rename(pki.join(&tmp), pki.join(&crt))?;
    Ok(())
}

/// The API server's client certificates: for the kubelet (in `system:masters`) and for
/// aggregated API servers (`front-proxy-client`, the name they accept request headers from).
fn ensure_client_certs(pki: &Path) -> Result<()> {
    ensure_client_cert(pki, "kubelet-client", "/O=system:masters/CN=kube-apiserver-kubelet-client")?;
    ensure_client_cert(pki, "front-proxy-client", "/CN=front-proxy-client")
}

/// A CA, the API server's serving certificate, the service-account key pair and an admin
/// token; kept across restarts.
fn ensure_pki(state: &Path) -> Result<PathBuf> {
    let pki = state.join("pki");
    // The node's Pods reach the API server at their bridge's gateway address.
    let gateway = node::network()?.gateway;
    let sans = format!(
        "subjectAltName=IP:127.0.0.1,IP:{gateway},IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,\
         DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\n"
    );
    let same_names = std::fs::read_to_string(pki.join("san.cnf")).is_ok_and(|text| text == sans);
    if pki.join("tokens.csv").exists() && same_names {
        return Ok(pki);
    }
    let tmp = state.join("pki.tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)?;
    std::fs::write(tmp.join("san.cnf"), sans)?;
    let steps: [&[&str]; 5] = [
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "3650",
            "-subj",
            "/CN=kube9-testenv-ca",
        ],
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "apiserver.key",
            "-out",
            "apiserver.csr",
            "-subj",
            "/CN=kube-apiserver",
        ],
        &[
            "x509",
            "-req",
            "-in",
            "apiserver.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "apiserver.crt",
            "-days",
            "3650",
            "-extfile",
            "san.cnf",
        ],
        &["genrsa", "-out", "sa.key", "2048"],
        &["rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub"],
    ];
    openssl(&tmp, &steps)?;
    let mut token = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut token)?;
    let token: String = token.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(tmp.join("tokens.csv"), format!("{token},admin,admin,\"system:masters\"\n"))?;
    std::fs::write(tmp.join("admin.token"), &token)?;
    let _ = std::fs::remove_dir_all(&pki);
    std::fs::rename(&tmp, &pki)?;
    Ok(pki)
}

fn write_kubeconfig(path: &Path, pki: &Path, port: u16) -> Result<()> {
    let token = std::fs::read_to_string(pki.join("admin.token"))?;
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: kube9-testenv\n  cluster:\n    server: https://127.0.0.1:{port}\n    \
         certificate-authority: {ca}\nusers:\n- name: admin\n  user:\n    token: {token}\ncontexts:\n- name: kube9-testenv\n  \
         context:\n    cluster: kube9-testenv\n    user: admin\ncurrent-context: kube9-testenv\n",
        ca = pki.join("ca.crt").display(),
        token = token.trim()
    );
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

fn installed(package: &str) -> bool {
    Process::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
}

fn is_root() -> bool {
    Process::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Held around every apt-get and dpkg query: `cargo xtask ci` prepares later steps on a thread
/// beside the current one, and two apt-get runs at once fail on dpkg's lock.
static APT: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Installs the Debian packages that are missing.
pub fn ensure_packages(packages: &[&str]) -> Result<()> {
    let _apt = APT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let missing: Vec<&str> = packages.iter().copied().filter(|p| !installed(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    if Process::new("apt-get").arg("--version").stdout(Stdio::null()).status().is_err() {
        bail!(
            "Debian packages {} are needed and there is no apt-get: install them, or point KUBECONFIG at a cluster",
            missing.join(" ")
        );
    }
    if !is_root() {
        bail!(
            "Debian packages {} are needed: run as root, or `sudo apt-get install {}` first",
            missing.join(" "),
            missing.join(" ")
        );
    }
    println!("testenv: installing {}", missing.join(" "));
    apt(&["update", "-q"])?;
    let mut args = vec!["install", "-y", "-q", "--no-install-recommends"];
    args.extend(&missing);
    apt(&args)
}

fn apt(args: &[&str]) -> Result<()> {
    let out = Process::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .context("running apt-get")?;
    if !out.status.success() {
        bail!("apt-get {} failed:\n{}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// The directory holding cached kube-apiserver and kube-controller-manager (and kubelet and
/// kube-scheduler with `node`) of `kubernetes`, building what no cached copy has.
pub fn ensure_binaries(kubernetes: &Kubernetes, node: bool) -> Result<PathBuf> {
    let needed: Vec<&str> = BINARIES.iter().chain(if node { node::BINARIES } else { &[] }).copied().collect();
    if let Kubernetes::Go(version) = kubernetes {
        // All four at once when the node is wanted: one build shares most packages.
        return gomod::kubernetes(version, &needed);
    }
    let cache = cache_dir();
    if let Some(bin) = cached(&cache).filter(|bin| needed.iter().all(|b| bin.join(b).is_file())) {
        return Ok(bin);
    }
    // A build keeps what the cache already has, so build only what is missing.
    let have = cached(&cache);
    let missing: Vec<&str> =
        needed.iter().copied().filter(|b| !have.as_ref().is_some_and(|bin| bin.join(b).is_file())).collect();
    build(&cache, &missing)?;
    cached(&cache)
        .filter(|bin| needed.iter().all(|b| bin.join(b).is_file()))
        .context("the build finished but its binaries are not in the cache")
}

fn cached(cache: &Path) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(cache)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("kubernetes-")))
        .map(|p| p.join("bin"))
        .filter(|bin| BINARIES.iter().all(|b| bin.join(b).is_file()))
        .collect();
    dirs.sort();
    dirs.pop()
}

/// Fetches Debian's `kubernetes` source, patches it for Go 1.19 and builds `targets`
/// (`cmd/<name>`) into `<cache>/kubernetes-<version>/bin`.
pub fn build(cache: &Path, targets: &[&str]) -> Result<()> {
    ensure_packages(BUILD_PACKAGES)?;
    ensure_deb_src()?;
    std::fs::create_dir_all(cache).with_context(|| format!("creating {}", cache.display()))?;
    let started = Instant::now();
    println!("testenv: building {} from Debian's kubernetes source (about 5-10 minutes, once)", targets.join(", "));

    let work = cache.join("work");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    run_logged(
        Process::new("apt-get").args(["source", "--download-only", "kubernetes"]).current_dir(&work),
        &work.join("fetch.log"),
    )
    .context("fetching Debian's kubernetes source package")?;
    let dsc = std::fs::read_dir(&work)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "dsc"))
        .context("apt-get source produced no .dsc file")?;
    let version = dsc
        .file_stem()
        .map(|s| s.to_string_lossy().trim_start_matches("kubernetes_").to_owned())
        .context("a .dsc file without a name")?;
    run_logged(
        Process::new("dpkg-source").arg("-x").arg(&dsc).arg("src").current_dir(&work),
        &work.join("extract.log"),
    )
    .context("unpacking the kubernetes source")?;
    let src = work.join("src");

    // The vendored reflect2 1.0.1 crashes under Go >= 1.18 when a custom resource is
    // created; Debian's 1.0.2 does not.
    let vendored = src.join("vendor/github.com/modern-go/reflect2");
    std::fs::remove_dir_all(&vendored).context("removing the vendored reflect2")?;
    let status = Process::new("cp")
        .args(["-r", "/usr/share/gocode/src/github.com/modern-go/reflect2"])
        .arg(&vendored)
        .status()
        .context("copying Debian's reflect2")?;
    if !status.success() {
        bail!("copying /usr/share/gocode/src/github.com/modern-go/reflect2 failed");
    }
    let _ = std::fs::remove_file(vendored.join("go.mod"));

    let gopath = src.join(".go");
    std::fs::create_dir_all(gopath.join("src/k8s.io"))?;
    std::os::unix::fs::symlink(&src, gopath.join("src/k8s.io/kubernetes")).context("linking the source into GOPATH")?;
    let what: Vec<String> = targets.iter().map(|t| format!("cmd/{t}")).collect();
    let log = cache.join(format!("build-{version}.log"));
    run_logged(
        Process::new("make")
            .arg(format!("WHAT={}", what.join(" ")))
            .current_dir(gopath.join("src/k8s.io/kubernetes"))
            .env("GOPATH", &gopath)
            .env("CGO_ENABLED", "0")
            .env("GOFLAGS", "-mod=vendor")
            .env("GOCACHE", cache.join("gocache")),
        &log,
    )
    .context("building kubernetes")?;

    // Publish atomically: a half-finished build never looks like a cache hit.
    let dest = cache.join(format!("kubernetes-{version}"));
    let bin_tmp = dest.join("bin.tmp");
    let _ = std::fs::remove_dir_all(&bin_tmp);
    std::fs::create_dir_all(&bin_tmp)?;
    let mut existing: Vec<PathBuf> = Vec::new();
    if dest.join("bin").is_dir() {
        existing = std::fs::read_dir(dest.join("bin"))?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    }
    for path in existing {
        if let Some(name) = path.file_name() {
            std::fs::copy(&path, bin_tmp.join(name))?;
        }
    }
    for target in targets {
        let built = src.join("_output/bin").join(target);
        std::fs::copy(&built, bin_tmp.join(target)).with_context(|| format!("copying {}", built.display()))?;
    }
    let _ = std::fs::remove_dir_all(dest.join("src"));
    std::fs::rename(&src, dest.join("src")).context("keeping the patched source")?;
    // The link inside .go pointed at the old place.
    let link = dest.join("src/.go/src/k8s.io/kubernetes");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(dest.join("src"), &link)?;
    let _ = std::fs::remove_dir_all(dest.join("bin"));
    std::fs::rename(&bin_tmp, dest.join("bin"))?;
    let _ = std::fs::remove_dir_all(&work);
    println!("testenv: built in {:.0?}; cached in {}", started.elapsed(), dest.display());
    Ok(())
}

fn ensure_deb_src() -> Result<()> {
    let _apt = APT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let has_source = |_: ()| {
        Process::new("apt-cache")
            .args(["showsrc", "kubernetes"])
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("Package: kubernetes"))
    };
    if has_source(()) {
        return Ok(());
    }
    if !is_root() {
        bail!("Debian's kubernetes source package is needed: run as root so {SOURCES_FILE} can be written");
    }
    std::fs::write(
        SOURCES_FILE,
        "Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: main\n\
         Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n",
    )
    .with_context(|| format!("writing {SOURCES_FILE}"))?;
    apt(&["update", "-q"])?;
    if !has_source(()) {
        bail!("apt-cache still finds no source package `kubernetes` after adding {SOURCES_FILE}");
    }
    Ok(())
}

/// Runs a command with its output in `log`; on failure the error shows the log's end.
pub(crate) fn run_logged(cmd: &mut Process, log: &Path) -> Result<()> {
    let file = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let status = cmd.stdout(file.try_clone()?).stderr(file).status().with_context(|| format!("running {cmd:?}"))?;
    if !status.success() {
        bail!("{:?} failed ({status}); the end of {}:\n{}", cmd.get_program(), log.display(), tail(log, 30));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minor_means_its_pinned_patch_release() {
        assert_eq!(Kubernetes::parse("current").unwrap(), Kubernetes::Go(CURRENT.to_owned()));
        assert_eq!(Kubernetes::parse("1.37").unwrap(), Kubernetes::Go("1.37.2".to_owned()));
        assert_eq!(Kubernetes::parse("v1.35").unwrap(), Kubernetes::Go("1.35.4".to_owned()));
        assert_eq!(Kubernetes::parse("1.36").unwrap(), Kubernetes::Go("1.36.3".to_owned()));
        assert_eq!(Kubernetes::parse("1.36.1").unwrap(), Kubernetes::Go("1.36.1".to_owned()));
        assert_eq!(Kubernetes::parse("1.20").unwrap(), Kubernetes::Debian);
        assert!(Kubernetes::parse("1.30").is_err(), "no pinned patch release of 1.30");
        assert!(Kubernetes::parse("1.25.3").is_err(), "older than the Go-module builds support");
    }

    #[test]
    fn the_pki_holds_every_file_the_control_plane_reads() {
        let state = std::env::temp_dir().join(format!("kube9-pki-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&state);
        let pki = ensure_pki(&state).unwrap();
        ensure_client_certs(&pki).unwrap();
        for file in [
            "ca.crt",
            "apiserver.crt",
            "apiserver.key",
            "sa.key",
            "sa.pub",
            "tokens.csv",
            "kubelet-client.crt",
            "front-proxy-client.crt",
        ] {
            assert!(pki.join(file).is_file(), "{file} missing");
        }
        let subject = Process::new("openssl")
            .args(["x509", "-noout", "-subject", "-in"])
            .arg(pki.join("kubelet-client.crt"))
            .output()
            .unwrap();
        assert!(String::from_utf8_lossy(&subject.stdout).contains("system:masters"));
        std::fs::remove_dir_all(&state).unwrap();
    }
}
