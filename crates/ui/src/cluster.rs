//! Reads and writes on the API server, under the UI's identity (the user's kubeconfig, or in a
//! Pod its ServiceAccount). A refusal is kept as the API server's own message.

use anyhow::{Context, Result};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube9_api::assessment::{Assessment, RUN_REQUESTED_ANNOTATION};
use kube9_api::operator_status::{AcknowledgementState, OperatorStatus, SINGLETON_NAME};
use serde_json::json;

/// One cluster the UI shows: its kubeconfig context (or "in-cluster") and a client, or why no
/// client could be made.
pub struct Cluster {
    pub name: String,
    pub client: Result<kube::Client, String>,
}

/// The clusters to show: each `--context`, every context with `--all-contexts`, or the
/// current one (in a Pod: its ServiceAccount).
pub async fn connect(contexts: &[String], all: bool) -> Result<Vec<Cluster>> {
    if contexts.is_empty() && !all {
        let config =
            kube::Config::infer().await.context("no kubeconfig and not in a Pod: set KUBECONFIG or --context")?;
        let name = Kubeconfig::read().ok().and_then(|k| k.current_context).unwrap_or_else(|| "in-cluster".to_owned());
        let client = kube::Client::try_from(config).map_err(|e| e.to_string());
        return Ok(vec![Cluster { name, client }]);
    }
    let kubeconfig = Kubeconfig::read().context("reading the kubeconfig (KUBECONFIG or ~/.kube/config)")?;
    let names: Vec<String> =
        if all { kubeconfig.contexts.iter().map(|c| c.name.clone()).collect() } else { contexts.to_vec() };
    let mut out = Vec::new();
    for name in names {
        let options = KubeConfigOptions { context: Some(name.clone()), ..KubeConfigOptions::default() };
        let client = match kube::Config::from_custom_kubeconfig(kubeconfig.clone(), &options).await {
            Ok(config) => kube::Client::try_from(config).map_err(|e| e.to_string()),
            Err(e) => Err(format!("context {name}: {e}")),
        };
        out.push(Cluster { name, client });
    }
    Ok(out)
}

/// What to show for a failed request: the API server's message when it answered (a refusal
/// names the user and the verb), otherwise why it could not be reached.
pub fn refusal(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => format!("{} (HTTP {})", status.message, status.code),
        other => format!("cannot reach the API server: {other}"),
    }
}

/// The `kube9` OperatorStatus, `None` when there is none (no operator installed).
pub async fn operator_status(client: &kube::Client) -> Result<Option<OperatorStatus>, String> {
    Api::<OperatorStatus>::all(client.clone()).get_opt(SINGLETON_NAME).await.map_err(|e| refusal(&e))
}

/// Every Assessment, by name.
pub async fn assessments(client: &kube::Client) -> Result<Vec<Assessment>, String> {
    let mut items =
        Api::<Assessment>::all(client.clone()).list(&ListParams::default()).await.map_err(|e| refusal(&e))?.items;
    items.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    Ok(items)
}

/// The merge patch that records (or, with `None`, removes) an acknowledgement.
pub fn acknowledgement_patch(id: &str, state: Option<AcknowledgementState>, note: &str) -> serde_json::Value {
    let value = match state {
        None => serde_json::Value::Null,
        Some(state) => {
            let note = note.trim();
            let mut ack = json!({"state": state});
            if !note.is_empty() {
                ack["note"] = json!(note.chars().take(1000).collect::<String>());
            }
            ack
        }
    };
    json!({"spec": {"acknowledgements": {id: value}}})
}

/// Records a decision about an insight in `spec.acknowledgements` (a merge patch, as the
/// documentation's kubectl command does).
pub async fn acknowledge(
    client: &kube::Client,
    id: &str,
    state: Option<AcknowledgementState>,
    note: &str,
) -> Result<(), String> {
    let patch = acknowledgement_patch(id, state, note);
    Api::<OperatorStatus>::all(client.clone())
        .patch(SINGLETON_NAME, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(drop)
        .map_err(|e| refusal(&e))
}

/// Requests a run of an Assessment now: the run-request annotation set to the current time.
pub async fn run_now(client: &kube::Client, name: &str) -> Result<(), String> {
    let patch = json!({"metadata": {"annotations": {RUN_REQUESTED_ANNOTATION: Timestamp::now().to_string()}}});
    Api::<Assessment>::all(client.clone())
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(drop)
        .map_err(|e| refusal(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_acknowledgement_is_a_merge_patch_of_the_spec_and_reopening_removes_it() {
        assert_eq!(
            acknowledgement_patch("ins_1", Some(AcknowledgementState::Acknowledged), "  on it "),
            json!({"spec": {"acknowledgements": {"ins_1": {"state": "acknowledged", "note": "on it"}}}})
        );
        assert_eq!(
            acknowledgement_patch("ins_1", Some(AcknowledgementState::Dismissed), ""),
            json!({"spec": {"acknowledgements": {"ins_1": {"state": "dismissed"}}}})
        );
        assert_eq!(acknowledgement_patch("ins_1", None, "x"), json!({"spec": {"acknowledgements": {"ins_1": null}}}));
        let long = "é".repeat(1500);
        let patch = acknowledgement_patch("a", Some(AcknowledgementState::Acknowledged), &long);
        assert_eq!(patch["spec"]["acknowledgements"]["a"]["note"].as_str().unwrap().chars().count(), 1000);
    }
}
