//! Running the real `kube9-operator` binary against the test cluster.
//!
//! Operator tests share one cluster-wide object, the `kube9` OperatorStatus, so they hold
//! [`singleton_lock`] for their whole run; everything else (namespace, health port, kube9-server
//! simulator) is their own. The lock is a file lock, which the chart tests (tests/chart) take
//! too, so the two suites can run side by side.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams};
use kube9_api::legacy::{CONFIGMAP_KEY, CONFIGMAP_NAME, LegacyStatus};
use kube9_api::operator_status::{OperatorStatus, OperatorStatusStatus, SINGLETON_NAME};

use crate::{kubeconfig_path, root, wait_for};

/// Held while a test runs an operator; released when dropped.
pub struct SingletonLock {
    _file: std::fs::File,
}

/// Serialises the tests that run an operator (across processes), and removes the singleton
/// the previous one left.
pub async fn singleton_lock(client: &kube::Client) -> SingletonLock {
    let path = target_dir().join("kube9-operator-singleton.lock");
    let file = tokio::task::spawn_blocking(move || -> std::io::Result<std::fs::File> {
        std::fs::create_dir_all(path.parent().unwrap_or(&path))?;
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
        file.lock()?;
        Ok(file)
    })
    .await
    .expect("the lock task does not panic")
    .expect("taking the operator singleton lock");
    delete_singleton(client).await;
    SingletonLock { _file: file }
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("target"))
}

/// Deletes the `kube9` OperatorStatus so the next operator starts from nothing.
pub async fn delete_singleton(client: &kube::Client) {
    let api: Api<OperatorStatus> = Api::all(client.clone());
    let _ = api.delete(SINGLETON_NAME, &DeleteParams::default()).await;
    let _ = wait_for(Duration::from_secs(20), || {
        let api = api.clone();
        async move { Ok(api.get_opt(SINGLETON_NAME).await?.is_none()) }
    })
    .await;
}

/// The operator binary `cargo build -p kube9-operator` produced.
pub fn binary() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("KUBE9_OPERATOR_BIN") {
        return Ok(PathBuf::from(path));
    }
    let path = target_dir().join("debug/kube9-operator");
    if !path.exists() {
        bail!("{} is missing: run `cargo build -p kube9-operator` first (`cargo xtask ci` does)", path.display());
    }
    Ok(path)
}

/// A `/proc/<pid>/status` figure in KiB (`VmRSS:`, `VmHWM:`), 0 when unreadable.
pub fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

/// The highest value of one `/proc/<pid>/status` figure, sampled every 20 ms on a thread of its
/// own from [`Peak::sample`] until [`Peak::stop`].
pub struct Peak {
    sampling: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

impl Peak {
    pub fn sample(pid: u32, field: &'static str) -> Peak {
        let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let thread = std::thread::spawn({
            let sampling = sampling.clone();
            move || {
                let mut peak = 0;
                while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                    peak = peak.max(status_kib(pid, field));
                    std::thread::sleep(Duration::from_millis(20));
                }
                peak
            }
        });
        Peak { sampling, thread }
    }

