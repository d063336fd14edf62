//! `cargo xtask testenv up --node`: a real node beside the control plane, so Pods run.
//!
//! runc and the CNI plugins come from Debian; containerd too for the 1.20 node, and for a
//! Go-built Kubernetes containerd 2 built from its Go module (a kubelet from 1.36 on refuses
//! Debian's 1.6); kubelet and kube-scheduler are built from the same source as the control
//! plane (the Go module, or Debian's 1.20 source);
//! the pause image is compiled from that source and built with buildah (no registry is
//! reachable). Everything
//! the node writes lives under `target/testenv/node`, with its own containerd socket, so it
//! does not touch a containerd the machine may run.

use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::{Kubernetes, cache_dir, kubectl_ok, port, running_pid, signal, spawn, stop, wait};

/// Debian packages the node needs.
pub const PACKAGES: &[&str] = &["containerd", "runc", "containernetworking-plugins", "buildah", "libc6-dev"];
/// Binaries built from the kubernetes source for the node.
pub const BINARIES: &[&str] = &["kubelet", "kube-scheduler"];
/// The node's processes, in start order.
pub const COMPONENTS: [&str; 3] = ["containerd", "kube-scheduler", "kubelet"];
/// The node's name in the cluster.
pub const NODE_NAME: &str = "kube9-node";
/// The sandbox image, built locally.
pub const PAUSE_IMAGE: &str = "localhost/kube9/pause:3.4";
/// The containerd namespace the kubelet's containers live in.
const K8S_NAMESPACE: &str = "k8s.io";

/// The file under the node's directory naming the directory of the containerd it runs (and of
/// the `ctr` that talks to it).
const CONTAINERD_BIN: &str = "containerd-bin";

/// The containerd a node runs: Debian's 1.6 beside the 1.20 kubelet, containerd 2 (built from
/// its Go module) beside a Go-built one.
struct Runtime {
    /// The directory holding `containerd`, `ctr` and, for containerd 2, its runc shim.
    bin: PathBuf,
    /// Whether its configuration has containerd 2's layout.
    v2: bool,
}

impl Runtime {
    fn for_kubernetes(kubernetes: &Kubernetes) -> Result<Runtime> {
        Ok(match kubernetes {
            Kubernetes::Debian => Runtime { bin: PathBuf::from("/usr/bin"), v2: false },
            Kubernetes::Go(_) => Runtime { bin: super::gomod::containerd()?, v2: true },
        })
    }
}

/// `target/testenv/node`.
pub fn dir(state: &Path) -> PathBuf {
    state.join("node")
}

/// The node's containerd socket.
pub fn socket(state: &Path) -> PathBuf {
    dir(state).join("containerd.sock")
}

/// Whether every node process is running.
pub fn running(state: &Path) -> bool {
    COMPONENTS.iter().all(|c| running_pid(state, c).is_some())
}

/// Starts containerd, kube-scheduler and the kubelet, and waits for the node to be Ready.
pub fn up(state: &Path, kubernetes: &Kubernetes, bin: &Path, kubeconfig: &Path) -> Result<()> {
    let started = Instant::now();
    let node = dir(state);
    std::fs::create_dir_all(&node).with_context(|| format!("creating {}", node.display()))?;
    let kubelet_port = port("KUBE9_TESTENV_KUBELET_PORT", 10250)?;
    for p in [kubelet_port, kubelet_port - 2] {
        if std::net::TcpListener::bind(("127.0.0.1", p)).is_err() {
            bail!("port {p} on 127.0.0.1 is in use: stop what holds it, or set KUBE9_TESTENV_KUBELET_PORT");
        }
    }

    // containerd, with every path under target/testenv/node.
    let runtime = Runtime::for_kubernetes(kubernetes)?;
    std::fs::write(node.join(CONTAINERD_BIN), runtime.bin.as_os_str().as_encoded_bytes())
        .context("recording which containerd the node runs")?;
    let config = node.join("containerd.toml");
    std::fs::write(&config, containerd_config(&node, &runtime)?).context("writing the containerd configuration")?;
    write_cni(&node, &network()?)?;
    let sock = socket(state);
    let _ = std::fs::remove_file(&sock);
    spawn(state, "containerd", &runtime.bin.join("containerd"), &["--config".into(), config.display().to_string()])?;
    wait(state, "containerd", Duration::from_secs(30), || ctr(state, &["version"]).is_ok())?;
    import_image(state, &pause_image(&pause_source(kubernetes, bin)?)?)?;

    if running_pid(state, "kube-scheduler").is_none() {
        start_scheduler(state, kubernetes, bin, kubeconfig)?;
    }

    let kubelet_config = node.join("kubelet.yaml");
    let client_ca = state.join("pki").join("ca.crt");
    std::fs::write(&kubelet_config, kubelet_configuration(kubernetes, kubelet_port, &sock, &client_ca))
        .context("writing the kubelet configuration")?;
    let mut kubelet = vec![
        format!("--kubeconfig={}", kubeconfig.display()),
        format!("--config={}", kubelet_config.display()),
        format!("--hostname-override={NODE_NAME}"),
        format!("--root-dir={}", node.join("kubelet").display()),
        format!("--cert-dir={}", node.join("kubelet-pki").display()),
    ];
    if kubernetes.legacy() {
        // Removed since: the runtime endpoint is in the configuration, the sandbox image is
        // containerd's own setting.
        kubelet.extend([
            "--container-runtime=remote".into(),
            format!("--container-runtime-endpoint=unix://{}", sock.display()),
            format!("--pod-infra-container-image={PAUSE_IMAGE}"),
        ]);
    }
    spawn(state, "kubelet", &bin.join("kubelet"), &kubelet)?;
    wait(state, "kubelet", Duration::from_secs(90), || {
        kubectl_ok(kubeconfig, &["wait", "--for=condition=Ready", &format!("node/{NODE_NAME}"), "--timeout=1s"])
    })?;
    wait(state, "kube-scheduler", Duration::from_secs(10), || true)?;
    println!("testenv: node {NODE_NAME} ready in {:.1?}", started.elapsed());
    Ok(())
}

