//! The real operator binary against the local control plane and the kube9-server simulator:
//! every row of the mode/tier/health table, in both the OperatorStatus and the ConfigMap.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube9_api::legacy::CONFIGMAP_NAME;
use kube9_api::operator_status::{Health, Mode, Tier};
use kube9_server_sim::{Behavior, Options, Simulator};
use kube9_tests::operator::{Operator, legacy_status, operator_status, singleton_lock, wait_for_both};
use kube9_tests::{Ctx, scenario, unique_name, wait_for};

pub(crate) const KEY: &str = "k9_test_0123456789abcdef";
const WAIT: Duration = Duration::from_secs(30);

pub(crate) async fn simulator(
    behavior: Behavior,
    reregistration_hours: f64,
) -> anyhow::Result<(Simulator, std::path::PathBuf)> {
    let sim = Simulator::start(Options {
        tls: true,
        api_keys: vec![KEY.into()],
        expired_keys: vec!["k9_expired_key".into()],
        reregistration_interval_hours: reregistration_hours,
        ..Default::default()
    })
    .await?;
    sim.set_behavior(behavior);
    let ca = std::env::temp_dir().join(unique_name("sim-ca"));
    std::fs::write(&ca, sim.ca_pem().unwrap_or_default())?;
    Ok((sim, ca))
}

/// Starts the operator with a key from a file, against the simulator.
pub(crate) fn start_with_key(
    ns: &str,
    url: &str,
    ca: &std::path::Path,
    key: &str,
    extra: &[&str],
) -> anyhow::Result<Operator> {
    let key_file = std::env::temp_dir().join(unique_name("key"));
    std::fs::write(&key_file, format!("{key}\n"))?;
    let mut args = vec![
        "--api-key-file",
        key_file.to_str().unwrap_or_default(),
        "--server-url",
        url,
        "--server-ca-file",
        ca.to_str().unwrap_or_default(),
        "--status-interval",
        "3s",
        "--retry-initial",
        "1s",
        "--retry-max",
        "2s",
        "--request-timeout",
        "2s",
    ];
    args.extend_from_slice(extra);
    Operator::start(ns, &args, &[])
}

/// Fails if the key appears in anything the operator showed the world.
async fn assert_key_never_shown(ctx: &Ctx, ns: &str, op: &Operator, key: &str) -> anyhow::Result<()> {
    assert!(!op.logs().contains(key), "the API key appears in the logs");
    let status = serde_json::to_string(&operator_status(&ctx.client).await?)?;
    assert!(!status.contains(key), "the API key appears in the OperatorStatus");
    let legacy = serde_json::to_string(&legacy_status(&ctx.client, ns).await?.map(|(v, _)| v))?;
    assert!(!legacy.contains(key), "the API key appears in the ConfigMap");
    let (_, metrics) = op.get("/metrics").await?;
    assert!(!metrics.contains(key), "the API key appears in the metrics");
    let events = kube9_tests::kubectl(&["get", "events", "-A", "-o", "json"])?;
    assert!(!events.contains(key), "the API key appears in an event");
    Ok(())
}

