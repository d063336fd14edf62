//! The HTTPS client for kube9-server's registration endpoint.

use std::time::Duration;

use reqwest::StatusCode;
use serde::{Deserialize, Serialize};

use super::state::{Outcome, ServerSettings};
use crate::base::config::{ApiKey, Config};
use crate::base::metrics::Metrics;

/// What the operator tells kube9-server about the cluster.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterRequest {
    pub operator_version: String,
    pub cluster_identifier: String,
    pub kubernetes_version: String,
    pub approximate_node_count: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RegisterResponse {
    cluster_id: String,
    #[serde(default)]
    configuration: Option<ServerConfiguration>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServerConfiguration {
    status_update_interval_seconds: Option<f64>,
    reregistration_interval_hours: Option<f64>,
    #[serde(default)]
    metrics_enabled: Option<bool>,
    #[serde(default)]
    metrics_interval_seconds: Option<f64>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: Option<String>,
    message: Option<String>,
}

/// An HTTP answer from kube9-server.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<Duration>,
    pub body: Vec<u8>,
}

/// One kind of call to kube9-server, and the most of its answer the operator reads: an answer
/// that says (Content-Length) or turns out to be larger is cut there and treated as unreadable,
/// so whatever answers at the server's URL cannot make the operator outgrow its memory limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// `POST /v1/operator/register`: a cluster id and a few settings.
    Register,
    /// `POST /api/metrics`: the insights (at most a few hundred, about 1 KiB each).
    Metrics,
    /// `POST /api/insights/{id}/acknowledge`: one state.
    Acknowledge,
}

impl Call {
    /// The cap of this call's answer, in bytes.
    pub const fn cap(self) -> usize {
        match self {
            Call::Register | Call::Acknowledge => 64 * 1024,
            Call::Metrics => 4 * 1024 * 1024,
        }
    }

    /// A fixed metric label.
    pub const fn label(self) -> &'static str {
        match self {
            Call::Register => "register",
            Call::Metrics => "metrics",
            Call::Acknowledge => "acknowledge",
        }
    }
}

/// Why a call got no usable answer.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PostError {
    /// No answer: the network, TLS, a timeout (described without the URL).
    #[error("{0}")]
    Transport(String),
    /// The answer passed its call's cap; the rest was not read.
    #[error("answer larger than {cap} bytes (the operator's cap for this call); cut off unread")]
    TooLarge { cap: usize },
}

/// Could not build the client (a TLS setting).
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the kube9-server client: {0}")]
pub struct ClientError(String);

/// Talks to kube9-server with the API key.
#[derive(Clone)]
pub struct ServerClient {
    http: reqwest::Client,
    base: reqwest::Url,
    key: ApiKey,
    metrics: Metrics,
}

impl ServerClient {
    pub fn new(config: &Config, key: ApiKey, metrics: Metrics) -> Result<ServerClient, ClientError> {
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("kube9-operator/", env!("CARGO_PKG_VERSION")))
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout.min(Duration::from_secs(10)))
            .https_only(true)
            .redirect(reqwest::redirect::Policy::none());
        if let Some(pem) = &config.server_ca_pem {
            for cert in reqwest::Certificate::from_pem_bundle(pem).map_err(|e| ClientError(e.to_string()))? {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(|e| ClientError(e.to_string()))?;
        Ok(ServerClient { http, base: config.server_url.clone(), key, metrics })
    }

    /// POSTs a JSON body to a path of kube9-server: the answer (read up to the call's cap), or
    /// why there was none.
    pub async fn post(&self, call: Call, path: &str, body: Vec<u8>) -> Result<Answer, PostError> {
        let url = self.base.join(path).map_err(|e| PostError::Transport(format!("bad server URL: {e}")))?;
        let mut response = self
            .http
            .post(url)
            .bearer_auth(self.key.expose())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| PostError::Transport(describe(&e)))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let body = match read_capped(&mut response, call.cap()).await {
            Err(PostError::TooLarge { cap }) => {
                self.metrics.answer_too_large(call.label());
                tracing::warn!(
                    call = call.label(),
                    cap,
                    status,
                    "kube9-server's answer is larger than the cap; cut off"
                );
                return Err(PostError::TooLarge { cap });
            }
            other => other?,
        };
        Ok(Answer { status, retry_after, body })
    }

    /// One registration attempt; every way it can end is an `Outcome`.
    pub async fn register(&self, request: &RegisterRequest) -> Outcome {
        let body = match serde_json::to_vec(request) {
            Ok(body) => body,
            Err(e) => return Outcome::Malformed { reason: format!("cannot encode the request: {e}") },
        };
        match self.post(Call::Register, "v1/operator/register", body).await {
            Ok(answer) => {
                let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                classify(status, answer.retry_after, &answer.body)
            }
            Err(too_large @ PostError::TooLarge { .. }) => Outcome::Malformed { reason: too_large.to_string() },
            Err(PostError::Transport(reason)) => Outcome::Unreachable { reason },
        }
    }
}

