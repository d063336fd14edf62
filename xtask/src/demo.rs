//! `cargo xtask demo`: the operator against the local control plane, first without an API
//! key and then with one against the kube9-server simulator. `demo --node` installs the chart
//! on a real node instead.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::{image, pyenv, testenv};

const NAMESPACE: &str = "kube9-system";
const DEMO_KEY: &str = "k9_demo_0123456789abcdef";

/// A child process killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn run(root: &Path) -> Result<()> {
    let cluster = testenv::up(false, false, &testenv::Kubernetes::requested(None)?)?;
    let kubeconfig = cluster.kubeconfig.clone();
    let kubectl = |args: &[&str]| -> Result<String> {
        let out =
            Command::new("kubectl").args(args).env("KUBECONFIG", &kubeconfig).output().context("running kubectl")?;
        if !out.status.success() {
            bail!("kubectl {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };

    banner("Building the operator and the kube9-server simulator");
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .current_dir(root)
        .args(["build", "--quiet", "-p", "kube9-operator", "-p", "kube9-server-sim"])
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("cargo build failed");
    }
    let bin = root.join("target/debug");
    let work = testenv::state_dir().join("demo");
    std::fs::create_dir_all(&work)?;

    banner("Installing the CRDs");
    print!("{}", kubectl(&["apply", "-f", &root.join("crds").display().to_string()])?);
    kubectl(&["wait", "--for", "condition=Established", "crd/operatorstatuses.kube9.io", "crd/assessments.kube9.io"])?;
    if kubectl(&["get", "namespace", NAMESPACE]).is_err() {
        kubectl(&["create", "namespace", NAMESPACE])?;
    }
    // Start from nothing so the first step shows the operator creating its objects.
    let _ = kubectl(&["delete", "operatorstatus", "kube9", "--ignore-not-found"]);
    let _ = kubectl(&["delete", "configmap", "kube9-operator-status", "-n", NAMESPACE, "--ignore-not-found"]);

    banner("1. No API key: operated mode, free tier");
    let operator = start_operator(&bin, &kubeconfig, &work, &[])?;
    show_when(&kubectl, |json| json.contains("\"mode\":\"operated\""))?;
    drop(operator);

    banner("2. An API key, kube9-server (simulated) accepts it: enabled mode, pro tier");
    let ca = work.join("sim-ca.pem");
    let (sim, url) = start_simulator(&bin, &ca, &[])?;
    println!("kube9-server simulator at {url}");
    let key_file = work.join("api-key");
    std::fs::write(&key_file, DEMO_KEY)?;
    let args = [
        "--api-key-file",
        &key_file.display().to_string(),
        "--server-url",
        &url,
        "--server-ca-file",
        &ca.display().to_string(),
    ];
    let operator = start_operator(&bin, &kubeconfig, &work, &args)?;
    show_when(&kubectl, |json| json.contains("\"tier\":\"pro\""))?;

    banner("3. kube9-server goes away: still enabled, free tier, degraded, and it says when it retries");
    drop(operator);
    drop(sim);
    let _ = kubectl(&["delete", "operatorstatus", "kube9", "--ignore-not-found"]);
    let operator = start_operator(&bin, &kubeconfig, &work, &args)?;
    show_when(&kubectl, |json| json.contains("\"health\":\"degraded\""))?;
    drop(operator);

    banner("4. A Well-Architected assessment, scheduled, of the workloads in examples/workloads.yaml");
    let examples = root.join("examples");
    let _ = kubectl(&["delete", "assessment", "kube9-demo", "--ignore-not-found"]);
    print!("{}", kubectl(&["apply", "-f", &examples.join("workloads.yaml").display().to_string()])?);
    print!("{}", kubectl(&["apply", "-f", &examples.join("assessment.yaml").display().to_string()])?);
    let operator = start_operator(&bin, &kubeconfig, &work, &[])?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while kubectl(&["get", "assessment", "kube9-demo", "-o", "jsonpath={.status.phase}"]).unwrap_or_default()
        != "Completed"
    {
        if Instant::now() > deadline {
            bail!("the Assessment did not complete within 60 s; see {}", work.join("operator.log").display());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    println!("$ kubectl get assessments");
    print!("{}", kubectl(&["get", "assessments"])?);
    let findings = "jsonpath={range .status.findings[*]}{.severity}{\"\\t\"}{.checkId}{\"\\t\"}{.object.kind} \
                    {.object.namespace}/{.object.name}{\"\\t\"}{.message}{\"\\n\"}{end}";
    println!("$ kubectl get assessment kube9-demo -o '{findings}'   # the first 8");
    for line in kubectl(&["get", "assessment", "kube9-demo", "-o", findings])?.lines().take(8) {
        println!("{line}");
    }
    println!(
        "$ kubectl get configmap kube9-operator-status -n {NAMESPACE} -o jsonpath='{{.data.status}}'   # its assessment field, without lastScheduledChecks"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let summary = loop {
        let json =
            kubectl(&["get", "configmap", "kube9-operator-status", "-n", NAMESPACE, "-o", "jsonpath={.data.status}"])?;
        let mut status: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
        let mut summary = status["assessment"].take();
        if summary["lastScheduledOutcome"] == "success" || Instant::now() > deadline {
            if let Some(map) = summary.as_object_mut() {
                map.remove("lastScheduledChecks");
            }
            break summary;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    println!("{}", serde_json::to_string_pretty(&summary)?);
    drop(operator);

    banner("5. The same checks offline, as in CI: kube9-operator assess -f examples/ --fail-on critical");
    let offline = Command::new(bin.join("kube9-operator"))
        .args(["assess", "-f"])
        .arg(&examples)
        .args(["--fail-on", "critical"])
        .current_dir(root)
        .output()
        .context("running kube9-operator assess")?;
    let table = String::from_utf8_lossy(&offline.stdout);
    for line in table.lines().take(6) {
        println!("{line}");
    }
    println!("...");
    for line in table.lines().rev().take(2).collect::<Vec<_>>().into_iter().rev() {
        println!("{line}");
    }
    println!("exit status {} (a critical finding; 0 without one)", offline.status.code().unwrap_or(-1));

    banner("6. Pro tier: collections uploaded with mock names, insights shown by real name, one acknowledged");
    let (sim, url) = start_simulator(&bin, &ca, &["--metrics-interval-seconds", "5"])?;
    let _ = kubectl(&["delete", "operatorstatus", "kube9", "--ignore-not-found"]);
    let fast =
        "clusterMetadata=3s,resourceInventory=3s,configurationPatterns=3s,performanceMetrics=3s,securityPosture=3s";
    let mut pro_args = args.to_vec();
    pro_args[3] = &url;
    pro_args.extend(["--collection-intervals", fast]);
    let operator = start_operator(&bin, &kubeconfig, &work, &pro_args)?;
    let insights = "jsonpath={range .status.insights[*]}{.severity}{\"\\t\"}{.id}{\"\\t\"}{.object.kind} \
                    {.object.namespace}/{.object.name}{\"\\t\"}{.title}{\"\\n\"}{end}";
    let deadline = Instant::now() + Duration::from_secs(60);
    let listed = loop {
        let listed = kubectl(&["get", "operatorstatus", "kube9", "-o", insights]).unwrap_or_default();
        if listed.contains("kube9-demo-shop/web") {
            break listed;
        }
        if Instant::now() > deadline {
            bail!("no insight about kube9-demo-shop/web within 60 s; see {}", work.join("operator.log").display());
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    println!("$ kubectl get operatorstatus kube9 -o '{insights}'");
    print!("{listed}");
    let id = listed
        .lines()
        .find(|l| l.contains("kube9-demo-shop/web"))
        .and_then(|l| l.split('\t').nth(1))
        .context("an insight id")?
        .to_owned();
    let patch = format!(
        r#"{{"spec":{{"acknowledgements":{{"{id}":{{"state":"acknowledged","note":"web gets limits next sprint"}}}}}}}}"#
    );
    println!("$ kubectl patch operatorstatus kube9 --type merge -p '{patch}'");
    print!("{}", kubectl(&["patch", "operatorstatus", "kube9", "--type", "merge", "-p", &patch])?);
    let record = format!("jsonpath={{.status.acknowledgements.{id}}}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let json = kubectl(&["get", "operatorstatus", "kube9", "-o", &record]).unwrap_or_default();
        if json.contains("\"sync\":\"synced\"") {
            println!("$ kubectl get operatorstatus kube9 -o 'jsonpath={{.status.acknowledgements.{id}}}'");
            println!("{json}");
            break;
        }
        if Instant::now() > deadline {
            bail!("the acknowledgement was not synced within 30 s: {json}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    println!(
        "kube9-server received the note as {:?} (real names never leave the cluster)",
        received_note(&url, &ca).unwrap_or_default()
    );
    drop(operator);
    drop(sim);

    banner("Done");
    println!("The control plane is still running: export KUBECONFIG={}", kubeconfig.display());
    println!("Stop it with: cargo xtask testenv down");
    Ok(())
}

/// `cargo xtask demo --node`: the chart installed on a real node, the operator as a Pod.
pub fn run_node(root: &Path) -> Result<()> {
    let cluster = testenv::up(false, true, &testenv::Kubernetes::requested(None)?)?;
    let kubeconfig = cluster.kubeconfig.clone();
    let kubectl = |args: &[&str]| -> Result<String> {
        let out =
            Command::new("kubectl").args(args).env("KUBECONFIG", &kubeconfig).output().context("running kubectl")?;
        if !out.status.success() {
            bail!("kubectl {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };

    banner("Building the operator image (image/build-rootfs.sh, then buildah) and importing it into the node");
    let archive = image::build(root)?;
    testenv::node::import_image(&testenv::state_dir(), &archive)?;
    let python = pyenv::ensure(root)?;

    banner("Installing the chart with the real Helm SDK");
    let _ = kubectl(&["delete", "operatorstatus", "kube9", "--ignore-not-found"]);
    let port = kubectl(&["config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}"])?
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_owned();
    let (repository, tag) = image::NAME.rsplit_once(':').context("the image name has no tag")?;
    let status = Command::new(&python)
        .arg("-c")
        .arg(include_str!("demo_node.py"))
        .arg(&kubeconfig)
        .arg(root.join("charts/kube9-operator"))
        .args([NAMESPACE, &port, "18080", repository, tag, &testenv::node::network()?.gateway])
        .status()
        .context("running the Helm SDK")?;
    if !status.success() {
        bail!("installing the chart failed");
    }
    let deployment = "deployment/kube9-kube9-operator";
    print!("{}", kubectl(&["rollout", "status", deployment, "-n", NAMESPACE, "--timeout=120s"])?);
    println!("$ kubectl -n {NAMESPACE} get pods -o wide");
    print!("{}", kubectl(&["get", "pods", "-n", NAMESPACE, "-o", "wide"])?);
    show_when(&kubectl, |json| json.contains("\"health\":\"healthy\""))?;
    node_replicas(root, &kubectl)?;

    banner("Done");
    println!("The operator runs as two Pods on node {}:", testenv::node::NODE_NAME);
    println!("  export KUBECONFIG={}", kubeconfig.display());
    println!("  kubectl -n {NAMESPACE} get pods; kubectl get operatorstatus");
    println!("  ls /var/log/pods/{NAMESPACE}_*/operator/   # its logs (kubectl logs cannot reach the kubelet)");
    println!("Stop everything with: cargo xtask testenv down");
    Ok(())
}

/// The chart's two replicas: who leads, an Assessment, and `query` in the standby giving the
/// leader's answer (the VS Code extension execs into whichever Pod sorts first).
fn node_replicas(root: &Path, kubectl: &dyn Fn(&[&str]) -> Result<String>) -> Result<()> {
    banner("Two replicas: one leads, the other stands by with a copy of its store");
    let leader = kubectl(&["get", "operatorstatus", "kube9", "-o", "jsonpath={.status.leader}"])?.trim().to_owned();
    let names = "jsonpath={range .items[*]}{.metadata.name}{\"\\n\"}{end}";
    let pods = kubectl(&["get", "pods", "-n", NAMESPACE, "-l", "app.kubernetes.io/name=kube9-operator", "-o", names])?;
    let standby = pods
        .lines()
        .find(|p| !p.is_empty() && *p != leader)
        .with_context(|| format!("no standby beside the leader {leader} among {pods:?}"))?
        .to_owned();
    println!("$ kubectl get operatorstatus kube9 -o jsonpath='{{.status.leader}}'");
    println!("{leader}   (the standby: {standby})");

    banner("An Assessment of examples/workloads.yaml, asked in the leader and in the standby");
    let examples = root.join("examples");
    let _ = kubectl(&["delete", "assessment", "kube9-demo", "--ignore-not-found"]);
    print!("{}", kubectl(&["apply", "-f", &examples.join("workloads.yaml").display().to_string()])?);
    print!("{}", kubectl(&["apply", "-f", &examples.join("assessment.yaml").display().to_string()])?);
    let deadline = Instant::now() + Duration::from_secs(120);
    while kubectl(&["get", "assessment", "kube9-demo", "-o", "jsonpath={.status.phase}"]).unwrap_or_default()
        != "Completed"
    {
        if Instant::now() > deadline {
            bail!("the Assessment did not complete within 120 s");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    print!("{}", kubectl(&["get", "assessments"])?);
    let ask = |pod: &str| -> Result<serde_json::Value> {
        let out = kubectl(&[
            "exec",
            "-n",
            NAMESPACE,
            "-c",
            "operator",
            pod,
            "--",
            "kube9-operator",
            "query",
            "findings",
            "--assessment",
            "kube9-demo",
            "--limit",
            "1000000",
        ])?;
        serde_json::from_str(&out).with_context(|| format!("query findings in {pod}: {out}"))
    };
    let count = |doc: &serde_json::Value| doc["findings"].as_array().map_or(0, Vec::len);
    let deadline = Instant::now() + Duration::from_secs(10);
    let (in_leader, in_standby) = loop {
        let (a, b) = (ask(&leader)?, ask(&standby)?);
        if (a == b && count(&a) > 0) || Instant::now() > deadline {
            break (a, b);
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    for (pod, doc) in [(&leader, &in_leader), (&standby, &in_standby)] {
        println!(
            "$ kubectl exec -n {NAMESPACE} -c operator {pod} -- kube9-operator query findings --assessment kube9-demo --limit 1000000"
        );
        println!("{} findings of run {}", count(doc), doc["runId"].as_str().unwrap_or("?"));
    }
    if in_leader != in_standby {
        bail!("the standby {standby} answered differently from the leader {leader}");
    }
    println!("The same answer from both Pods: the standby asks the leader, and keeps a copy of its store.");
    Ok(())
}

fn banner(text: &str) {
    println!("\n==> {text}");
}

fn start_operator(bin: &Path, kubeconfig: &Path, work: &Path, args: &[&str]) -> Result<Running> {
    let log = std::fs::File::create(work.join("operator.log"))?;
    let child = Command::new(bin.join("kube9-operator"))
        .args(["--namespace", NAMESPACE, "--health-addr", "127.0.0.1:18080", "--status-interval", "5s"])
        .args(["--retry-initial", "30s", "--request-timeout", "3s"])
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("starting kube9-operator")?;
    println!("kube9-operator started (pid {}, log {})", child.id(), work.join("operator.log").display());
    Ok(Running(child))
}

/// Waits until the ConfigMap JSON satisfies `done`, then shows it and the OperatorStatus.
fn show_when(kubectl: &dyn Fn(&[&str]) -> Result<String>, done: impl Fn(&str) -> bool) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let json =
            kubectl(&["get", "configmap", "kube9-operator-status", "-n", NAMESPACE, "-o", "jsonpath={.data.status}"])
                .unwrap_or_default();
        if done(&json) {
            println!("$ kubectl get operatorstatus");
            print!("{}", kubectl(&["get", "operatorstatus"])?);
            println!("$ kubectl get configmap kube9-operator-status -n {NAMESPACE} -o jsonpath='{{.data.status}}'");
            let pretty = serde_json::from_str::<serde_json::Value>(&json)
                .and_then(|v| serde_json::to_string_pretty(&v))
                .unwrap_or(json);
            println!("{pretty}");
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the status did not reach the expected state within 60 s; last ConfigMap JSON: {json}");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The note of the latest acknowledgement the simulator recorded (through curl, as a person would).
fn received_note(url: &str, ca: &Path) -> Option<String> {
    let out = Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(ca)
        .arg(format!("{url}/_sim/acknowledgements"))
        .output()
        .ok()?;
    let acks: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    acks.as_array()?.last()?["note"].as_str().map(str::to_owned)
}

/// Starts the simulator over TLS, accepting the demo key, writing its CA to `ca`.
fn start_simulator(bin: &Path, ca: &Path, extra: &[&str]) -> Result<(Running, String)> {
    let mut sim = Command::new(bin.join("kube9-server-sim"));
    sim.args(["--listen", "127.0.0.1:0", "--tls", "--ca-out"])
        .arg(ca)
        .args(["--api-key", DEMO_KEY])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut sim = Running(sim.spawn().context("starting kube9-server-sim")?);
    let url = simulator_url(&mut sim.0)?;
    Ok((sim, url))
}

/// Reads the simulator's `listening on <url>` line.
fn simulator_url(child: &mut Child) -> Result<String> {
    let stdout = child.stdout.take().context("the simulator has no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).context("reading the simulator's address")?;
    line.trim()
        .strip_prefix("listening on ")
        .map(str::to_owned)
        .with_context(|| format!("unexpected simulator output: {line:?}"))
}
