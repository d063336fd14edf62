//! Argo CD awareness against a real kube-apiserver, with Argo CD's own CRDs
//! (`../shared/fixtures/argocd`): the real operator detects Argo CD as its argocd-server
//! Deployment comes and goes, follows Applications whose status the test writes as Argo CD
//! would, records each drift and failure once, and the real `kube9-operator query argocd …`
//! serves Applications and the resource tree of one whose Deployment the controller-manager
//! expands into a ReplicaSet and Pods.
//!
//! The CRDs are shared and never deleted. Every test that creates Applications runs the
//! operator or counts Applications, so it holds the singleton lock: the counts are its own.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube9_tests::argocd::{applications, argocd_server, ensure_argo_crds, install_argo_crds};
use kube9_tests::contract::assert_configmap;
use kube9_tests::operator::{Operator, binary, legacy_status, operator_status, singleton_lock};
use kube9_tests::{Ctx, kubeconfig_path, scenario, unique_name, wait_for};
use serde_json::{Value, json};

use crate::events::DataDir;

/// A workload the Application manages: a Deployment (which the controller-manager expands
/// into a ReplicaSet and Pods) and a Service (which gets an EndpointSlice).
pub(crate) async fn workload(ctx: &Ctx, ns: &str, replicas: i32) -> Result<()> {
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": ns},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
            // Pending on any cluster (no node matches), so every Pod's health is known.
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"nodeSelector": {"kube9.io/test-node": "none"},
                    "containers": [{"name": "web", "image": "registry.k8s.io/pause:3.10"}]}}}
    }))?;
    Api::<Deployment>::namespaced(ctx.client.clone(), ns).create(&PostParams::default(), &deployment).await?;
    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": ns},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}
    }))?;
    Api::<Service>::namespaced(ctx.client.clone(), ns).create(&PostParams::default(), &service).await?;
    Ok(())
}

/// Creates an Application that deploys into `dest`.
pub(crate) async fn create_app(ctx: &Ctx, ns: &str, name: &str, dest: &str) -> Result<Api<DynamicObject>> {
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), ns, &applications());
    let app: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"project": "default",
            "source": {"repoURL": "https://git.example.com/shop.git", "path": "deploy", "targetRevision": "HEAD"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": dest},
            "syncPolicy": {"automated": {"prune": true}}}
    }))?;
    api.create(&PostParams::default(), &app).await.context("creating an Application")?;
    ctx.cleanup_dynamic(&applications(), Some(ns), name);
    Ok(api)
}

/// Writes the Application's status as Argo CD's controller does (a plain field of the CRD).
pub(crate) async fn set_status(api: &Api<DynamicObject>, name: &str, status: Value) -> Result<()> {
    api.patch(name, &PatchParams::default(), &Patch::Merge(json!({"status": status}))).await?;
    Ok(())
}

/// An Application's status as Argo CD writes it: `sync` at `revision`, `health`, and its
/// resources in `dest` (see [`resources`]) in the same states.
pub(crate) fn app_status(dest: &str, sync: &str, health: &str, revision: &str) -> Value {
    json!({"sync": {"status": sync, "revision": revision}, "health": {"status": health}, "resources": resources(dest, sync, health)})
}

pub(crate) fn resources(dest: &str, deployment_sync: &str, deployment_health: &str) -> Value {
    json!([
        {"group": "apps", "version": "v1", "kind": "Deployment", "namespace": dest, "name": "web",
         "status": deployment_sync, "health": {"status": deployment_health,
            "message": if deployment_health == "Degraded" { "Deployment \"web\" exceeded its progress deadline" } else { "" }}},
        {"version": "v1", "kind": "Service", "namespace": dest, "name": "web", "status": "Synced", "health": {"status": "Healthy"}}
    ])
}

/// Runs `kube9-operator query <args>` as the extension would, against the test cluster.
pub(crate) fn query(data: Option<&Path>, args: &[&str]) -> Result<(i32, Value, Value)> {
    let mut cmd = std::process::Command::new(binary()?);
    cmd.arg("query").args(args).env("KUBECONFIG", kubeconfig_path()?);
    match data {
        Some(dir) => cmd.env("KUBE9_DATA_DIR", dir),
        None => cmd.env_remove("KUBE9_DATA_DIR"),
    };
    let output = cmd.output().context("running kube9-operator query")?;
    let parse = |bytes: &[u8]| -> Value {
        if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(bytes).unwrap_or(Value::String(String::from_utf8_lossy(bytes).into()))
        }
    };
    Ok((output.status.code().unwrap_or(-1), parse(&output.stdout), parse(&output.stderr)))
}