/// Reads a body chunk by chunk, stopping at `cap` bytes: nothing past the cap is held.
async fn read_capped(response: &mut reqwest::Response, cap: usize) -> Result<Vec<u8>, PostError> {
    if response.content_length().is_some_and(|announced| announced > cap as u64) {
        return Err(PostError::TooLarge { cap });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| PostError::Transport(describe(&e)))? {
        if body.len() + chunk.len() > cap {
            return Err(PostError::TooLarge { cap });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Turns an HTTP answer into an outcome.
fn classify(status: StatusCode, retry_after: Option<Duration>, body: &[u8]) -> Outcome {
    match status.as_u16() {
        200 | 201 => match serde_json::from_slice::<RegisterResponse>(body) {
            Ok(answer) if is_cluster_id(&answer.cluster_id) => Outcome::Registered {
                cluster_id: answer.cluster_id,
                settings: answer.configuration.map(settings).unwrap_or_default(),
            },
            Ok(_) => {
                Outcome::Malformed { reason: "clusterId is not cls_ followed by 12 or more letters or digits".into() }
            }
            Err(e) => Outcome::Malformed { reason: format!("invalid JSON: {e}") },
        },
        401 => {
            let code = serde_json::from_slice::<ErrorBody>(body).ok().and_then(|b| b.error);
            Outcome::KeyRejected { code: code.unwrap_or_else(|| "401 Unauthorized".into()) }
        }
        429 => Outcome::RateLimited { retry_after },
        400 => {
            let parsed = serde_json::from_slice::<ErrorBody>(body).ok();
            let message = parsed.and_then(|b| b.message.or(b.error)).unwrap_or_else(|| "no reason given".into());
            Outcome::BadRequest { message }
        }
        other => Outcome::ServerError { status: other },
    }
}

fn settings(config: ServerConfiguration) -> ServerSettings {
    let seconds = |s: f64| (s.is_finite() && s > 0.0).then(|| Duration::from_secs_f64(s.min(1e7)));
    ServerSettings {
        status_update_interval: config.status_update_interval_seconds.and_then(seconds),
        reregistration_interval: config.reregistration_interval_hours.and_then(|h| seconds(h * 3600.0)),
        metrics_enabled: config.metrics_enabled,
        metrics_interval: config.metrics_interval_seconds.and_then(seconds),
    }
}

fn is_cluster_id(id: &str) -> bool {
    id.strip_prefix("cls_").is_some_and(|rest| rest.len() >= 12 && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Retry-After as seconds or an HTTP date.
fn parse_retry_after(value: &str) -> Option<Duration> {
    if let Ok(seconds) = value.trim().parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value.trim()).ok()?;
    Some(when.duration_since(std::time::SystemTime::now()).unwrap_or(Duration::ZERO))
}

/// A network error, described without the URL (and so without anything but the host).
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_request() {
        "request failed"
    } else {
        "transport error"
    };
    let mut detail = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        detail = inner.to_string();
        source = inner.source();
    }
    if detail.is_empty() { kind.to_owned() } else { format!("{kind}: {detail}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_200_with_configuration_registers() {
        let body = br#"{"status":"registered","clusterId":"cls_0123456789ab","tier":"pro",
            "configuration":{"statusUpdateIntervalSeconds":30,"reregistrationIntervalHours":0.5,
            "metricsEnabled":true,"metricsIntervalSeconds":900}}"#;
        let outcome = classify(StatusCode::OK, None, body);
        assert_eq!(
            outcome,
            Outcome::Registered {
                cluster_id: "cls_0123456789ab".into(),
                settings: ServerSettings {
                    status_update_interval: Some(Duration::from_secs(30)),
                    reregistration_interval: Some(Duration::from_secs(1800)),
                    metrics_enabled: Some(true),
                    metrics_interval: Some(Duration::from_secs(900)),
                },
            }
        );
    }

    #[test]
    fn every_http_outcome_is_classified() {
        assert_eq!(
            classify(StatusCode::UNAUTHORIZED, None, br#"{"error":"API_KEY_EXPIRED"}"#),
            Outcome::KeyRejected { code: "API_KEY_EXPIRED".into() }
        );
        assert_eq!(
            classify(StatusCode::UNAUTHORIZED, None, b"nope"),
            Outcome::KeyRejected { code: "401 Unauthorized".into() }
        );
        assert_eq!(
            classify(StatusCode::TOO_MANY_REQUESTS, Some(Duration::from_secs(7)), b""),
            Outcome::RateLimited { retry_after: Some(Duration::from_secs(7)) }
        );
        assert_eq!(
            classify(StatusCode::BAD_REQUEST, None, br#"{"error":"BAD_REQUEST","message":"missing field"}"#),
            Outcome::BadRequest { message: "missing field".into() }
        );
        assert_eq!(classify(StatusCode::SERVICE_UNAVAILABLE, None, b""), Outcome::ServerError { status: 503 });
        assert_eq!(classify(StatusCode::NOT_FOUND, None, b""), Outcome::ServerError { status: 404 });
        assert!(matches!(classify(StatusCode::OK, None, b"{not json"), Outcome::Malformed { .. }));
        assert!(matches!(classify(StatusCode::OK, None, br#"{"clusterId":"abc"}"#), Outcome::Malformed { .. }));
    }

    /// A plain-HTTP server on loopback that answers 200 with `body`, chunked, `times` over
    /// (endless when None), and an optional Content-Length it announces.
    async fn serve(body: &'static [u8], times: Option<usize>, announce: Option<u64>) -> String {
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let _ = rustls::crypto::ring::default_provider().install_default();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 4096];
            let _ = tokio::io::AsyncReadExt::read(&mut socket, &mut request).await;
            let head = match announce {
                Some(n) => format!("HTTP/1.1 200 OK\r\ncontent-length: {n}\r\n\r\n"),
                None => "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_owned(),
            };
            socket.write_all(head.as_bytes()).await.unwrap();
            let mut sent = 0;
            while times.is_none_or(|t| sent < t) {
                let chunk = if announce.is_some() {
                    body.to_vec()
                } else {
                    [format!("{:x}\r\n", body.len()).as_bytes(), body, b"\r\n"].concat()
                };
                if socket.write_all(&chunk).await.is_err() {
                    return;
                }
                sent += 1;
            }
            if announce.is_none() {
                let _ = socket.write_all(b"0\r\n\r\n").await;
            }
        });
        url
    }

    #[tokio::test]
    async fn an_endless_answer_is_cut_at_the_cap() {
        let url = serve(&[b'x'; 1000], None, None).await;
        let mut response = reqwest::get(&url).await.unwrap();
        assert_eq!(read_capped(&mut response, 64 * 1024).await, Err(PostError::TooLarge { cap: 64 * 1024 }));
        assert_eq!(
            PostError::TooLarge { cap: 65536 }.to_string(),
            "answer larger than 65536 bytes (the operator's cap for this call); cut off unread"
        );
    }

    #[tokio::test]
    async fn an_answer_up_to_the_cap_is_read_whole() {
        let url = serve(&[b'y'; 1024], Some(64), None).await;
        let mut response = reqwest::get(&url).await.unwrap();
        assert_eq!(read_capped(&mut response, 64 * 1024).await.unwrap().len(), 64 * 1024);
    }

    #[tokio::test]
    async fn an_announced_length_over_the_cap_is_refused_before_reading() {
        let url = serve(b"z", Some(1), Some(10 * 1024 * 1024)).await;
        let mut response = reqwest::get(&url).await.unwrap();
        assert_eq!(read_capped(&mut response, 1024).await, Err(PostError::TooLarge { cap: 1024 }));
    }

    #[test]
    fn each_call_has_its_cap() {
        assert_eq!(Call::Register.cap(), 65536);
        assert_eq!(Call::Acknowledge.cap(), 65536);
        assert_eq!(Call::Metrics.cap(), 4 * 1024 * 1024);
    }

    #[test]
    fn retry_after_accepts_seconds_and_dates() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn absurd_server_intervals_are_ignored() {
        let s = settings(ServerConfiguration {
            status_update_interval_seconds: Some(-1.0),
            reregistration_interval_hours: Some(f64::NAN),
            metrics_enabled: None,
            metrics_interval_seconds: Some(0.0),
        });
        assert_eq!(s, ServerSettings::default());
    }
}
