//! The simulator speaks the registration and pro-tier contracts and obeys its behaviours, over
//! real TLS (and plain HTTP).

use std::time::Duration;

use kube9_server_sim::{Behavior, Options, Simulator};
use serde_json::{Value, json};
use sha2::Digest;

const KEY: &str = "k9_valid";

async fn sim() -> (Simulator, reqwest::Client) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sim = Simulator::start(Options {
        tls: true,
        api_keys: vec![KEY.into()],
        expired_keys: vec!["k9_old".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let ca = reqwest::Certificate::from_pem(sim.ca_pem().unwrap().as_bytes()).unwrap();
    let client =
        reqwest::Client::builder().add_root_certificate(ca).timeout(Duration::from_millis(800)).build().unwrap();
    (sim, client)
}

fn body() -> Value {
    json!({"operatorVersion": "0.1.0", "clusterIdentifier": "sha256:abc", "kubernetesVersion": "v1.20.2", "approximateNodeCount": 3})
}

async fn register(sim: &Simulator, client: &reqwest::Client, key: &str) -> reqwest::Result<reqwest::Response> {
    client.post(format!("{}/v1/operator/register", sim.url())).bearer_auth(key).json(&body()).send().await
}

#[tokio::test]
async fn a_valid_key_registers_then_reregisters_with_the_same_cluster_id() {
    let (sim, client) = sim().await;
    let first: Value = register(&sim, &client, KEY).await.unwrap().json().await.unwrap();
    let second: Value = register(&sim, &client, KEY).await.unwrap().json().await.unwrap();
    assert_eq!(first["status"], "registered");
    assert_eq!(second["status"], "reregistered");
    assert_eq!(first["clusterId"], second["clusterId"]);
    assert!(first["clusterId"].as_str().unwrap().starts_with("cls_"));
    assert_eq!(first["tier"], "pro");
    assert_eq!(first["configuration"]["reregistrationIntervalHours"], 24.0);
    assert_eq!(first["configuration"]["metricsEnabled"], true);
    assert_eq!(first["configuration"]["metricsIntervalSeconds"], 3600);
    assert_eq!(sim.registrations(), 2);
}

#[tokio::test]
async fn unknown_and_expired_keys_are_refused() {
    let (sim, client) = sim().await;
    let unknown = register(&sim, &client, "k9_nope").await.unwrap();
    assert_eq!(unknown.status(), 401);
    assert_eq!(unknown.json::<Value>().await.unwrap()["error"], "INVALID_API_KEY");
    let expired = register(&sim, &client, "k9_old").await.unwrap();
    assert_eq!(expired.json::<Value>().await.unwrap()["error"], "API_KEY_EXPIRED");
    assert_eq!(sim.registrations(), 0);
}

#[tokio::test]
async fn every_behaviour_answers_as_told() {
    let (sim, client) = sim().await;
    sim.set_behavior(Behavior::RejectKey);
    assert_eq!(register(&sim, &client, KEY).await.unwrap().status(), 401);
    sim.set_behavior(Behavior::ExpiredKey);
    assert_eq!(register(&sim, &client, KEY).await.unwrap().json::<Value>().await.unwrap()["error"], "API_KEY_EXPIRED");
    sim.set_behavior(Behavior::RateLimit { retry_after_seconds: 7 });
    let limited = register(&sim, &client, KEY).await.unwrap();
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["retry-after"], "7");
    sim.set_behavior(Behavior::ServerError { status: 503 });
    assert_eq!(register(&sim, &client, KEY).await.unwrap().status(), 503);
    sim.set_behavior(Behavior::Malformed);
    let text = register(&sim, &client, KEY).await.unwrap().text().await.unwrap();
    assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");
    sim.set_behavior(Behavior::BadRequest);
    assert_eq!(register(&sim, &client, KEY).await.unwrap().status(), 400);
    sim.set_behavior(Behavior::Hang);
    assert!(register(&sim, &client, KEY).await.unwrap_err().is_timeout());
    sim.set_behavior(Behavior::Accept);
    assert_eq!(register(&sim, &client, KEY).await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_body_without_the_contract_fields_is_a_bad_request() {
    let (sim, client) = sim().await;
    let response = client
        .post(format!("{}/v1/operator/register", sim.url()))
        .bearer_auth(KEY)
        .json(&json!({"operatorVersion": "0.1.0"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn requests_are_recorded_with_their_bytes_and_control_works_over_http() {
    let (sim, client) = sim().await;
    register(&sim, &client, KEY).await.unwrap();
    let recorded = sim.requests();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].path, "/v1/operator/register");
    assert_eq!(serde_json::from_slice::<Value>(&recorded[0].body).unwrap(), body());

    let put = client
        .put(format!("{}/_sim/behavior", sim.url()))
        .json(&json!({"kind": "serverError", "status": 502}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    assert_eq!(register(&sim, &client, KEY).await.unwrap().status(), 502);
    let listed: Value = client.get(format!("{}/_sim/requests", sim.url())).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2, "control requests are not recorded");
    assert_eq!(client.get(format!("{}/nowhere", sim.url())).send().await.unwrap().status(), 404);
}

const CLUSTER: &str = "cls_0123456789abcdef";

fn workload(kind: &str, name: &str, replicas: Value, limits: bool) -> Value {
    json!({"kind": kind, "namespace": "namespace-1c2d3e", "name": name, "replicas": replicas, "containers": 1,
        "resourceRequests": true, "resourceLimits": limits, "livenessProbe": true, "readinessProbe": true,
        "imageTagLatest": false, "runAsNonRoot": true, "hostNetwork": false})
}

fn upload() -> Value {
    json!({"clusterId": CLUSTER, "operatorVersion": "0.1.0", "sentAt": "2026-11-23T10:00:00Z", "collections": [
        {"type": "clusterMetadata", "collectedAt": "2026-11-23T09:00:00Z", "data": {"nodeCount": 3}},
        {"type": "configurationPatterns", "collectedAt": "2026-11-23T09:58:00Z", "data": {"workloads": [
            workload("Deployment", "deployment-a7f3b9", json!(1), false),
            workload("StatefulSet", "statefulset-00aa11", json!(3), true),
            workload("DaemonSet", "daemonset-b0b0b0", Value::Null, true),
            workload("StatefulSet", "statefulset-c4c4c4", json!(1), true),
        ]}},
    ]})
}

fn id(kind: &str, object_kind: &str, name: &str) -> String {
    let digest = sha2::Sha256::digest(format!("{CLUSTER}/{kind}/{object_kind}/namespace-1c2d3e/{name}").as_bytes());
    format!("ins_{}", &hex::encode(digest)[..16])
}

async fn post(sim: &Simulator, client: &reqwest::Client, path: &str, key: &str, body: &Value) -> reqwest::Response {
    client.post(format!("{}{path}", sim.url())).bearer_auth(key).json(body).send().await.unwrap()
}

async fn insights(sim: &Simulator, client: &reqwest::Client) -> Vec<Value> {
    let response = post(sim, client, "/api/metrics", KEY, &upload()).await;
    assert_eq!(response.status(), 200);
    response.json::<Value>().await.unwrap()["insights"].as_array().unwrap().clone()
}

fn ack_path(id: &str) -> String {
    format!("/api/insights/{id}/acknowledge")
}

#[tokio::test]
async fn a_metrics_upload_is_answered_with_rule_insights_about_the_names_received() {
    let (sim, client) = sim().await;
    let first = insights(&sim, &client).await;
    let mut expected = vec![
        id("missing-resource-limits", "Deployment", "deployment-a7f3b9"),
        id("single-replica", "Deployment", "deployment-a7f3b9"),
        id("single-replica", "StatefulSet", "statefulset-c4c4c4"),
    ];
    expected.sort();
    assert_eq!(first.iter().map(|i| i["id"].as_str().unwrap()).collect::<Vec<_>>(), expected, "ordered by id");
    let limits = first.iter().find(|i| i["type"] == "missing-resource-limits").unwrap();
    assert_eq!(
        limits["object"],
        json!({"kind": "Deployment", "namespace": "namespace-1c2d3e", "name": "deployment-a7f3b9"})
    );
    assert_eq!(limits["severity"], "high");
    assert_eq!(limits["title"], "Containers without memory limits");
    assert_eq!(
        limits["text"],
        "Deployment deployment-a7f3b9 in namespace-1c2d3e has containers without memory limits."
    );
    assert_eq!(limits["recommendation"], "Set resources.limits.memory on every container.");
    assert_eq!((limits["status"].clone(), limits["acknowledgedAt"].clone()), (json!("active"), Value::Null));
    assert_eq!((limits["confidence"].clone(), limits["generationMethod"].clone()), (json!(0.9), json!("rules")));
    let created: jiff::Timestamp = limits["createdAt"].as_str().unwrap().parse().unwrap();
    let expires: jiff::Timestamp = limits["expiresAt"].as_str().unwrap().parse().unwrap();
    assert_eq!(expires.as_second() - created.as_second(), 7 * 24 * 3600);
    let created_text = limits["createdAt"].as_str().unwrap();
    assert_eq!((created_text.len(), &created_text[10..11], &created_text[19..]), (20, "T", "Z"), "{created_text}");
    let replica = first.iter().find(|i| i["object"]["kind"] == "StatefulSet").unwrap();
    assert_eq!(
        replica["text"],
        "StatefulSet statefulset-c4c4c4 in namespace-1c2d3e runs one replica; a node failure stops it."
    );
    assert_eq!((replica["severity"].clone(), replica["confidence"].clone()), (json!("medium"), json!(0.75)));
    assert_eq!(replica["recommendation"], "Run at least two replicas with a PodDisruptionBudget.");

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = insights(&sim, &client).await;
    assert_eq!(first, second, "same ids, same createdAt");
    assert_eq!(sim.metrics_uploads(), 2);
    assert_eq!(sim.insights(), second);
}

#[tokio::test]
async fn acknowledgements_change_the_state_and_unknown_ids_are_404_and_recorded() {
    let (sim, client) = sim().await;
    let id = insights(&sim, &client).await[0]["id"].as_str().unwrap().to_owned();
    let body = json!({"state": "acknowledged", "note": "fix in next release"});
    let response = post(&sim, &client, &ack_path(&id), KEY, &body).await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!((answer["id"].as_str(), answer["status"].as_str()), (Some(id.as_str()), Some("acknowledged")));
    let at: jiff::Timestamp = answer["acknowledgedAt"].as_str().unwrap().parse().unwrap();
    assert!((jiff::Timestamp::now().as_second() - at.as_second()).abs() < 5);

    let after = insights(&sim, &client).await;
    let acked = after.iter().find(|i| i["id"] == id.as_str()).unwrap();
    assert_eq!(
        (acked["status"].clone(), acked["acknowledgedAt"].clone()),
        (json!("acknowledged"), answer["acknowledgedAt"].clone())
    );
    assert!(after.iter().filter(|i| i["id"] != id.as_str()).all(|i| i["status"] == "active"));

    let unknown = post(&sim, &client, &ack_path("ins_0000000000000000"), KEY, &json!({"state": "dismissed"})).await;
    assert_eq!(unknown.status(), 404);
    assert_eq!(unknown.json::<Value>().await.unwrap()["error"], "INSIGHT_NOT_FOUND");
    let acks = sim.acknowledgements();
    assert_eq!(acks.len(), 2);
    assert_eq!((acks[0].id.as_str(), acks[0].state.as_str(), acks[0].found), (id.as_str(), "acknowledged", true));
    assert_eq!(acks[0].note.as_deref(), Some("fix in next release"));
    assert_eq!((acks[1].state.as_str(), acks[1].note.as_deref(), acks[1].found), ("dismissed", None, false));

    let listed: Value =
        client.get(format!("{}/_sim/acknowledgements", sim.url())).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed[0]["found"], true);
    assert_eq!(listed[1]["id"], "ins_0000000000000000");
    assert!(listed[0]["at"].as_str().unwrap().parse::<jiff::Timestamp>().is_ok());
    let states: Value = client.get(format!("{}/_sim/insights", sim.url())).send().await.unwrap().json().await.unwrap();
    assert_eq!(states.as_array().unwrap(), &after);
}

#[tokio::test]
async fn behaviours_and_keys_apply_to_metrics_and_acknowledgements() {
    let (sim, client) = sim().await;
    let id = insights(&sim, &client).await[0]["id"].as_str().unwrap().to_owned();
    let ack = json!({"state": "dismissed"});
    sim.set_behavior(Behavior::ServerError { status: 503 });
    assert_eq!(post(&sim, &client, "/api/metrics", KEY, &upload()).await.status(), 503);
    assert_eq!(post(&sim, &client, &ack_path(&id), KEY, &ack).await.status(), 503);
    sim.set_behavior(Behavior::RateLimit { retry_after_seconds: 9 });
    let limited = post(&sim, &client, "/api/metrics", KEY, &upload()).await;
    assert_eq!((limited.status().as_u16(), limited.headers()["retry-after"].to_str().unwrap()), (429, "9"));
    sim.set_behavior(Behavior::Malformed);
    let text = post(&sim, &client, &ack_path(&id), KEY, &ack).await.text().await.unwrap();
    assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");
    sim.set_behavior(Behavior::Hang);
    let hung = client.post(format!("{}/api/metrics", sim.url())).bearer_auth(KEY).json(&upload()).send().await;
    assert!(hung.unwrap_err().is_timeout());

    sim.set_behavior(Behavior::Accept);
    let wrong = post(&sim, &client, "/api/metrics", "k9_nope", &upload()).await;
    assert_eq!(
        (wrong.status().as_u16(), wrong.json::<Value>().await.unwrap()["error"].clone()),
        (401, json!("INVALID_API_KEY"))
    );
    let expired = post(&sim, &client, &ack_path(&id), "k9_old", &ack).await;
    assert_eq!(
        (expired.status().as_u16(), expired.json::<Value>().await.unwrap()["error"].clone()),
        (401, json!("API_KEY_EXPIRED"))
    );
    assert_eq!(sim.metrics_uploads(), 1);
    assert!(sim.acknowledgements().is_empty(), "refused acknowledgements are not recorded as received");
    assert!(sim.insights().iter().all(|i| i["status"] == "active"));
}

#[tokio::test]
async fn bad_metrics_and_acknowledgement_bodies_are_bad_requests() {
    let (sim, client) = sim().await;
    let id = insights(&sim, &client).await[0]["id"].as_str().unwrap().to_owned();
    let mut no_collections = upload();
    no_collections.as_object_mut().unwrap().remove("collections");
    let mut bad_time = upload();
    bad_time["sentAt"] = json!("yesterday");
    let mut no_workloads = upload();
    no_workloads["collections"][1]["data"] = json!({});
    for body in [no_collections, bad_time, no_workloads] {
        let response = post(&sim, &client, "/api/metrics", KEY, &body).await;
        assert_eq!(response.status(), 400, "{body}");
        assert_eq!(response.json::<Value>().await.unwrap()["error"], "BAD_REQUEST");
    }
    let garbage =
        client.post(format!("{}/api/metrics", sim.url())).bearer_auth(KEY).body("{oops").send().await.unwrap();
    assert_eq!(garbage.status(), 400);
    assert!(!garbage.json::<Value>().await.unwrap()["message"].as_str().unwrap().is_empty());
    for body in [
        json!({"state": "resolved"}),
        json!({}),
        json!({"state": "acknowledged", "note": 3}),
        json!({"state": "dismissed", "x": 1}),
    ] {
        assert_eq!(post(&sim, &client, &ack_path(&id), KEY, &body).await.status(), 400, "{body}");
    }
    assert_eq!(sim.metrics_uploads(), 1);
    assert!(sim.acknowledgements().is_empty());
}

#[tokio::test]
async fn the_unmappable_switch_adds_an_insight_about_an_object_never_sent_over_plain_http() {
    let sim =
        Simulator::start(Options { api_keys: vec![KEY.into()], extra_unmappable_insight: true, ..Default::default() })
            .await
            .unwrap();
    assert!(sim.url().starts_with("http://"));
    let client = reqwest::Client::builder().timeout(Duration::from_millis(800)).build().unwrap();
    let unmappable = json!({"kind": "Deployment", "namespace": "namespace-000000", "name": "deployment-000000"});
    let with = insights(&sim, &client).await;
    assert_eq!(with.len(), 4);
    let extra = with.iter().find(|i| i["object"] == unmappable).unwrap();
    let digest =
        sha2::Sha256::digest(format!("{CLUSTER}/single-replica/Deployment/namespace-000000/deployment-000000"));
    assert_eq!(extra["id"], format!("ins_{}", &hex::encode(digest)[..16]));
    assert_eq!(extra["type"], "single-replica");

    let put = client.put(format!("{}/_sim/unmappable", sim.url())).json(&false).send().await.unwrap();
    assert_eq!(put.status(), 200);
    assert!(insights(&sim, &client).await.iter().all(|i| i["object"] != unmappable));
    sim.set_unmappable(true);
    assert_eq!(insights(&sim, &client).await, with);
}
