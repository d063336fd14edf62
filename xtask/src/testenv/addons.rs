//! `cargo xtask testenv up --with <addon>`: real ecosystem components beside the control
//! plane, for the tests that need them. Each is read or built from its own published Go module
//! (nothing prebuilt is downloaded, nothing fetched is committed):
//!
//! - `gateway-api`: the Gateway API CRDs of the standard channel (`sigs.k8s.io/gateway-api`).
//! - `kueue`: Kueue's CRDs and its controller (`sigs.k8s.io/kueue/cmd/kueue`), run as a process
//!   beside kube-controller-manager with the admin kubeconfig (no webhooks are registered, so
//!   the API server never calls it; its own certificates are made here).
//! - `metrics-server`: `sigs.k8s.io/metrics-server`, run as a process on the machine's address
//!   and registered as the `v1beta1.metrics.k8s.io` APIService through a Service without
//!   selector and an EndpointSlice (the API server's aggregator routes to endpoints). It scrapes
//!   the real node's kubelet (`--node`) with the API server's kubelet client certificate.
//!
//! They need a current server (the CRDs carry CEL rules): `--kubernetes 1.20` refuses them.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::{Kubernetes, gomod, openssl, running_pid, spawn, wait};

/// The Gateway API release whose CRDs are installed.
pub const GATEWAY_API_VERSION: &str = "1.6.3";
/// The Kueue release built and installed.
pub const KUEUE_VERSION: &str = "0.17.0";
/// The metrics-server release built.
pub const METRICS_SERVER_VERSION: &str = "0.8.0";

/// The add-ons `--with` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Addon {
    GatewayApi,
    Kueue,
    MetricsServer,
}

/// The processes add-ons start (stopped by `down`).
pub const COMPONENTS: [&str; 2] = ["kueue", "metrics-server"];

/// Installs `addons` into the running control plane (each is idempotent: a second `up` with
/// the same add-on finds it in place).
pub fn up(state: &Path, kubernetes: &Kubernetes, kubeconfig: &Path, addons: &[Addon]) -> Result<()> {
    if addons.is_empty() {
        return Ok(());
    }
    if kubernetes.legacy() {
        bail!(
            "--with {} needs a current Kubernetes (the CRDs carry CEL rules): start without --kubernetes 1.20",
            addons.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>().join(",")
        );
    }
    for addon in addons {
        let started = Instant::now();
        match addon {
            Addon::GatewayApi => gateway_api(kubeconfig)?,
            Addon::Kueue => kueue(state, kubeconfig)?,
            Addon::MetricsServer => metrics_server(state, kubeconfig)?,
        }
        println!("testenv: {addon:?} ready in {:.1?}", started.elapsed());
    }
    Ok(())
}

/// Builds (or fetches) what `up` installs for `addons`, starting nothing, so it can be done
/// before the cluster is up.
pub fn build(addons: &[Addon]) -> Result<()> {
    for addon in addons {
        match addon {
            Addon::GatewayApi => gomod::module_dir("sigs.k8s.io/gateway-api", GATEWAY_API_VERSION).map(|_| ())?,
            Addon::Kueue => {
                gomod::module_dir("sigs.k8s.io/kueue", KUEUE_VERSION)?;
                kueue_binary()?;
            }
            Addon::MetricsServer => {
                metrics_server_binary()?;
            }
        }
    }
    Ok(())
}

fn kueue_binary() -> Result<PathBuf> {
    gomod::ensure(&gomod::Build {
        name: "kueue",
        module: "sigs.k8s.io/kueue",
        version: KUEUE_VERSION,
        commands: &["sigs.k8s.io/kueue/cmd/kueue"],
        ldflags: vec![format!("sigs.k8s.io/kueue/pkg/version.GitVersion=v{KUEUE_VERSION}")],
        replaces: vec![],
    })
}

fn metrics_server_binary() -> Result<PathBuf> {
    gomod::ensure(&gomod::Build {
        name: "metrics-server",
        module: "sigs.k8s.io/metrics-server",
        version: METRICS_SERVER_VERSION,
        commands: &["sigs.k8s.io/metrics-server/cmd/metrics-server"],
        ldflags: vec![],
        replaces: vec![],
    })
}

