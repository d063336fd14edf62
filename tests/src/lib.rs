//! Shared harness for the cluster tests: a client for the test cluster, the project's CRDs
//! applied from the committed YAML, unique names, and cleanup that runs even when a test
//! fails.
//!
//! The cluster is the one `KUBECONFIG` names; without it, the local control plane that
//! `cargo xtask testenv up` writes to `target/testenv/kubeconfig`.

pub mod apiserver;
pub mod argocd;
pub mod bench;
pub mod browser;
pub mod contract;
pub mod gomodules;
pub mod operator;

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use tokio::sync::OnceCell;

/// The workspace root.
pub fn root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// The kubeconfig the tests use, and an explanation when there is none.
pub fn kubeconfig_path() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("KUBECONFIG").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let local = root().join("target/testenv/kubeconfig");
    if local.exists() {
        return Ok(local);
    }
    bail!(
        "no cluster for the cluster tests: set KUBECONFIG, or start the local control plane with \
         `cargo xtask testenv up` (or run everything with `cargo xtask ci`)"
    )
}

/// A client for the test cluster.
pub async fn client() -> Result<Client> {
    let path = kubeconfig_path()?;
    let kubeconfig = Kubeconfig::read_from(&path).with_context(|| format!("reading {}", path.display()))?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .with_context(|| format!("using {}", path.display()))?;
    Client::try_from(config).context("building a client")
}

/// A name no other test, in this run or a concurrent one, uses.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("{prefix}-{}-{}-{:x}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed), nanos)
}

static CRDS_READY: OnceCell<()> = OnceCell::const_new();

/// Applies the committed CRD YAML (`crds/*.yaml`) by server-side apply and waits until the
/// API server serves every CRD. Done once per test process; CRDs are shared by all tests
/// and are never deleted by them.
pub async fn ensure_crds(client: &Client) -> Result<()> {
    CRDS_READY.get_or_try_init(|| apply_crds(client.clone())).await.map(|_| ())
}

async fn apply_crds(client: Client) -> Result<()> {
    // Servers before 1.25 do not know CEL rules: server-side apply refuses the field ("field
    // not declared in schema") where a create or update would drop it. Apply what they keep.
    let minor: u32 =
        client.apiserver_version().await?.minor.chars().take_while(char::is_ascii_digit).collect::<String>().parse()?;
    let api: Api<CustomResourceDefinition> = Api::all(client);
    let dir = root().join("crds");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path)?;
        let mut value: serde_json::Value =
            serde_yaml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        if minor < 25 {
            strip_cel_rules(&mut value);
        }
        let crd: CustomResourceDefinition = serde_json::from_value(value)?;
        let name = crd.metadata.name.clone().context("a CRD file without a name")?;
        api.patch(&name, &PatchParams::apply("kube9-tests").force(), &Patch::Apply(&crd))
            .await
            .with_context(|| format!("applying {}", path.display()))?;
        names.push(name);
    }
    for name in names {
        wait_for(Duration::from_secs(30), || {
            let api = api.clone();
            let name = name.clone();
            async move {
                let crd = api.get(&name).await?;
                let established = crd
                    .status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True");
                Ok(established)
            }
        })
        .await
        .with_context(|| format!("CRD {name} never became Established"))?;
    }
    Ok(())
}

/// Removes every `x-kubernetes-validations` from a CRD, as a server before 1.25 does.
pub fn strip_cel_rules(node: &mut serde_json::Value) {
    match node {
        serde_json::Value::Object(map) => {
            map.remove("x-kubernetes-validations");
            map.values_mut().for_each(strip_cel_rules);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_cel_rules),
        _ => {}
    }
}

/// Polls `check` every 200 ms until it returns true, or fails after `timeout` with the
/// last error seen.
pub async fn wait_for<F, Fut>(timeout: Duration, mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool>>,
{
    let deadline = Instant::now() + timeout;
    let mut last = None;
    loop {
        match check().await {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(err) => last = Some(err),
        }
        if Instant::now() >= deadline {
            return Err(match last {
                Some(err) => err.context(format!("still failing after {timeout:?}")),
                None => anyhow::anyhow!("condition not met within {timeout:?}"),
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One object a test created and wants gone afterwards.
struct Created {
    resource: ApiResource,
    namespace: Option<String>,
    name: String,
}

/// What a test body gets: a client, and a place to register what it creates.
#[derive(Clone)]
pub struct Ctx {
    pub client: Client,
    created: Arc<Mutex<Vec<Created>>>,
}

impl Ctx {
    /// Creates a namespace with a unique name that is deleted when the test ends.
    pub async fn namespace(&self, prefix: &str) -> Result<String> {
        use k8s_openapi::api::core::v1::Namespace;
        let name = unique_name(prefix);
        self.cleanup::<Namespace>(None, &name);
        let ns = Namespace {
            metadata: kube::api::ObjectMeta { name: Some(name.clone()), ..Default::default() },
            ..Default::default()
        };
        Api::<Namespace>::all(self.client.clone())
            .create(&Default::default(), &ns)
            .await
            .context("creating a namespace")?;
        Ok(name)
    }

    /// Deletes this object when the test ends, however it ends.
    pub fn cleanup<K>(&self, namespace: Option<&str>, name: &str)
    where
        K: kube::Resource<DynamicType = ()>,
    {
        if let Ok(mut created) = self.created.lock() {
            created.push(Created {
                resource: ApiResource::erase::<K>(&()),
                namespace: namespace.map(str::to_owned),
                name: name.to_owned(),
            });
        }
    }

    /// Deletes the object of `resource` (a kind without Rust type: another project's CRD)
    /// when the scenario ends.
    pub fn cleanup_dynamic(&self, resource: &ApiResource, namespace: Option<&str>, name: &str) {
        if let Ok(mut created) = self.created.lock() {
            created.push(Created {
                resource: resource.clone(),
                namespace: namespace.map(str::to_owned),
                name: name.to_owned(),
            });
        }
    }
}

/// Runs a cluster test: CRDs present, the body run to completion (or panic), then every
/// registered object deleted, newest first, before the test's own result is reported.
pub async fn scenario<F, Fut>(body: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = Result<()>> + Send + 'static,
{
    // reqwest (health endpoints) uses rustls with the same provider as the operator.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = match client().await {
        Ok(client) => client,
        Err(err) => panic!("{err:#}"),
    };
    if let Err(err) = ensure_crds(&client).await {
        panic!("{err:#}");
    }
    let ctx = Ctx { client: client.clone(), created: Arc::default() };
    let outcome = tokio::spawn(body(ctx.clone())).await;
    let created = ctx.created.lock().map(|mut c| std::mem::take(&mut *c)).unwrap_or_default();
    for object in created.into_iter().rev() {
        let api: Api<DynamicObject> = match &object.namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &object.resource),
            None => Api::all_with(client.clone(), &object.resource),
        };
        match api.delete(&object.name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(err) => eprintln!("cleanup: could not delete {} {}: {err}", object.resource.kind, object.name),
        }
    }
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(err)) => panic!("{err:?}"),
        Err(join) => std::panic::resume_unwind(join.into_panic()),
    }
}

/// Runs `kubectl` against the test cluster and returns its standard output.
pub fn kubectl(args: &[&str]) -> Result<String> {
    let output = std::process::Command::new("kubectl")
        .args(args)
        .env("KUBECONFIG", kubeconfig_path()?)
        .output()
        .context("running kubectl (is it installed and on PATH?)")?;
    if !output.status.success() {
        bail!("kubectl {} failed: {}", args.join(" "), String::from_utf8_lossy(&output.stderr));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