/// Starts kube-scheduler (for the node's Pods, or kwok's).
pub fn start_scheduler(state: &Path, kubernetes: &Kubernetes, bin: &Path, kubeconfig: &Path) -> Result<()> {
    // No serving port (--secure-port=0), so two testenvs never compete for one.
    let mut scheduler = vec![format!("--kubeconfig={}", kubeconfig.display()), "--leader-elect=false".into()];
    if kubernetes.legacy() {
        scheduler.push("--port=0".into());
    }
    scheduler.push("--secure-port=0".into());
    spawn(state, "kube-scheduler", &bin.join("kube-scheduler"), &scheduler)
}

/// Stops the node: the kubelet first (so it restarts nothing), then every container it
/// started, then containerd; unmounts what they mounted. Safe to run twice.
pub fn down(state: &Path, stopped: &mut Vec<String>) -> Result<()> {
    stop(state, "kubelet", stopped)?;
    stop(state, "kube-scheduler", stopped)?;
    if running_pid(state, "containerd").is_some() {
        remove_containers(state);
    }
    stop(state, "containerd", stopped)?;
    kill_shims(state);
    unmount_under(&dir(state));
    Ok(())
}

/// Kills and deletes every container and sandbox in the kubelet's namespace.
fn remove_containers(state: &Path) {
    let tasks = ctr(state, &["tasks", "ls", "-q"]).unwrap_or_default();
    for id in tasks.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let _ = ctr(state, &["tasks", "kill", "-a", "-s", "SIGKILL", id]);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    for id in tasks.lines().map(str::trim).filter(|l| !l.is_empty()) {
        while ctr(state, &["tasks", "delete", id]).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let containers = ctr(state, &["containers", "ls", "-q"]).unwrap_or_default();
    for id in containers.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let _ = ctr(state, &["containers", "delete", id]);
    }
}

/// containerd's shims outlive it by design; ours are the ones naming our socket.
fn kill_shims(state: &Path) {
    let sock = socket(state).display().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else { return };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|p| p.parse::<u32>().ok()) else { continue };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else { continue };
        let args: Vec<String> = cmdline.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        if args.first().is_some_and(|a| a.contains("containerd-shim")) && args.iter().any(|a| a == &sock) {
            signal(pid, "KILL");
        }
    }
}

/// Unmounts everything mounted under `dir` (volumes, rootfs, shm), deepest first.
fn unmount_under(dir: &Path) {
    let prefix = dir.display().to_string();
    let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") else { return };
    let mut points: Vec<&str> =
        mountinfo.lines().filter_map(|l| l.split(' ').nth(4)).filter(|p| p.starts_with(&prefix)).collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for point in points {
        let _ = Process::new("umount").args(["-l", point]).status();
    }
}