/// `kubectl apply --server-side` of every file (or directory) given.
fn apply(kubeconfig: &Path, paths: &[PathBuf]) -> Result<()> {
    let mut cmd = std::process::Command::new("kubectl");
    cmd.args(["apply", "--server-side", "--force-conflicts"]).env("KUBECONFIG", kubeconfig);
    for path in paths {
        cmd.arg("-f").arg(path);
    }
    let out = cmd.output().context("running kubectl")?;
    if !out.status.success() {
        bail!("kubectl apply failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// Waits until every CRD of `group` is Established.
fn established(kubeconfig: &Path, crds: &[String]) -> Result<()> {
    let out = std::process::Command::new("kubectl")
        .args(["wait", "--for=condition=Established", "--timeout=60s"])
        .args(crds.iter().map(|c| format!("crd/{c}")))
        .env("KUBECONFIG", kubeconfig)
        .output()
        .context("running kubectl wait")?;
    if !out.status.success() {
        bail!("CRDs not Established: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// The CRD files in `dir` and the names they define (`<plural>.<group>` is the file name
/// before `.yaml`, after the group: `<group>_<plural>.yaml`).
fn crd_files(dir: &Path) -> Result<(Vec<PathBuf>, Vec<String>)> {
    let mut files = Vec::new();
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let Some(stem) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".yaml")) else {
            continue;
        };
        // Kubebuilder's naming: `<group>_<plural>.yaml`; anything else (a policy) is applied
        // but not waited for.
        if let Some((group, plural)) = stem.split_once('_')
            && !plural.contains('_')
            && group.contains('.')
        {
            names.push(format!("{plural}.{group}"));
        }
        files.push(path);
    }
    files.sort();
    names.sort();
    if names.is_empty() {
        bail!("no CRDs in {}", dir.display());
    }
    Ok((files, names))
}

fn gateway_api(kubeconfig: &Path) -> Result<()> {
    let module = gomod::module_dir("sigs.k8s.io/gateway-api", GATEWAY_API_VERSION)?;
    let (files, names) = crd_files(&module.join("config/crd/standard"))?;
    apply(kubeconfig, &files)?;
    established(kubeconfig, &names)
}

/// A port nobody listens on now (the kernel's choice), so two testenvs never compete.
fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Whether `GET path` on 127.0.0.1:`port` answers 200 (plain HTTP).
fn http_ok(port: u16, path: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.") && &head[9..12] == b"200"
}

/// A self-signed serving certificate `tls.crt`/`tls.key` in `dir` (made once).
fn serving_cert(dir: &Path, name: &str) -> Result<()> {
    if dir.join("tls.crt").is_file() && dir.join("tls.key").is_file() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    let subject = format!("/CN={name}");
    openssl(
        dir,
        &[&[
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "tls.key", "-out", "tls.crt", "-days", "3650",
            "-subj", &subject,
        ]],
    )
}

fn kueue(state: &Path, kubeconfig: &Path) -> Result<()> {
    let module = gomod::module_dir("sigs.k8s.io/kueue", KUEUE_VERSION)?;
    let (files, names) = crd_files(&module.join("config/components/crd/bases"))?;
    apply(kubeconfig, &files)?;
    established(kubeconfig, &names)?;
    if running_pid(state, "kueue").is_some() {
        return Ok(());
    }
    let bin = kueue_binary()?;
    let dir = state.join("kueue");
    let certs = dir.join("certs");
    serving_cert(&certs, "kueue-webhook-service.kueue-system.svc")?;
    // Kueue reads its metrics certificate from this fixed path when it does not manage its
    // own certificates (which would need its webhook Service in the cluster).
    let metrics_certs = Path::new("/etc/kueue/metrics/certs");
    serving_cert(metrics_certs, "kueue-metrics").with_context(|| {
        format!(
            "Kueue's controller reads its metrics certificate from {}: it must be writable",
            metrics_certs.display()
        )
    })?;
    apply_json(
        kubeconfig,
        &dir,
        "namespace",
        &serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kueue-system"}}),
    )?;
    let health = free_port()?;
    let config = format!(
        "apiVersion: config.kueue.x-k8s.io/v1beta2
kind: Configuration
namespace: kueue-system
health:
  healthProbeBindAddress: 127.0.0.1:{health}
metrics:
  bindAddress: 127.0.0.1:{metrics}
webhook:
  host: 127.0.0.1
  port: {webhook}
  certDir: {certs}
leaderElection:
  leaderElect: false
internalCertManagement:
  enable: false
integrations:
  frameworks:
  - batch/job
",
        metrics = free_port()?,
        webhook = free_port()?,
        certs = certs.display(),
    );
    let config_path = dir.join("config.yaml");
    std::fs::write(&config_path, config)?;
    spawn(
        state,
        "kueue",
        &bin.join("kueue"),
        &[
            format!("--config={}", config_path.display()),
            format!("--kubeconfig={}", kubeconfig.display()),
            // The on-demand visibility API would need its APIService and certificates at a
            // fixed path; the tests read ClusterQueues and Workloads directly.
            "--feature-gates=VisibilityOnDemand=false".into(),
        ],
    )?;
    wait(state, "kueue", Duration::from_secs(90), || http_ok(health, "/readyz"))
}

/// Writes `value` to `<dir>/<name>.json` and applies it.
fn apply_json(kubeconfig: &Path, dir: &Path, name: &str, value: &serde_json::Value) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, value.to_string())?;
    apply(kubeconfig, &[path])
}

/// The machine's own address (the one its default route leaves from): what the API server
/// can reach and an endpoint may hold (loopback may not).
fn machine_address() -> Result<String> {
    let socket = UdpSocket::bind("0.0.0.0:0")?;
    // No packet is sent: connecting a UDP socket only picks the route and the source address.
    socket.connect("10.255.255.254:9").context("the machine has no route to pick its own address from")?;
    let ip = socket.local_addr()?.ip();
    if ip.is_loopback() || ip.is_unspecified() {
        bail!("the machine's own address is {ip}: metrics-server needs an address the API server may route to");
    }
    Ok(ip.to_string())
}

fn metrics_server(state: &Path, kubeconfig: &Path) -> Result<()> {
    let dir = state.join("metrics-server");
    std::fs::create_dir_all(&dir)?;
    let address = machine_address()?;
    let port_file = dir.join("port");
    let port = match (running_pid(state, "metrics-server"), std::fs::read_to_string(&port_file)) {
        (Some(_), Ok(port)) => port.trim().parse().context("reading the metrics-server port")?,
        _ => {
            let bin = metrics_server_binary()?;
            let pki = state.join("pki");
            let port = free_port()?;
            let kubelet_port = super::port("KUBE9_TESTENV_KUBELET_PORT", 10250)?;
            spawn(
                state,
                "metrics-server",
                &bin.join("metrics-server"),
                &[
                    format!("--kubeconfig={}", kubeconfig.display()),
                    format!("--authentication-kubeconfig={}", kubeconfig.display()),
                    format!("--authorization-kubeconfig={}", kubeconfig.display()),
                    format!("--bind-address={address}"),
                    format!("--secure-port={port}"),
                    format!("--cert-dir={}", dir.join("certs").display()),
                    format!("--kubelet-port={kubelet_port}"),
                    "--kubelet-preferred-address-types=InternalIP".into(),
                    // The kubelet's serving certificate is its own self-signed one.
                    "--kubelet-insecure-tls".into(),
                    // The kubelet accepts clients with a certificate from the testenv CA.
                    format!("--kubelet-client-certificate={}", pki.join("kubelet-client.crt").display()),
                    format!("--kubelet-client-key={}", pki.join("kubelet-client.key").display()),
                    "--metric-resolution=15s".into(),
                ],
            )?;
            std::fs::write(&port_file, port.to_string())?;
            port
        }
    };
    let objects = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "metrics-server", "namespace": "kube-system", "labels": {"k8s-app": "metrics-server"}},
         "spec": {"ports": [{"name": "https", "port": 443, "targetPort": port}]}},
        {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
         "metadata": {"name": "metrics-server-testenv", "namespace": "kube-system",
                      "labels": {"kubernetes.io/service-name": "metrics-server",
                                 "endpointslice.kubernetes.io/managed-by": "kube9-testenv"}},
         "addressType": "IPv4",
         "endpoints": [{"addresses": [address], "conditions": {"ready": true}}],
         "ports": [{"name": "https", "port": port, "protocol": "TCP"}]},
        {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
         "metadata": {"name": "v1beta1.metrics.k8s.io", "labels": {"k8s-app": "metrics-server"}},
         "spec": {"group": "metrics.k8s.io", "version": "v1beta1", "groupPriorityMinimum": 100, "versionPriority": 100,
                  "insecureSkipTLSVerify": true,
                  "service": {"name": "metrics-server", "namespace": "kube-system", "port": 443}}},
    ]});
    apply_json(kubeconfig, &dir, "registration", &objects)?;
    wait(state, "metrics-server", Duration::from_secs(90), || {
        super::kubectl_ok(kubeconfig, &["get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes"])
    })
}
