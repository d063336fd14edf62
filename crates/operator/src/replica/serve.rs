//! The leader's side: its store's snapshot, and the answer to a `query` asked in a standby.
//! Every request must carry the shared token; a replica that does not lead refuses both, so
//! nobody is ever answered from a copy as if from the leader.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use clap::Parser;
use serde::{Deserialize, Serialize};

use super::shared::Replica;

/// A `query` asked in a standby: the words after `query`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Asked {
    pub args: Vec<String>,
}

/// The leader's answer: what its own `query` would print and its exit code.
#[derive(Debug, Serialize, Deserialize)]
pub struct Answer {
    pub code: u8,
    pub stdout: String,
    pub stderr: String,
}

/// The store's commands as `kube9-operator query` takes them.
#[derive(Parser, Debug)]
#[command(name = "query", no_binary_name = true)]
struct Query {
    /// Named by the standby's command line; the leader reads its own directory.
    #[arg(long, global = true)]
    data_dir: Option<std::path::PathBuf>,
    #[command(subcommand)]
    what: kube9_store::cli::What,
}

pub async fn serve(
    listener: tokio::net::TcpListener,
    replica: Arc<Replica>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let app = Router::new()
        .route("/replica/snapshot", get(snapshot))
        .route("/replica/query", post(query))
        .with_state(replica);
    if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
        tracing::error!(error = %e, "the replication endpoint stopped");
    }
}

/// Refuses a request without the token, or to a replica that does not lead.
fn refused(replica: &Replica, headers: &HeaderMap) -> Option<Response> {
    let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    if !replica.settings.token.admits(auth) {
        return Some((StatusCode::UNAUTHORIZED, "the replication token is missing or wrong\n").into_response());
    }
    if !replica.leadership.is_leader() {
        let leader = replica.leadership.leader().unwrap_or_else(|| "unknown".into());
        return Some(
            (StatusCode::CONFLICT, format!("this replica does not lead; the leader is {leader}\n")).into_response(),
        );
    }
    None
}

async fn snapshot(State(replica): State<Arc<Replica>>, headers: HeaderMap) -> Response {
    if let Some(refusal) = refused(&replica, &headers) {
        return refusal;
    }
    let dir = replica.settings.data_dir.clone();
    // Taken before the copy: a write during it changes the fingerprint, so the next pull
    // fetches again rather than missing it.
    let fingerprint = kube9_store::replica::fingerprint(&dir);
    let held = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok());
    if held == Some(fingerprint.as_str()) {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    let out = dir.join(format!("replica-out-{}.db", rand::random::<u64>()));
    let copied = {
        let out = out.clone();
        tokio::task::spawn_blocking(move || {
            kube9_store::replica::snapshot(&dir, &out)?;
            // Unlinked at once: the open file is read to its end whatever becomes of the request.
            let file = std::fs::File::open(&out)
                .map_err(|e| kube9_store::Error::Open { path: out.display().to_string(), why: e.to_string() });
            let _ = std::fs::remove_file(&out);
            file
        })
        .await
    };
    let file = match copied {
        Ok(Ok(file)) => file,
        Ok(Err(e)) => {
            let _ = std::fs::remove_file(&out);
            tracing::warn!(error = %e, "cannot copy the store for a standby");
            return (StatusCode::INTERNAL_SERVER_ERROR, format!("cannot copy the store: {e}\n")).into_response();
        }
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    };
    // Read a chunk at a time off the runtime's threads: a large store is never held in memory.
    let chunks = futures::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let read = tokio::task::spawn_blocking(move || {
            use std::io::Read;
            let mut buf = vec![0u8; 256 * 1024];
            let n = file.read(&mut buf);
            (file, buf, n)
        })
        .await;
        match read {
            Ok((_, _, Ok(0))) => None,
            Ok((file, mut buf, Ok(n))) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(buf), Some(file)))
            }
            Ok((_, _, Err(e))) => Some((Err(e), None)),
            Err(e) => Some((Err(std::io::Error::other(e)), None)),
        }
    });
    let mut response = Body::from_stream(chunks).into_response();
    if let Ok(etag) = fingerprint.parse() {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
}

