//! The operator's store, read as the VS Code extension reads it: `kube9-operator query …
//! --format=json` exec'd into the first Running operator Pod whose `operator` container is
//! ready, in name order (every replica answers as the leader does), under the UI's identity.
//! With `--data-dir` the same command runs on this machine against that directory instead.

use std::path::PathBuf;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams, ListParams};
use serde_json::Value;
use tokio::io::AsyncReadExt;

use crate::cluster::refusal;

/// The most a query's answer may hold (a page of findings is far smaller).
const MAX_ANSWER: u64 = 32 << 20;

/// The label the operator's Pods carry (the extension finds them by it).
const POD_SELECTOR: &str = "app.kubernetes.io/name=kube9-operator";

/// How a query reaches the operator.
#[derive(Clone, Debug)]
pub enum Transport {
    /// Exec into the operator's Pod through the API server.
    Exec,
    /// Run this binary's `query` against a local data directory.
    Local { data_dir: PathBuf },
}

/// Runs `kube9-operator query <words> --format=json` in the operator of `namespace` and parses
/// its one JSON document; a failure is the operator's own `message` or the API server's refusal.
pub async fn query(
    client: &kube::Client,
    transport: &Transport,
    namespace: &str,
    words: &[String],
) -> Result<Value, String> {
    let mut argv = vec!["kube9-operator".to_owned(), "query".to_owned()];
    argv.extend(words.iter().cloned());
    argv.push("--format=json".to_owned());
    let (stdout, stderr) = match transport {
        Transport::Exec => exec(client, namespace, argv).await?,
        Transport::Local { data_dir } => local(data_dir, &argv[1..]).await?,
    };
    parse_answer(&stdout, &stderr)
}

/// The answer's document, or the error document's message (the extension's contract: one JSON
/// document on stdout; `{"ok":false,"code","message"}` on stderr on failure).
pub fn parse_answer(stdout: &[u8], stderr: &[u8]) -> Result<Value, String> {
    if let Ok(doc) = serde_json::from_slice::<Value>(stdout)
        && doc.is_object()
    {
        return Ok(doc);
    }
    let text = String::from_utf8_lossy(stderr);
    for line in text.lines().rev() {
        if let Ok(doc) = serde_json::from_str::<Value>(line)
            && let Some(message) = doc.get("message").and_then(Value::as_str)
        {
            return Err(format!("the operator answered: {message}"));
        }
    }
    let shown: String = text.trim().chars().take(500).collect();
    Err(if shown.is_empty() {
        "the operator's query gave no answer".to_owned()
    } else {
        format!("the operator's query failed: {shown}")
    })
}

/// The first Running operator Pod with a ready `operator` container, by name.
pub async fn operator_pod(client: &kube::Client, namespace: &str) -> Result<String, String> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let list = pods.list(&ListParams::default().labels(POD_SELECTOR)).await.map_err(|e| refusal(&e))?;
    let mut ready: Vec<String> = list
        .items
        .iter()
        .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
        .filter(|p| {
            p.status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.name == "operator" && c.ready))
        })
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    ready.sort();
    ready.into_iter().next().ok_or_else(|| {
        format!("no Running operator Pod with a ready `operator` container in namespace {namespace}: the operator's store cannot be read")
    })
}

async fn exec(client: &kube::Client, namespace: &str, argv: Vec<String>) -> Result<(Vec<u8>, Vec<u8>), String> {
    let pod = operator_pod(client, namespace).await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let params = AttachParams::default().container("operator").stdin(false).stdout(true).stderr(true);
    let mut attached = pods.exec(&pod, argv, &params).await.map_err(|e| refusal(&e))?;
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let stdout = attached.stdout().ok_or("the exec has no stdout")?;
    let stderr = attached.stderr().ok_or("the exec has no stderr")?;
    let read_out = tokio_util_read(stdout, &mut out);
    let read_err = tokio_util_read(stderr, &mut err);
    let (a, b) = tokio::join!(read_out, read_err);
    a.and(b).map_err(|e| format!("reading the answer from Pod {pod}: {e}"))?;
    let _ = attached.join().await;
    Ok((out, err))
}

async fn tokio_util_read<R: tokio::io::AsyncRead + Unpin>(reader: R, into: &mut Vec<u8>) -> std::io::Result<()> {
    reader.take(MAX_ANSWER).read_to_end(into).await.map(drop)
}

async fn local(data_dir: &std::path::Path, words: &[String]) -> Result<(Vec<u8>, Vec<u8>), String> {
    let exe = std::env::current_exe().map_err(|e| format!("finding this program: {e}"))?;
    let out = tokio::process::Command::new(exe)
        .args(words)
        .arg("--data-dir")
        .arg(data_dir)
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("running the query: {e}"))?;
    Ok((out.stdout, out.stderr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_the_document_and_a_failure_its_message() {
        assert_eq!(parse_answer(br#"{"events": []}"#, b"").unwrap()["events"], serde_json::json!([]));
        let failed =
            parse_answer(b"", b"{\"ok\": false, \"code\": \"unknown-assessment\", \"message\": \"no Assessment x\"}\n");
        assert_eq!(failed.unwrap_err(), "the operator answered: no Assessment x");
        assert!(parse_answer(b"", b"sh: kube9-operator: not found").unwrap_err().contains("not found"));
        assert_eq!(parse_answer(b"", b"").unwrap_err(), "the operator's query gave no answer");
    }
}