pub(crate) fn ok_query(data: Option<&Path>, args: &[&str]) -> Result<Value> {
    let (code, stdout, stderr) = query(data, args)?;
    if code != 0 {
        bail!("query {args:?} exited {code}: {stderr}");
    }
    Ok(stdout)
}

/// The ConfigMap's `argocd` block once `check` holds.
async fn wait_argocd(
    client: &kube::Client,
    ns: &str,
    timeout: Duration,
    check: impl Fn(&Value) -> bool,
) -> Result<Value> {
    let last = std::sync::Mutex::new(Value::Null);
    let seen = wait_for(timeout, || {
        let client = client.clone();
        let last = &last;
        let check = &check;
        async move {
            let Some((json, _)) = legacy_status(&client, ns).await? else { return Ok(false) };
            let block = json["argocd"].clone();
            let ok = check(&block);
            *last.lock().unwrap() = block;
            Ok(ok)
        }
    })
    .await;
    let last = last.into_inner().unwrap();
    seen.with_context(|| format!("the argocd block: {last:#}"))?;
    Ok(last)
}

pub(crate) fn reasons(events: &Value, name: &str) -> Vec<String> {
    let mut out: Vec<String> = events["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["object_name"] == name)
        .map(|e| e["metadata"]["reason"].as_str().unwrap_or_default().to_owned())
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn argo_cd_is_detected_followed_and_its_trees_served() {
    scenario(|ctx| async move {
        let _lock = singleton_lock(&ctx.client).await;
        ensure_argo_crds(&ctx.client).await?;
        let argo = ctx.namespace("argocd").await?;
        let shop = ctx.namespace("shop").await?;
        let op_ns = ctx.namespace("kube9-argocd").await?;
        let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), &argo);
        deployments.create(&PostParams::default(), &argocd_server(&argo)).await?;
        let data = DataDir::new();
        let dir = data.0.to_string_lossy().into_owned();
        let _operator = Operator::start(&op_ns, &["--argocd-namespace", &argo, "--data-dir", &dir], &[])?;

        // Detected, with its namespace and version, and able to serve trees; no Applications yet.
        let block = wait_argocd(&ctx.client, &op_ns, Duration::from_secs(30), |a| {
            a["detected"] == true && a["applications"].is_object()
        })
        .await?;
        assert_eq!((block["namespace"].as_str(), block["version"].as_str()), (Some(argo.as_str()), Some("v3.1.5")));
        assert_eq!(block["resourceTreeCapable"], true, "{block:#}");
        assert_eq!(block["applications"]["storedCount"], 0, "{block:#}");
        assert_configmap(&ctx.client, &op_ns).await?;
        let status = operator_status(&ctx.client).await?.and_then(|s| s.argocd).context("status.argocd")?;
        assert!(status.detected && status.namespace.as_deref() == Some(argo.as_str()));

        // An Application, synced and healthy, as Argo CD reports it.
        workload(&ctx, &shop, 2).await?;
        let apps = create_app(&ctx, &argo, "shop", &shop).await?;
        set_status(&apps, "shop", app_status(&shop, "Synced", "Healthy", "abc123")).await?;
        wait_argocd(&ctx.client, &op_ns, Duration::from_secs(20), |a| {
            a["applications"]["storedCount"] == 1 && a["applications"]["syncStatusCounts"]["Synced"] == 1
        })
        .await?;

        // Drift and degradation: one event each, naming the resource; the summary follows.
        let changed = Instant::now();
        set_status(&apps, "shop", app_status(&shop, "OutOfSync", "Degraded", "def456")).await?;
        let block = wait_argocd(&ctx.client, &op_ns, Duration::from_secs(20), |a| {
            a["applications"]["syncStatusCounts"]["OutOfSync"] == 1
                && a["applications"]["healthStatusCounts"]["Degraded"] == 1
        })
        .await?;
        eprintln!("figure: an Application's status change reached the ConfigMap in {:?}", changed.elapsed());
        assert_eq!(block["applications"]["syncStatusCounts"].get("Synced"), None, "{block:#}");
        assert_configmap(&ctx.client, &op_ns).await?;
        let list = ["events", "list", "--object-kind=Application", "--limit=50", "--format=json"];
        wait_for(Duration::from_secs(15), || async {
            Ok(reasons(&ok_query(Some(&data.0), &list)?, "shop") == ["ApplicationDegraded", "ApplicationOutOfSync"])
        })
        .await
        .context("the drift events")?;
        let events = ok_query(Some(&data.0), &list)?;
        let drift = events["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["metadata"]["reason"] == "ApplicationOutOfSync")
            .unwrap();
        assert!(drift["description"].as_str().unwrap().contains(&format!("Deployment {shop}/web")), "{drift:#}");
        assert_eq!(
            (drift["object_namespace"].as_str(), drift["severity"].as_str()),
            (Some(argo.as_str()), Some("warning"))
        );

        // A failed sync, seen twice (Argo CD rewrites its status on every reconcile): one row.
        let failed = json!({"phase": "Failed", "message": "one or more objects failed to apply",
            "startedAt": "2026-12-01T10:00:00Z", "finishedAt": "2026-12-01T10:00:05Z",
            "operation": {"sync": {"revision": "def456"}}});
        set_status(&apps, "shop", json!({"operationState": failed, "reconciledAt": "2026-12-01T10:00:06Z"})).await?;
        set_status(&apps, "shop", json!({"reconciledAt": "2026-12-01T10:03:06Z"})).await?;
        wait_for(Duration::from_secs(15), || async {
            Ok(reasons(&ok_query(Some(&data.0), &list)?, "shop").len() == 3)
        })
        .await
        .context("the sync failure event")?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let events = ok_query(Some(&data.0), &list)?;
        assert_eq!(reasons(&events, "shop"), ["ApplicationDegraded", "ApplicationOutOfSync", "ApplicationSyncFailed"]);

        // query argocd apps list|get.
        let listed = ok_query(None, &["argocd", "apps", "list", "--format=json"])?;
        let ours: Vec<&Value> =
            listed["applications"].as_array().unwrap().iter().filter(|a| a["namespace"] == argo.as_str()).collect();
        assert_eq!(ours.len(), 1, "{listed:#}");
        assert_eq!(
            (ours[0]["sync"]["status"].as_str(), ours[0]["health"]["status"].as_str()),
            (Some("OutOfSync"), Some("Degraded"))
        );
        let got = ok_query(None, &["argocd", "apps", "get", "shop", &format!("--namespace={argo}")])?;
        assert_eq!(got["resources"].as_array().map(Vec::len), Some(2));
        assert_eq!(got["operationState"]["phase"], "Failed");

        // The tree: the Deployment the controller-manager expanded into a ReplicaSet and Pods,
        // the Service its EndpointSlice.
        let args = ["argocd", "resource-tree", "get", "shop", &format!("--namespace={argo}"), "--format=json"];
        let seen = std::sync::Mutex::new(Value::Null);
        wait_for(Duration::from_secs(30), || {
            let seen = &seen;
            async move {
                let tree = ok_query(None, &args)?;
                let kinds: Vec<&str> =
                    tree["nodes"].as_array().into_iter().flatten().filter_map(|n| n["kind"].as_str()).collect();
                let done = kinds.iter().filter(|k| **k == "Pod").count() == 2 && kinds.contains(&"EndpointSlice");
                *seen.lock().unwrap() = tree;
                Ok(done)
            }
        })
        .await
        .with_context(|| format!("the tree: {:#}", seen.lock().unwrap()))?;
        let tree = seen.into_inner().unwrap();
        let nodes = tree["nodes"].as_array().unwrap();
        let node = |kind: &str| nodes.iter().find(|n| n["kind"] == kind).unwrap();
        let rs = node("ReplicaSet");
        assert_eq!(rs["parentRefs"][0]["kind"], "Deployment");
        assert_eq!(rs["parentRefs"][0]["uid"], node("Deployment")["uid"]);
        assert_eq!(node("Pod")["parentRefs"][0]["uid"], rs["uid"]);
        assert_eq!(node("EndpointSlice")["parentRefs"][0]["name"], "web");
        assert_eq!(node("Pod")["health"]["status"], "Progressing", "Pending: no node matches it");
        assert!(node("Deployment")["health"]["status"].is_string());
        for n in nodes {
            for key in ["group", "version", "kind", "namespace", "name", "uid", "parentRefs"] {
                assert!(n.get(key).is_some(), "{key} missing from {n}");
            }
        }

        // Detection off when the server goes, and on again when it comes back.
        deployments.delete("argocd-server", &Default::default()).await?;
        let off = wait_argocd(&ctx.client, &op_ns, Duration::from_secs(20), |a| a["detected"] == false).await?;
        assert!(off.get("resourceTreeCapable").is_none() && off.get("applications").is_none(), "{off:#}");
        assert_configmap(&ctx.client, &op_ns).await?;
        deployments.create(&PostParams::default(), &argocd_server(&argo)).await?;
        let on = wait_argocd(&ctx.client, &op_ns, Duration::from_secs(20), |a| a["detected"] == true).await?;
        assert_eq!(on["applications"]["storedCount"], 1, "{on:#}");
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn query_argocd_fails_with_a_code_on_stderr() {
    scenario(|ctx| async move {
        // The CRD test below removes the CRDs while it holds the lock.
        let _lock = singleton_lock(&ctx.client).await;
        ensure_argo_crds(&ctx.client).await?;
        let ns = unique_name("nowhere");
        let (code, stdout, stderr) =
            query(None, &["argocd", "resource-tree", "get", "missing", &format!("--namespace={ns}")])?;
        assert_eq!((code, stdout), (1, Value::Null));
        assert_eq!((stderr["ok"].as_bool(), stderr["code"].as_str()), (Some(false), Some("not-found")), "{stderr}");
        let (code, _, stderr) = query(None, &["argocd", "apps", "get"])?;
        assert_eq!((code, stderr["code"].as_str()), (2, Some("bad-flag")), "{stderr}");
        let mut cmd = std::process::Command::new(binary()?);
        let output =
            cmd.args(["query", "argocd", "apps", "list"]).env("KUBECONFIG", "/nonexistent/kubeconfig").output()?;
        let stderr: Value = serde_json::from_slice(&output.stderr)?;
        assert_eq!((output.status.code(), stderr["code"].as_str()), (Some(1), Some("no-cluster")), "{stderr}");
        Ok(())
    })
    .await;
}

/// The CRD going and coming back: the only test that deletes a shared CRD, so it holds the
/// singleton lock, as does every test that uses Applications.
#[tokio::test]
async fn detection_follows_the_application_crd_as_it_goes_and_comes_back() {
    scenario(|ctx| async move {
        let _lock = singleton_lock(&ctx.client).await;
        ensure_argo_crds(&ctx.client).await?;
        let argo = ctx.namespace("argocd").await?;
        let op_ns = ctx.namespace("kube9-argocd").await?;
        Api::<Deployment>::namespaced(ctx.client.clone(), &argo)
            .create(&PostParams::default(), &argocd_server(&argo))
            .await?;
        let _operator = Operator::start(&op_ns, &["--argocd-namespace", &argo], &[])?;
        wait_argocd(&ctx.client, &op_ns, Duration::from_secs(30), |a| {
            a["detected"] == true && a["applications"].is_object()
        })
        .await?;

        let crds: Api<CustomResourceDefinition> = Api::all(ctx.client.clone());
        let removed = async {
            crds.delete("applications.argoproj.io", &Default::default()).await?;
            let off = wait_argocd(&ctx.client, &op_ns, Duration::from_secs(30), |a| a["detected"] == false).await?;
            anyhow::ensure!(off.get("applications").is_none() && off.get("resourceTreeCapable").is_none(), "{off:#}");
            anyhow::ensure!(off["namespace"].as_str() == Some(argo.as_str()), "the server is still there: {off:#}");
            wait_for(Duration::from_secs(60), || async {
                Ok(crds.get_opt("applications.argoproj.io").await?.is_none())
            })
            .await
            .context("the CRD to be gone")?;
            // The API server stops serving a moment after the CRD is gone.
            wait_for(Duration::from_secs(30), || async {
                let (code, _, stderr) = query(None, &["argocd", "apps", "list"])?;
                Ok(code == 1 && stderr["code"] == "argocd-not-installed")
            })
            .await
            .context("query argocd saying Argo CD is not installed")?;
            Ok::<(), anyhow::Error>(())
        }
        .await;
        // Whatever happened, the CRDs come back for the tests after this one.
        install_argo_crds(&ctx.client).await?;
        removed?;
        let on = wait_argocd(&ctx.client, &op_ns, Duration::from_secs(30), |a| {
            a["detected"] == true && a["applications"]["storedCount"] == 0
        })
        .await?;
        assert_eq!(on["resourceTreeCapable"], true, "{on:#}");
        assert_configmap(&ctx.client, &op_ns).await?;
        Ok(())
    })
    .await;
}

/// The GitOps checks in a real Assessment run: the operator gathers Applications with their
/// status, and the findings name them.
#[tokio::test]
async fn gitops_checks_find_what_argo_cd_reports() {
    use kube9_api::assessment::{Assessment, AssessmentSpec, Phase, Selection};
    scenario(|ctx| async move {
        let _lock = singleton_lock(&ctx.client).await;
        ensure_argo_crds(&ctx.client).await?;
        let argo = ctx.namespace("argocd").await?;
        let shop = ctx.namespace("shop").await?;
        let op_ns = ctx.namespace("kube9-argocd").await?;
        workload(&ctx, &shop, 0).await?;
        let by_hand: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "by-hand", "namespace": shop},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "by-hand"}},
                "template": {"metadata": {"labels": {"app": "by-hand"}},
                    "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}}}
        }))?;
        Api::<Deployment>::namespaced(ctx.client.clone(), &shop).create(&PostParams::default(), &by_hand).await?;
        let apps = create_app(&ctx, &argo, "shop", &shop).await?;
        set_status(
            &apps,
            "shop",
            json!({"sync": {"status": "OutOfSync"}, "health": {"status": "Degraded"},
            "operationState": {"phase": "Failed", "message": "one or more objects failed to apply",
                "startedAt": "2026-12-01T10:00:00Z", "finishedAt": "2026-12-01T10:00:05Z",
                "operation": {"sync": {"revision": "def456"}}},
            "resources": resources(&shop, "OutOfSync", "Degraded")}),
        )
        .await?;
        let _operator = Operator::start(&op_ns, &["--argocd-namespace", &argo], &[])?;

        let name = unique_name("gitops");
        ctx.cleanup::<Assessment>(None, &name);
        let ids = [
            "operational-excellence.argocd-stuck",
            "operational-excellence.argocd-sync-failed",
            "operational-excellence.argocd-automation-incomplete",
            "operational-excellence.argocd-unmanaged-workloads",
            "security.argocd-default-project",
            "security.argocd-project-unrestricted",
        ];
        let spec = AssessmentSpec {
            namespaces: Some(Selection { include: vec![argo.clone(), shop.clone()], exclude: vec![] }),
            checks: Some(Selection { include: ids.iter().map(|s| s.to_string()).collect(), exclude: vec![] }),
            ..AssessmentSpec::default()
        };
        let assessments: Api<Assessment> = Api::all(ctx.client.clone());
        assessments.create(&PostParams::default(), &Assessment::new(&name, spec)).await?;
        let mut status = None;
        for _ in 0..300 {
            let s = assessments.get(&name).await?.status.unwrap_or_default();
            if matches!(s.phase, Some(Phase::Completed | Phase::Failed)) {
                status = Some(s);
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let status = status.context("the Assessment never finished")?;
        assert_eq!(status.phase, Some(Phase::Completed), "{status:#?}");
        let mut found: Vec<(String, String)> =
            status.findings.iter().map(|f| (f.check_id.clone(), f.object.name.clone())).collect();
        found.sort();
        let mut want: Vec<(String, String)> = [
            ("operational-excellence.argocd-automation-incomplete", "shop"),
            ("operational-excellence.argocd-stuck", "shop"),
            ("operational-excellence.argocd-sync-failed", "shop"),
            ("operational-excellence.argocd-unmanaged-workloads", "by-hand"),
            ("security.argocd-default-project", "shop"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        want.sort();
        assert_eq!(found, want, "{:#?}", status.findings);
        Ok(())
    })
    .await;
}