/// Runs `ctr` (the one of the containerd the node runs) against the node's containerd in the
/// kubelet's namespace.
pub fn ctr(state: &Path, args: &[&str]) -> Result<String> {
    let bin = std::fs::read(dir(state).join(CONTAINERD_BIN)).ok().and_then(|b| String::from_utf8(b).ok());
    let ctr = bin.map_or_else(|| PathBuf::from("ctr"), |b| Path::new(&b).join("ctr"));
    let out = Process::new(&ctr)
        .arg("--address")
        .arg(socket(state))
        .args(["--namespace", K8S_NAMESPACE])
        .args(args)
        .output()
        .with_context(|| format!("running {}", ctr.display()))?;
    if !out.status.success() {
        bail!("ctr {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Imports an OCI archive into the node's containerd.
pub fn import_image(state: &Path, archive: &Path) -> Result<()> {
    let path = archive.display().to_string();
    ctr(state, &["images", "import", "--all-platforms", &path]).map(|_| ())
}

/// Builds an image from the files in `rootfs` with buildah into an OCI archive at `out`.
pub fn build_image(
    name: &str,
    rootfs: &Path,
    user: Option<&str>,
    entrypoint: &str,
    env: &[&str],
    out: &Path,
) -> Result<()> {
    super::ensure_packages(&["buildah"])?;
    let store = cache_dir().join("buildah");
    let buildah = |args: &[&str]| -> Result<String> {
        let out = Process::new("buildah")
            .args(["--storage-driver", "vfs", "--root"])
            .arg(store.join("root"))
            .arg("--runroot")
            .arg(store.join("run"))
            .args(args)
            .output()
            .context("running buildah (Debian package buildah)")?;
        if !out.status.success() {
            bail!("buildah {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let container = buildah(&["from", "scratch"])?;
    let result = (|| {
        let source = format!("{}/.", rootfs.display());
        buildah(&["copy", &container, &source, "/"])?;
        let entry = format!("[\"{entrypoint}\"]");
        let mut config = vec!["config", "--entrypoint", &entry];
        if let Some(user) = user {
            config.extend(["--user", user]);
        }
        for variable in env {
            config.extend(["--env", variable]);
        }
        config.push(&container);
        buildah(&config)?;
        buildah(&["commit", "--quiet", &container, name])?;
        let _ = std::fs::remove_file(out);
        buildah(&["push", "--quiet", name, &format!("oci-archive:{}:{name}", out.display())])?;
        buildah(&["rmi", name]).map(|_| ())
    })();
    let _ = buildah(&["rm", &container]);
    result.with_context(|| format!("building the image {name}"))
}

/// pause.c in the kubernetes source the binaries were built from.
fn pause_source(kubernetes: &Kubernetes, bin: &Path) -> Result<PathBuf> {
    let relative = "build/pause/linux/pause.c";
    match kubernetes {
        Kubernetes::Debian => {
            Ok(bin.parent().context("the binaries' directory has no parent")?.join("src").join(relative))
        }
        Kubernetes::Go(version) => Ok(super::gomod::module_dir("k8s.io/kubernetes", version)?.join(relative)),
    }
}

/// The pause image as an OCI archive, built once from the kubernetes source's pause.c.
fn pause_image(source: &Path) -> Result<PathBuf> {
    let archive = cache_dir().join("images/pause-3.4.oci.tar");
    if archive.exists() {
        return Ok(archive);
    }
    let work = cache_dir().join("images/pause-rootfs");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let status = Process::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(work.join("pause"))
        .arg(source)
        .status()
        .context("running gcc")?;
    if !status.success() {
        bail!("compiling {} failed (is libc6-dev installed?)", source.display());
    }
    let tmp = archive.with_extension("tmp");
    build_image(PAUSE_IMAGE, &work, None, "/pause", &[], &tmp)?;
    std::fs::rename(&tmp, &archive)?;
    let _ = std::fs::remove_dir_all(&work);
    Ok(archive)
}

fn containerd_config(node: &Path, runtime: &Runtime) -> Result<String> {
    let containerd = runtime.bin.join("containerd");
    let out = Process::new(&containerd)
        .args(["config", "default"])
        .output()
        .with_context(|| format!("running {}", containerd.display()))?;
    if !out.status.success() {
        bail!("containerd config default failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let default = String::from_utf8_lossy(&out.stdout).into_owned();
    let d = |name: &str| node.join(name).display().to_string();
    let replacements = if runtime.v2 {
        vec![
            ("root = '/var/lib/containerd'", format!("root = '{}'", d("containerd/root"))),
            ("state = '/run/containerd'", format!("state = '{}'", d("containerd/state"))),
            ("address = '/run/containerd/containerd.sock'", format!("address = '{}'", d("containerd.sock"))),
            (
                "address = '/run/containerd/containerd.sock.ttrpc'",
                format!("address = '{}'", d("containerd.sock.ttrpc")),
            ),
            ("sandbox = 'registry.k8s.io/pause:", format!("sandbox = '{PAUSE_IMAGE}' # was 'registry.k8s.io/pause:")),
            ("bin_dirs = ['/opt/cni/bin']", "bin_dirs = ['/usr/lib/cni']".into()),
            ("conf_dir = '/etc/cni/net.d'", format!("conf_dir = '{}'", d("cni"))),
            // Its runc shim sits beside it, not on the PATH.
            (
                "runtime_path = ''",
                format!("runtime_path = '{}'", runtime.bin.join("containerd-shim-runc-v2").display()),
            ),
            // These machines refuse a negative oom_score_adj; without this every sandbox fails.
            ("restrict_oom_score_adj = false", "restrict_oom_score_adj = true".into()),
        ]
    } else {
        vec![
            ("root = \"/var/lib/containerd\"", format!("root = \"{}\"", d("containerd/root"))),
            ("state = \"/run/containerd\"", format!("state = \"{}\"", d("containerd/state"))),
            ("address = \"/run/containerd/containerd.sock\"", format!("address = \"{}\"", d("containerd.sock"))),
            ("sandbox_image = \"registry.k8s.io/pause:3.6\"", format!("sandbox_image = \"{PAUSE_IMAGE}\"")),
            ("bin_dir = \"/opt/cni/bin\"", "bin_dir = \"/usr/lib/cni\"".into()),
            ("conf_dir = \"/etc/cni/net.d\"", format!("conf_dir = \"{}\"", d("cni"))),
            ("restrict_oom_score_adj = false", "restrict_oom_score_adj = true".into()),
        ]
    };
    let mut config = default;
    for (from, to) in replacements {
        if !config.contains(from) {
            bail!("containerd's default configuration has no `{from}`: this containerd version is not supported");
        }
        config = config.replacen(from, &to, 1);
    }
    Ok(config)
}

/// The node's Pod network.
pub struct Network {
    pub bridge: String,
    pub subnet: String,
    /// The bridge's own address: where Pods reach the host (and the API server).
    pub gateway: String,
}

/// `kube9br0` with 10.244.0.0/24 for the default API server port, another bridge and subnet
/// for another port, so two testenvs can run nodes side by side.
pub fn network() -> Result<Network> {
    let apiserver = port("KUBE9_TESTENV_APISERVER_PORT", super::DEFAULT_APISERVER_PORT)?;
    let index = if apiserver == super::DEFAULT_APISERVER_PORT { 0 } else { 1 + apiserver % 250 };
    Ok(Network {
        bridge: format!("kube9br{index}"),
        subnet: format!("10.244.{index}.0/24"),
        gateway: format!("10.244.{index}.1"),
    })
}

fn write_cni(node: &Path, Network { bridge, subnet, .. }: &Network) -> Result<()> {
    let cni = node.join("cni");
    std::fs::create_dir_all(&cni)?;
    let ipam = node.join("cni-ipam").display().to_string();
    std::fs::write(
        cni.join("10-kube9.conflist"),
        format!(
            r#"{{"cniVersion": "0.4.0", "name": "{bridge}", "plugins": [{{"type": "bridge", "bridge": "{bridge}",
"isGateway": true, "ipMasq": true, "ipam": {{"type": "host-local", "dataDir": "{ipam}",
"ranges": [[{{"subnet": "{subnet}"}}]], "routes": [{{"dst": "0.0.0.0/0"}}]}}}},
{{"type": "portmap", "capabilities": {{"portMappings": true}}}}]}}
"#
        ),
    )?;
    std::fs::write(cni.join("99-loopback.conf"), r#"{"cniVersion": "0.4.0", "name": "lo", "type": "loopback"}"#)?;
    Ok(())
}

/// The kubelet listens on every address, because the API server reaches it at the node's
/// InternalIP (the machine's own address; the kubelet refuses a loopback node IP), and accepts
/// only clients with a certificate from the testenv CA: the API server's, for exec and logs.
fn kubelet_configuration(kubernetes: &Kubernetes, port: u16, socket: &Path, client_ca: &Path) -> String {
    let current = if kubernetes.legacy() {
        String::new()
    } else {
        // These machines use cgroup v1, which a kubelet refuses from 1.35 on unless told.
        format!("containerRuntimeEndpoint: unix://{}\nfailCgroupV1: false\n", socket.display())
    };
    format!(
        "apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 0.0.0.0
port: {port}
healthzBindAddress: 127.0.0.1
healthzPort: {healthz}
readOnlyPort: 0
cgroupDriver: cgroupfs
cgroupsPerQOS: false
enforceNodeAllocatable: []
failSwapOn: false
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: false
  x509:
    clientCAFile: {client_ca}
authorization:
  mode: AlwaysAllow
# The build machines' disks are shared; do not evict test Pods over them.
evictionHard:
  memory.available: 50Mi
  nodefs.available: 1%
  imagefs.available: 1%
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
{current}",
        healthz = port - 2,
        client_ca = client_ca.display()
    )
}
