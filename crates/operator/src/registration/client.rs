//! The HTTPS client for kube9-server's registration endpoint.

use std::time::Duration;

use reqwest::StatusCode;
use serde::{Deserialize, Serialize};

use super::state::{Outcome, ServerSettings};
use crate::base::config::{ApiKey, Config};

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
}

impl ServerClient {
    pub fn new(config: &Config, key: ApiKey) -> Result<ServerClient, ClientError> {
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
        Ok(ServerClient { http, base: config.server_url.clone(), key })
    }

    /// POSTs a JSON body to a path of kube9-server: the answer, or why there was none.
    pub async fn post(&self, path: &str, body: Vec<u8>) -> Result<Answer, String> {
        let url = self.base.join(path).map_err(|e| format!("bad server URL: {e}"))?;
        let response = self
            .http
            .post(url)
            .bearer_auth(self.key.expose())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| describe(&e))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let body = response.bytes().await.map_err(|e| describe(&e))?.to_vec();
        Ok(Answer { status, retry_after, body })
    }

    /// One registration attempt; every way it can end is an `Outcome`.
    pub async fn register(&self, request: &RegisterRequest) -> Outcome {
        let body = match serde_json::to_vec(request) {
            Ok(body) => body,
            Err(e) => return Outcome::Malformed { reason: format!("cannot encode the request: {e}") },
        };
        match self.post("v1/operator/register", body).await {
            Ok(answer) => {
                let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                classify(status, answer.retry_after, &answer.body)
            }
            Err(reason) => Outcome::Unreachable { reason },
        }
    }
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