async fn query(State(replica): State<Arc<Replica>>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if let Some(refusal) = refused(&replica, &headers) {
        return refusal;
    }
    let answer = match serde_json::from_slice::<Asked>(&body) {
        Ok(asked) => {
            let dir = replica.settings.data_dir.clone();
            tokio::task::spawn_blocking(move || answer(&dir, &asked.args)).await.unwrap_or_else(|e| Answer {
                code: 1,
                stdout: String::new(),
                stderr: kube9_store::cli::failure(1, "leader-error", &e.to_string()).stderr,
            })
        }
        Err(e) => return (StatusCode::BAD_REQUEST, format!("not a query: {e}\n")).into_response(),
    };
    match serde_json::to_vec(&answer) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

/// Runs the query on this replica's own store, as `kube9-operator query` would.
pub fn answer(dir: &std::path::Path, args: &[String]) -> Answer {
    let outcome = match Query::try_parse_from(args) {
        Ok(query) => {
            kube9_store::cli::run(&kube9_store::cli::Args { data_dir: Some(dir.to_owned()), what: query.what })
        }
        Err(e) => {
            let rendered = e.render().to_string();
            let message = rendered.lines().next().unwrap_or_default().trim_start_matches("error: ").to_owned();
            kube9_store::cli::failure(2, "bad-flag", &message)
        }
    };
    Answer { code: outcome.code, stdout: outcome.stdout, stderr: outcome.stderr }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::leadership::Leadership;
    use crate::replica::settings::{Settings, Token};

    async fn serving(dir: &std::path::Path, leadership: Leadership) -> String {
        let replica = Arc::new(Replica {
            settings: Settings {
                listen: "127.0.0.1:0".parse().unwrap(),
                url: String::new(),
                token: Token::new("0123456789abcdef-token"),
                token_file: std::path::PathBuf::new(),
                data_dir: dir.to_owned(),
            },
            leadership,
            limits: kube9_store::Limits::default(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(serve(listener, replica, std::future::pending()));
        url
    }

    #[tokio::test]
    async fn only_the_token_opens_the_store_and_only_the_leader_serves_it() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = std::env::temp_dir().join(format!("kube9-serve-{}-{}", std::process::id(), rand::random::<u32>()));
        let mut store = kube9_store::Store::open(&dir, kube9_store::Limits::default()).unwrap();
        let status = kube9_store::Write::Status { json: r#"{"mode":"operated"}"#.into(), at_ms: 1_800_000_000_000 };
        store.write(&[status]).unwrap();
        let url = serving(&dir, Leadership::alone("pod-a".into())).await;
        let http = reqwest::Client::new();
        let auth = Token::new("0123456789abcdef-token").header();

        for header in [None, Some("Bearer 0123456789abcdef-tokem"), Some("0123456789abcdef-token")] {
            let mut request = http.get(format!("{url}/replica/snapshot"));
            if let Some(h) = header {
                request = request.header(reqwest::header::AUTHORIZATION, h);
            }
            assert_eq!(request.send().await.unwrap().status(), 401, "{header:?}");
            let mut request = http.post(format!("{url}/replica/query")).body(r#"{"args":["status"]}"#);
            if let Some(h) = header {
                request = request.header(reqwest::header::AUTHORIZATION, h);
            }
            assert_eq!(request.send().await.unwrap().status(), 401, "{header:?}");
        }

        let response = http
            .get(format!("{url}/replica/snapshot"))
            .header(reqwest::header::AUTHORIZATION, &auth)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let etag = response.headers()[reqwest::header::ETAG].to_str().unwrap().to_owned();
        let body = response.bytes().await.unwrap();
        assert!(body.starts_with(b"SQLite format 3\0"), "a database file");
        let unchanged = http
            .get(format!("{url}/replica/snapshot"))
            .header(reqwest::header::AUTHORIZATION, &auth)
            .header(reqwest::header::IF_NONE_MATCH, &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(unchanged.status(), 304, "nothing written since: nothing sent");

        // A query asked in a standby: the leader's own answer, word for word.
        for args in [vec!["status"], vec!["events", "list", "--limit=25", "--format=json"], vec!["nonsense"]] {
            let asked = Asked { args: args.iter().map(|a| a.to_string()).collect() };
            let response = http
                .post(format!("{url}/replica/query"))
                .header(reqwest::header::AUTHORIZATION, &auth)
                .body(serde_json::to_vec(&asked).unwrap())
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            let remote: Answer = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
            let local = answer(&dir, &asked.args);
            assert_eq!((remote.code, &remote.stdout, &remote.stderr), (local.code, &local.stdout, &local.stderr));
            if args == ["nonsense"] {
                assert_eq!(remote.code, 2, "a bad word is refused as the local command refuses it");
            } else {
                assert_eq!(remote.code, 0, "{}", remote.stderr);
            }
        }

        // A replica that does not lead refuses, even with the token: never an answer from a copy.
        let (standby, _role) = Leadership::new("pod-b".into());
        let other = serving(&dir, standby).await;
        let refused = http
            .get(format!("{other}/replica/snapshot"))
            .header(reqwest::header::AUTHORIZATION, &auth)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 409);
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