#[tokio::test]
async fn without_a_key_the_operator_reports_operated_free_healthy() {
    scenario(|ctx| async move {
        let _lock = singleton_lock(&ctx.client).await;
        let ns = ctx.namespace("op").await?;
        let op = Operator::start(&ns, &["--status-interval", "3s"], &[])?;
        let (status, legacy) =
            wait_for_both(&ctx.client, &ns, WAIT, |s, l| s.health.is_some() && l.health == Health::Healthy).await?;
        assert_eq!(
            (status.mode, status.tier, status.health, status.registered),
            (Some(Mode::Operated), Some(Tier::Free), Some(Health::Healthy), Some(false))
        );
        assert_eq!(status.namespace.as_deref(), Some(ns.as_str()));
        assert!(status.error.is_none() && status.cluster_id.is_none());
        let ready = status.conditions.iter().find(|c| c.type_ == "Ready").expect("a Ready condition");
        assert_eq!(ready.status, "True");

        // The ConfigMap follows the extension's contract: error present and null, no clusterId,
        // no key configured.
        let json = kube9_tests::contract::assert_configmap(&ctx.client, &ns).await?;
        assert!(json["error"].is_null() && json.get("clusterId").is_none());
        assert_eq!(json["apiKeyConfigured"], false);
        assert_eq!(legacy.version, env!("CARGO_PKG_VERSION"));
        let cm = Api::<ConfigMap>::namespaced(ctx.client.clone(), &ns).get(CONFIGMAP_NAME).await?;
        let labels = cm.metadata.labels.unwrap_or_default();
        assert_eq!(labels.get("app.kubernetes.io/name").map(String::as_str), Some("kube9-operator"));
        assert_eq!(labels.get("app.kubernetes.io/component").map(String::as_str), Some("status"));

        // lastUpdate keeps moving with nothing else changing.
        let first = legacy.last_update.clone();
        wait_for_both(&ctx.client, &ns, Duration::from_secs(10), |_, l| l.last_update != first).await?;

        let (code, _) = op.get("/healthz").await?;
        assert_eq!(code, 200);
        let (code, body) = op.get("/readyz").await?;
        assert_eq!(code, 200, "{body}");
        let (_, metrics) = op.get("/metrics").await?;
        for needle in [
            "kube9_tier{tier=\"free\"} 1",
            "kube9_health{health=\"healthy\"} 1",
            "kube9_reconciles_total",
            "kube9_status_writes_total{target=\"configmap\",result=\"ok\"}",
        ] {
            assert!(metrics.contains(needle), "{needle} missing from\n{metrics}");
        }
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn an_accepted_key_makes_the_cluster_pro_and_never_shows_the_key() {
    scenario(|ctx| async move {
        let _lock = singleton_lock(&ctx.client).await;
        let ns = ctx.namespace("op").await?;
        let (sim, ca) = simulator(Behavior::Accept, 24.0).await?;
        let op = start_with_key(&ns, &sim.url(), &ca, KEY, &[])?;
        let (status, legacy) =
            wait_for_both(&ctx.client, &ns, WAIT, |s, l| s.registered == Some(true) && l.registered).await?;
        assert_eq!(
            (status.mode, status.tier, status.health),
            (Some(Mode::Enabled), Some(Tier::Pro), Some(Health::Healthy))
        );
        let cluster_id = status.cluster_id.clone().expect("a cluster id");
        assert!(cluster_id.starts_with("cls_"), "{cluster_id}");
        assert_eq!(legacy.cluster_id.as_deref(), Some(cluster_id.as_str()));
        assert_eq!((legacy.mode, legacy.tier, legacy.error), (Mode::Enabled, Tier::Pro, None));
        let json = kube9_tests::contract::assert_configmap(&ctx.client, &ns).await?;
        assert_eq!((json["apiKeyConfigured"].as_bool(), json["registered"].as_bool()), (Some(true), Some(true)));

        // What the operator sent: the bearer key, its user agent, and the cluster's facts.
        let request = sim.requests().into_iter().find(|r| r.path == "/v1/operator/register").expect("a registration");
        let header =
            |name: &str| request.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
        assert_eq!(header("authorization"), Some(format!("Bearer {KEY}")));
        assert_eq!(header("user-agent"), Some(format!("kube9-operator/{}", env!("CARGO_PKG_VERSION"))));
        let body: serde_json::Value = serde_json::from_slice(&request.body)?;
        assert!(body["clusterIdentifier"].as_str().unwrap_or_default().starts_with("sha256:"), "{body}");
        assert!(body["kubernetesVersion"].as_str().unwrap_or_default().starts_with("v1."), "{body}");
        assert!(body["approximateNodeCount"].is_u64(), "{body}");

        let (_, metrics) = op.get("/metrics").await?;
        assert!(metrics.contains("kube9_tier{tier=\"pro\"} 1"), "{metrics}");
        assert!(metrics.contains("kube9_registration_attempts_total{outcome=\"registered\"}"), "{metrics}");
        assert_key_never_shown(&ctx, &ns, &op, KEY).await?;
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn a_rejected_key_falls_back_to_free_and_degraded() {
    scenario(|ctx| async move {
        let _lock = singleton_lock(&ctx.client).await;
        let ns = ctx.namespace("op").await?;
        let (sim, ca) = simulator(Behavior::Accept, 24.0).await?;
        let wrong = "k9_wrong_key_that_must_stay_secret";
        let op = start_with_key(&ns, &sim.url(), &ca, wrong, &[])?;
        let (status, legacy) = wait_for_both(&ctx.client, &ns, WAIT, |s, l| {
            s.health == Some(Health::Degraded) && l.health == Health::Degraded
        })
        .await?;
        assert_eq!(
            (status.mode, status.tier, status.registered),
            (Some(Mode::Operated), Some(Tier::Free), Some(false))
        );
        let error = legacy.error.expect("an error");
        assert!(error.contains("rejected the API key (INVALID_API_KEY)"), "{error}");
        assert!(error.len() <= 500);
        // No retry before the next window (24 h here): one attempt only.
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(sim.requests().len(), 1);
        assert_key_never_shown(&ctx, &ns, &op, wrong).await?;
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn a_failing_server_degrades_then_recovers_to_pro() {
    scenario(|ctx| async move {
        let _lock = singleton_lock(&ctx.client).await;
        let ns = ctx.namespace("op").await?;
        let (sim, ca) = simulator(Behavior::ServerError { status: 503 }, 24.0).await?;
        let _op = start_with_key(&ns, &sim.url(), &ca, KEY, &[])?;
        let (status, legacy) = wait_for_both(&ctx.client, &ns, WAIT, |s, l| {
            s.health == Some(Health::Degraded) && l.health == Health::Degraded
        })
        .await?;
        assert_eq!((status.mode, status.tier, status.registered), (Some(Mode::Enabled), Some(Tier::Free), Some(false)));
        let error = legacy.error.expect("an error");
        assert!(error.contains("answered 503") && error.contains("retrying at"), "{error}");

        sim.set_behavior(Behavior::Accept);
        let (status, _) =
            wait_for_both(&ctx.client, &ns, WAIT, |s, l| s.tier == Some(Tier::Pro) && l.tier == Tier::Pro).await?;
        assert_eq!(status.health, Some(Health::Healthy));
        assert!(status.error.is_none());
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn a_server_that_is_down_then_up_is_reached_when_it_returns() {
    scenario(|ctx| async move {
        let _lock = singleton_lock(&ctx.client).await;
        let ns = ctx.namespace("op").await?;
        // Learn an address and a certificate, then take the server away.
        let (sim, ca) = simulator(Behavior::Accept, 24.0).await?;
        let (url, addr, identity) = (sim.url(), sim.addr(), sim.tls_identity());
        sim.shutdown().await;
        let _op = start_with_key(&ns, &url, &ca, KEY, &[])?;
        let (status, legacy) = wait_for_both(&ctx.client, &ns, WAIT, |_, l| {
            l.error.as_deref().is_some_and(|e| e.contains("could not be reached"))
        })
        .await?;
        assert_eq!((status.mode, status.tier), (Some(Mode::Enabled), Some(Tier::Free)));
        assert_eq!(legacy.health, Health::Degraded);
        let json = kube9_tests::contract::assert_configmap(&ctx.client, &ns).await?;
        assert!(json["error"].is_string() && json.get("clusterId").is_none());

        // The server comes back at the same address: the next retry registers.
        let back = Simulator::start(Options {
            listen: addr,
            tls: true,
            tls_identity: identity,
            api_keys: vec![KEY.into()],
            ..Default::default()
        })
        .await?;
        let (status, _) =
            wait_for_both(&ctx.client, &ns, WAIT, |s, l| s.tier == Some(Tier::Pro) && l.tier == Tier::Pro).await?;
        assert_eq!(status.health, Some(Health::Healthy));
        assert!(back.registrations() >= 1);
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn a_hanging_server_is_a_timeout_not_a_hang() {
    scenario(|ctx| async move {
        let _lock = singleton_lock(&ctx.client).await;
        let ns = ctx.namespace("op").await?;
        let (sim, ca) = simulator(Behavior::Hang, 24.0).await?;
        let _op = start_with_key(&ns, &sim.url(), &ca, KEY, &[])?;
        let (_, legacy) = wait_for_both(&ctx.client, &ns, WAIT, |_, l| l.health == Health::Degraded).await?;
        let error = legacy.error.expect("an error");
        assert!(error.contains("could not be reached") && error.contains("timed out"), "{error}");
        sim.set_behavior(Behavior::Malformed);
        let (_, legacy) = wait_for_both(&ctx.client, &ns, WAIT, |_, l| {
            l.error.as_deref().is_some_and(|e| e.contains("could not be read"))
        })
        .await?;
        assert_eq!(legacy.tier, Tier::Free);
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn rate_limiting_honours_retry_after() {
    scenario(|ctx| async move {
        let _lock = singleton_lock(&ctx.client).await;
        let ns = ctx.namespace("op").await?;
        let (sim, ca) = simulator(Behavior::RateLimit { retry_after_seconds: 4 }, 24.0).await?;
        let _op = start_with_key(&ns, &sim.url(), &ca, KEY, &[])?;
        let (_, legacy) = wait_for_both(&ctx.client, &ns, WAIT, |_, l| l.health == Health::Degraded).await?;
        assert!(legacy.error.as_deref().unwrap_or_default().contains("rate limiting"), "{legacy:?}");
        sim.set_behavior(Behavior::Accept);
        wait_for_both(&ctx.client, &ns, WAIT, |s, _| s.registered == Some(true)).await?;
        let times: Vec<_> = sim.requests().iter().filter(|r| r.path == "/v1/operator/register").map(|r| r.at).collect();
        assert_eq!(times.len(), 2, "one 429, then one accepted attempt after Retry-After");
        let gap = times[1].duration_since(times[0]).unwrap_or_default();
        // --retry-max is 2 s, so only Retry-After explains a gap of 4 s.
        assert!(gap >= Duration::from_millis(3900), "retried after {gap:?}");
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn the_operator_reregisters_on_the_servers_interval() {
    scenario(|ctx| async move {
        let _lock = singleton_lock(&ctx.client).await;
        let ns = ctx.namespace("op").await?;
        // 0.0005 h = 1.8 s.
        let (sim, ca) = simulator(Behavior::Accept, 0.0005).await?;
        let _op = start_with_key(&ns, &sim.url(), &ca, KEY, &[])?;
        wait_for_both(&ctx.client, &ns, WAIT, |s, _| s.registered == Some(true)).await?;
        wait_for(WAIT, || async { Ok(sim.registrations() >= 3) }).await?;

        // A failing re-registration keeps pro but degrades, then recovers.
        sim.set_behavior(Behavior::ServerError { status: 500 });
        let (status, legacy) = wait_for_both(&ctx.client, &ns, WAIT, |s, l| {
            s.health == Some(Health::Degraded) && l.health == Health::Degraded
        })
        .await?;
        assert_eq!((status.tier, status.registered), (Some(Tier::Pro), Some(true)));
        assert!(legacy.error.as_deref().unwrap_or_default().contains("re-registration failed"), "{legacy:?}");
        sim.set_behavior(Behavior::Accept);
        wait_for_both(&ctx.client, &ns, WAIT, |s, l| s.health == Some(Health::Healthy) && l.health == Health::Healthy)
            .await?;
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn a_deleted_or_edited_configmap_is_restored() {
    scenario(|ctx| async move {
        let _lock = singleton_lock(&ctx.client).await;
        let ns = ctx.namespace("op").await?;
        // A long interval: only the watch can explain a prompt repair.
        let _op = Operator::start(&ns, &["--status-interval", "4m"], &[])?;
        wait_for_both(&ctx.client, &ns, WAIT, |_, _| true).await?;
        let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ns);

        api.delete(CONFIGMAP_NAME, &DeleteParams::default()).await?;
        let deleted = Instant::now();
        wait_for_both(&ctx.client, &ns, Duration::from_secs(10), |_, _| true).await?;
        eprintln!("ConfigMap restored {:?} after deletion", deleted.elapsed());

        let patch = serde_json::json!({"data": {"status": "{\"mode\":\"enabled\"}", "extra": "hand-made"}});
        api.patch(CONFIGMAP_NAME, &PatchParams::default(), &Patch::Merge(&patch)).await?;
        let edited = Instant::now();
        wait_for(Duration::from_secs(10), || {
            let (api, ns) = (api.clone(), ns.clone());
            async move {
                let cm = api.get(CONFIGMAP_NAME).await?;
                let data = cm.data.unwrap_or_default();
                Ok(data.len() == 2
                    && data.get("namespace") == Some(&ns)
                    && data.get("status").is_some_and(|s| s.contains("\"tier\":\"free\"")))
            }
        })
        .await?;
        eprintln!("ConfigMap repaired {:?} after a hand edit", edited.elapsed());

        // The singleton comes back too.
        kube9_tests::operator::delete_singleton(&ctx.client).await;
        wait_for(Duration::from_secs(15), || {
            let client = ctx.client.clone();
            async move { Ok(operator_status(&client).await?.is_some_and(|s| s.health.is_some())) }
        })
        .await?;
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn sigterm_stops_the_operator_within_seconds() {
    scenario(|ctx| async move {
        let _lock = singleton_lock(&ctx.client).await;
        let ns = ctx.namespace("op").await?;
        let mut op = Operator::start(&ns, &["--status-interval", "3s"], &[])?;
        wait_for_both(&ctx.client, &ns, WAIT, |_, _| true).await?;
        let (code, took) = op.terminate()?;
        assert_eq!(code, Some(0), "{}", op.logs());
        assert!(took < Duration::from_secs(5), "took {took:?}");
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn bad_configuration_stops_start_up_naming_the_setting() {
    scenario(|_ctx| async move {
        let mut op = Operator::start("kube9-system", &["--server-url", "http://insecure.example"], &[])?;
        let code = loop {
            if let Some(code) = op.exited() {
                break code;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(code, Some(2));
        // The log readers may still be draining the pipes after the exit.
        wait_for(Duration::from_secs(5), || async { Ok(op.logs().contains("KUBE9_SERVER_URL")) })
            .await
            .map_err(|e| e.context(op.logs()))?;
        Ok(())
    })
    .await;
}

/// A kubeconfig for a ServiceAccount token minted by TokenRequest, against the test cluster.
async fn kubeconfig_for_token(ctx: &Ctx, namespace: &str, account: &str) -> anyhow::Result<std::path::PathBuf> {
    use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
    use k8s_openapi::api::core::v1::ServiceAccount;
    let accounts: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), namespace);
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec!["https://kubernetes.default.svc.cluster.local".into()],
            expiration_seconds: Some(3600),
            ..Default::default()
        },
        ..Default::default()
    };
    let token = accounts.create_token_request(account, &PostParams::default(), &request).await?;
    let token = token.status.map(|s| s.token).unwrap_or_default();
    let mut config: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(kube9_tests::kubeconfig_path()?)?)?;
    let current = config["current-context"].as_str().unwrap_or_default().to_owned();
    let contexts = config["contexts"].as_sequence().cloned().unwrap_or_default();
    let user = contexts
        .iter()
        .find(|c| c["name"].as_str() == Some(current.as_str()))
        .and_then(|c| c["context"]["user"].as_str())
        .unwrap_or_default()
        .to_owned();
    for entry in config["users"].as_sequence_mut().into_iter().flatten() {
        if entry["name"].as_str() == Some(user.as_str()) {
            entry["user"] = serde_yaml::to_value(serde_json::json!({ "token": token }))?;
        }
    }
    let path = std::env::temp_dir().join(unique_name("restricted-kubeconfig"));
    std::fs::write(&path, serde_yaml::to_string(&config)?)?;
    Ok(path)
}

/// A ServiceAccount `name` in `ns` bound to a ClusterRole of `cluster` rules and a Role of
/// `own` rules in `ns` (all removed after the test), and a kubeconfig for its token.
pub(crate) async fn restricted_account(
    ctx: &Ctx,
    ns: &str,
    name: &str,
    cluster: Vec<k8s_openapi::api::rbac::v1::PolicyRule>,
    own: Vec<k8s_openapi::api::rbac::v1::PolicyRule>,
) -> anyhow::Result<std::path::PathBuf> {
    use k8s_openapi::api::core::v1::ServiceAccount;
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding, RoleRef, Subject};
    let meta = |namespace: Option<&str>| ObjectMeta {
        name: Some(name.to_owned()),
        namespace: namespace.map(str::to_owned),
        ..Default::default()
    };
    let subject = Subject {
        kind: "ServiceAccount".into(),
        name: name.to_owned(),
        namespace: Some(ns.to_owned()),
        ..Default::default()
    };
    let role_ref = |kind: &str| RoleRef {
        api_group: "rbac.authorization.k8s.io".into(),
        kind: kind.into(),
        name: name.to_owned(),
    };
    let pp = PostParams::default();
    Api::<ServiceAccount>::namespaced(ctx.client.clone(), ns)
        .create(&pp, &ServiceAccount { metadata: meta(Some(ns)), ..Default::default() })
        .await?;
    ctx.cleanup::<ClusterRole>(None, name);
    ctx.cleanup::<ClusterRoleBinding>(None, name);
    Api::<ClusterRole>::all(ctx.client.clone())
        .create(&pp, &ClusterRole { metadata: meta(None), rules: Some(cluster), ..Default::default() })
        .await?;
    Api::<ClusterRoleBinding>::all(ctx.client.clone())
        .create(
            &pp,
            &ClusterRoleBinding {
                metadata: meta(None),
                role_ref: role_ref("ClusterRole"),
                subjects: Some(vec![subject.clone()]),
            },
        )
        .await?;
    Api::<Role>::namespaced(ctx.client.clone(), ns)
        .create(&pp, &Role { metadata: meta(Some(ns)), rules: Some(own) })
        .await?;
    Api::<RoleBinding>::namespaced(ctx.client.clone(), ns)
        .create(
            &pp,
            &RoleBinding { metadata: meta(Some(ns)), role_ref: role_ref("Role"), subjects: Some(vec![subject]) },
        )
        .await?;
    kubeconfig_for_token(ctx, ns, name).await
}

pub(crate) fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> k8s_openapi::api::rbac::v1::PolicyRule {
    k8s_openapi::api::rbac::v1::PolicyRule {
        api_groups: Some(groups.iter().map(|s| s.to_string()).collect()),
        resources: Some(resources.iter().map(|s| s.to_string()).collect()),
        verbs: verbs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_status_that_cannot_be_written_makes_the_operator_unhealthy() {
    scenario(|ctx| async move {
        let _lock = singleton_lock(&ctx.client).await;
        let ns = ctx.namespace("op").await?;
        let name = unique_name("restricted");
        // Everything the operator needs except writing the OperatorStatus status; it leads
        // (alone) on its Lease, as the chart's Role lets it.
        let cluster = vec![
            rule(&["kube9.io"], &["operatorstatuses"], &["get", "list", "watch", "create"]),
            rule(&[""], &["nodes"], &["list"]),
        ];
        let own = vec![
            rule(&[""], &["configmaps"], &["get", "list", "watch", "create", "update"]),
            rule(&["coordination.k8s.io"], &["leases"], &["get", "list", "watch", "create", "update", "patch"]),
        ];
        let kubeconfig = restricted_account(&ctx, &ns, &name, cluster, own).await?;
        let op = Operator::start(
            &ns,
            &["--status-interval", "3s"],
            &[("KUBECONFIG", kubeconfig.to_str().unwrap_or_default())],
        )?;
        let deadline = Instant::now() + WAIT;
        let legacy = loop {
            let seen = legacy_status(&ctx.client, &ns).await?.map(|(_, l)| l);
            match seen {
                Some(l) if l.health == Health::Unhealthy => break l,
                _ if Instant::now() > deadline => anyhow::bail!("never unhealthy; last seen {seen:?}\n{}", op.logs()),
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        };
        let error = legacy.error.unwrap_or_default();
        assert!(error.contains("status cannot be written") && error.contains("forbidden"), "{error}");
        let (code, body) = op.get("/readyz").await?;
        assert_eq!(code, 503, "{body}");
        let (_, metrics) = op.get("/metrics").await?;
        assert!(metrics.contains("kube9_reconcile_errors_total{error=\"operatorstatus_write\"}"), "{metrics}");
        assert!(metrics.contains("kube9_health{health=\"unhealthy\"} 1"), "{metrics}");
        std::fs::remove_file(kubeconfig)?;
        Ok(())
    })
    .await;
}

/// A replica whose Role does not grant its Lease can neither lead nor stand by: it is not
/// ready and says which permission is missing, rather than idling as a silent standby.
#[tokio::test]
async fn an_operator_that_may_not_use_its_lease_is_not_ready_and_says_why() {
    scenario(|ctx| async move {
        let ns = ctx.namespace("op").await?;
        let name = unique_name("no-lease");
        let cluster = vec![
            rule(
                &["kube9.io"],
                &["operatorstatuses", "operatorstatuses/status"],
                &["get", "list", "watch", "create", "patch", "update"],
            ),
            rule(&[""], &["nodes"], &["list"]),
        ];
        let own = vec![rule(&[""], &["configmaps"], &["get", "list", "watch", "create", "update"])];
        let kubeconfig = restricted_account(&ctx, &ns, &name, cluster, own).await?;
        let op = Operator::start(
            &ns,
            &["--status-interval", "3s", "--leader-election-lease", "kube9-test-leader"],
            &[("KUBECONFIG", kubeconfig.to_str().unwrap_or_default())],
        )?;
        let deadline = Instant::now() + WAIT;
        let body = loop {
            let (code, body) = op.get("/readyz").await.unwrap_or((0, String::new()));
            if code == 503 && body.contains("cannot use the Lease") {
                break body;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "never unready for its Lease; last {code} {body}\n{}",
                op.logs()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert!(body.contains(&format!("{ns}/kube9-test-leader")) && body.contains("forbidden"), "{body}");
        assert!(body.contains("Role must grant get, update and patch on it"), "{body}");
        let (_, metrics) = op.get("/metrics").await?;
        assert!(metrics.contains("kube9_leader_election_errors_total "), "{metrics}");
        assert!(!metrics.contains("kube9_leader_election_errors_total 0\n"), "{metrics}");
        assert!(op.logs().contains("this replica cannot lead or stand by"), "{}", op.logs());
        std::fs::remove_file(kubeconfig)?;
        Ok(())
    })
    .await;
}