    /// Stops sampling; the peak in KiB.
    pub fn stop(self) -> Result<u64> {
        self.sampling.store(false, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().map_err(|_| anyhow::anyhow!("the sampler panicked"))
    }
}

/// Creates these namespaces (a benchmark's; it deletes them itself).
pub async fn create_namespaces(client: &kube::Client, names: &[String]) -> Result<()> {
    use k8s_openapi::api::core::v1::Namespace;
    let api: Api<Namespace> = Api::all(client.clone());
    for name in names {
        let object = Namespace {
            metadata: kube::api::ObjectMeta { name: Some(name.clone()), ..Default::default() },
            ..Default::default()
        };
        api.create(&Default::default(), &object).await?;
    }
    Ok(())
}

/// A free TCP port on loopback.
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// A running operator process, killed when dropped. Its log lines are kept for assertions.
pub struct Operator {
    child: Child,
    pub health_port: u16,
    logs: Arc<Mutex<Vec<String>>>,
}

impl Operator {
    /// Starts the operator in `namespace` with extra flags and environment.
    pub fn start(namespace: &str, args: &[&str], env: &[(&str, &str)]) -> Result<Operator> {
        let health_port = free_port()?;
        let mut cmd = Command::new(binary()?);
        cmd.args([
            "--namespace",
            namespace,
            "--health-addr",
            &format!("127.0.0.1:{health_port}"),
            "--log-format",
            "json",
        ])
        .args(args)
        .env("KUBECONFIG", kubeconfig_path()?)
        .env("KUBE9_LOG_LEVEL", "kube9_operator=debug,info")
        .env_remove("KUBE9_API_KEY")
        .env_remove("POD_NAMESPACE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().context("starting kube9-operator")?;
        let logs = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            child.stdout.take().map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child.stderr.take().map(|s| Box::new(s) as _),
        ]
        .into_iter()
        .flatten()
        {
            let logs = logs.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if std::env::var_os("KUBE9_TEST_SHOW_LOGS").is_some() {
                        eprintln!("operator: {line}");
                    }
                    if let Ok(mut logs) = logs.lock() {
                        logs.push(line);
                    }
                }
            });
        }
        Ok(Operator { child, health_port, logs })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Every log line so far.
    pub fn logs(&self) -> String {
        self.logs.lock().map(|l| l.join("\n")).unwrap_or_default()
    }

    /// GETs a path of the health server: (status code, body).
    pub async fn get(&self, path: &str) -> Result<(u16, String)> {
        let url = format!("http://127.0.0.1:{}{path}", self.health_port);
        let response = reqwest::get(&url).await.with_context(|| format!("GET {url}"))?;
        Ok((response.status().as_u16(), response.text().await?))
    }

    /// Sends SIGTERM and waits for the exit; returns the exit code and how long it took.
    pub fn terminate(&mut self) -> Result<(Option<i32>, Duration)> {
        let started = std::time::Instant::now();
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().context("sending SIGTERM")?;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok((status.code(), started.elapsed()));
            }
            if started.elapsed() > Duration::from_secs(30) {
                bail!("the operator did not exit within 30 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the process has exited, and its code.
    pub fn exited(&mut self) -> Option<Option<i32>> {
        self.child.try_wait().ok().flatten().map(|s| s.code())
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `kube9` OperatorStatus status, if written.
pub async fn operator_status(client: &kube::Client) -> Result<Option<OperatorStatusStatus>> {
    let api: Api<OperatorStatus> = Api::all(client.clone());
    Ok(api.get_opt(SINGLETON_NAME).await?.and_then(|o| o.status))
}

/// The legacy ConfigMap's raw JSON value and its parsed form, if present.
pub async fn legacy_status(
    client: &kube::Client,
    namespace: &str,
) -> Result<Option<(serde_json::Value, LegacyStatus)>> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let Some(cm) = api.get_opt(CONFIGMAP_NAME).await? else { return Ok(None) };
    let Some(json) = cm.data.and_then(|d| d.get(CONFIGMAP_KEY).cloned()) else { return Ok(None) };
    let value: serde_json::Value = serde_json::from_str(&json).with_context(|| format!("status JSON: {json}"))?;
    let parsed = serde_json::from_value(value.clone()).with_context(|| format!("status JSON: {json}"))?;
    Ok(Some((value, parsed)))
}

/// Waits until both the OperatorStatus and the ConfigMap satisfy `check`.
pub async fn wait_for_both<F>(
    client: &kube::Client,
    namespace: &str,
    timeout: Duration,
    check: F,
) -> Result<(OperatorStatusStatus, LegacyStatus)>
where
    F: Fn(&OperatorStatusStatus, &LegacyStatus) -> bool,
{
    let found = Arc::new(Mutex::new(None));
    let result = wait_for(timeout, || {
        let client = client.clone();
        let found = found.clone();
        let check = &check;
        async move {
            let (Some(status), Some((_, legacy))) =
                (operator_status(&client).await?, legacy_status(&client, namespace).await?)
            else {
                return Ok(false);
            };
            let ok = check(&status, &legacy);
            if let Ok(mut found) = found.lock() {
                *found = Some((status, legacy));
            }
            Ok(ok)
        }
    })
    .await;
    let last = found.lock().ok().and_then(|mut f| f.take());
    match (result, last) {
        (Ok(()), Some(both)) => Ok(both),
        (Err(e), last) => Err(e.context(format!("last seen: {last:#?}"))),
        (Ok(()), None) => bail!("nothing seen"),
    }
}

/// A data directory of its own for one operator process (the chart's emptyDir), removed when
/// dropped; the operator creates it.
pub struct DataDir(pub PathBuf);

impl DataDir {
    pub fn new() -> DataDir {
        DataDir(std::env::temp_dir().join(crate::unique_name("kube9-data")))
    }
}

impl Default for DataDir {
    fn default() -> DataDir {
        DataDir::new()
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
