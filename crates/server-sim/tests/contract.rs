//! The simulator speaks the registration contract and obeys its behaviours, over real TLS.

use std::time::Duration;

use kube9_server_sim::{Behavior, Options, Simulator};
use serde_json::{Value, json};

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
