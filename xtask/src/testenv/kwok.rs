//! `cargo xtask testenv up --kwok N`: N fake Nodes, managed by kwok (`sigs.k8s.io/kwok`,
//! built from its Go module like the control plane), and Pods on them that reach Running
//! without a container runtime, so scale tests see a realistic cluster.
//!
//! The Nodes are labelled `type=kwok` and tainted `kwok.x-k8s.io/node=fake:NoSchedule`, so
//! only Pods that tolerate the taint land on them; the first `--kwok-gpu-nodes` of them have
//! `nvidia.com/gpu: 8`. kube-scheduler runs (started here when no real node runs) to bind
//! Pods; kwok's stages (from its module: node-initialize, node-heartbeat-with-lease,
//! pod-ready, pod-complete, pod-delete) move them along.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::{Kubernetes, gomod, port, running_pid, spawn, wait};

/// The kwok release built.
pub const VERSION: &str = "0.8.0";
/// The label every fake Node carries.
pub const LABEL: &str = "type=kwok";

/// The kwok binary, built once.
fn binary() -> Result<PathBuf> {
    let bin = gomod::ensure(&gomod::Build {
        name: "kwok",
        module: "sigs.k8s.io/kwok",
        version: VERSION,
        commands: &["sigs.k8s.io/kwok/cmd/kwok"],
        ldflags: vec![],
        replaces: vec![],
    })?;
    Ok(bin.join("kwok"))
}

/// Builds what `up` needs (the binary, the module with the stage definitions) without
/// starting anything, so it can be done while the cluster is busy with other tests.
pub fn build() -> Result<()> {
    binary()?;
    gomod::module_dir("sigs.k8s.io/kwok", VERSION).map(|_| ())
}

/// kwok's own stage definitions, from its module, in one file.
fn stages(state: &Path) -> Result<PathBuf> {
    let module = gomod::module_dir("sigs.k8s.io/kwok", VERSION)?;
    let dir = module.join("kustomize/stage");
    let files = [
        "node/fast/node-initialize.yaml",
        "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
        "pod/fast/pod-ready.yaml",
        "pod/fast/pod-complete.yaml",
        "pod/fast/pod-delete.yaml",
    ];
    let mut text = String::new();
    for file in files {
        let path = dir.join(file);
        text.push_str("---\n");
        text.push_str(&std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?);
        text.push('\n');
    }
    let out = state.join("kwok/stages.yaml");
    std::fs::create_dir_all(state.join("kwok"))?;
    std::fs::write(&out, text)?;
    Ok(out)
}

/// Starts kwok (and kube-scheduler if it is not running) and creates `nodes` fake Nodes, the
/// first `gpu_nodes` with GPUs; waits until all are Ready.
pub fn up(
    state: &Path,
    kubernetes: &Kubernetes,
    bin: &Path,
    kubeconfig: &Path,
    nodes: u32,
    gpu_nodes: u32,
) -> Result<()> {
    let started = Instant::now();
    let kwok = binary()?;
    if running_pid(state, "kube-scheduler").is_none() {
        super::node::start_scheduler(state, kubernetes, bin, kubeconfig)?;
    }
    if running_pid(state, "kwok").is_none() {
        let server = port("KUBE9_TESTENV_KWOK_PORT", 10247)?;
        if std::net::TcpListener::bind(("127.0.0.1", server)).is_err() {
            bail!("port {server} on 127.0.0.1 is in use: stop what holds it, or set KUBE9_TESTENV_KWOK_PORT");
        }
        spawn(
            state,
            "kwok",
            &kwok,
            &[
                format!("--kubeconfig={}", kubeconfig.display()),
                format!("--config={}", stages(state)?.display()),
                format!("--manage-nodes-with-label-selector={LABEL}"),
                format!("--server-address=127.0.0.1:{server}"),
                "--cidr=10.250.0.1/16".into(),
                "--node-ip=10.251.0.1".into(),
            ],
        )?;
        std::thread::sleep(Duration::from_secs(2));
        if running_pid(state, "kwok").is_none() {
            let log = state.join("logs/kwok.log");
            bail!("kwok exited; the end of {}:\n{}", log.display(), super::tail(&log, 25));
        }
    }
    let manifest = state.join("kwok/nodes.json");
    std::fs::write(&manifest, nodes_manifest(nodes, gpu_nodes).to_string())?;
    let out = std::process::Command::new("kubectl")
        .args(["apply", "--server-side", "--force-conflicts", "-f"])
        .arg(&manifest)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .context("running kubectl")?;
    if !out.status.success() {
        bail!("creating the kwok Nodes failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    wait(state, "kwok", Duration::from_secs(180), || ready_nodes(kubeconfig) >= nodes as usize)?;
    println!("testenv: {nodes} kwok Nodes ({gpu_nodes} with GPUs) ready in {:.1?}", started.elapsed());
    Ok(())
}

/// How many kwok Nodes are Ready.
fn ready_nodes(kubeconfig: &Path) -> usize {
    let jsonpath = r#"{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}"#;
    let out = std::process::Command::new("kubectl")
        .args(["--request-timeout=10s", "get", "nodes", "-l", LABEL, "-o"])
        .arg(format!("jsonpath={jsonpath}"))
        .env("KUBECONFIG", kubeconfig)
        .output();
    match out {
        Ok(out) if out.status.success() => {
            String::from_utf8_lossy(&out.stdout).lines().filter(|l| *l == "True").count()
        }
        _ => 0,
    }
}

fn nodes_manifest(nodes: u32, gpu_nodes: u32) -> serde_json::Value {
    let items: Vec<serde_json::Value> = (0..nodes)
        .map(|i| {
            let mut capacity =
                serde_json::json!({"cpu": "32", "memory": "256Gi", "pods": "110", "ephemeral-storage": "500Gi"});
            if i < gpu_nodes {
                capacity["nvidia.com/gpu"] = "8".into();
            }
            let gpu_labels = if i < gpu_nodes {
                serde_json::json!({"nvidia.com/gpu.present": "true", "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"})
            } else {
                serde_json::json!({})
            };
            let mut labels = serde_json::json!({
                "type": "kwok",
                "kubernetes.io/hostname": format!("kwok-node-{i}"),
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "topology.kubernetes.io/zone": format!("zone-{}", i % 3),
            });
            if let (Some(l), Some(g)) = (labels.as_object_mut(), gpu_labels.as_object()) {
                l.extend(g.clone());
            }
            serde_json::json!({
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": format!("kwok-node-{i}"),
                    "labels": labels,
                    "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                },
                "spec": {"taints": [{"key": "kwok.x-k8s.io/node", "value": "fake", "effect": "NoSchedule"}]},
                // kwok's node-initialize stage fills in the conditions and nodeInfo.
                "status": {"capacity": capacity.clone(), "allocatable": capacity},
            })
        })
        .collect();
    serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items})
}
