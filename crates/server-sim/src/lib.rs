//! A kube9-server simulator: speaks the registration and pro-tier contracts (metrics uploads
//! answered with rule-made insights, acknowledgements; see `docs/pro-tier.md`) and can be told
//! to accept, reject the key, rate-limit, fail, hang or answer garbage. It records every
//! request it receives, bytes and all.
//!
//! For tests and the demo on loopback only: its control endpoints (`/_sim/...`) have no
//! authentication.

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Either, Full, StreamBody};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// How the simulator answers the API endpoints (registration, metrics, acknowledgements)
/// until told otherwise.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Behavior {
    /// 200 for a configured key; 401 for any other.
    Accept,
    /// 401 INVALID_API_KEY for every key.
    RejectKey,
    /// 401 API_KEY_EXPIRED for every key.
    ExpiredKey,
    /// 429 with `Retry-After`.
    #[serde(rename_all = "camelCase")]
    RateLimit { retry_after_seconds: u64 },
    /// The given 5xx status.
    ServerError { status: u16 },
    /// Accept the connection and never answer.
    Hang,
    /// 200 with a body that is not JSON.
    Malformed,
    /// 400.
    BadRequest,
    /// 200 with a body that never ends (64 KiB chunks, as fast as the client reads), on every
    /// endpoint: what a client that reads answers without a bound would choke on.
    Endless,
}

/// A serving certificate and the CA that signed it, reusable so a restarted simulator is
/// trusted by clients of the one before.
#[derive(Clone)]
pub struct TlsIdentity {
    config: Arc<rustls::ServerConfig>,
    ca_pem: String,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsIdentity")
    }
}

/// Start-up options.
#[derive(Clone, Debug)]
pub struct Options {
    pub listen: SocketAddr,
    pub tls: bool,
    /// With `tls`: serve this identity instead of generating one.
    pub tls_identity: Option<TlsIdentity>,
    pub api_keys: Vec<String>,
    pub expired_keys: Vec<String>,
    pub status_update_interval_seconds: u64,
    pub reregistration_interval_hours: f64,
    /// `configuration.metricsIntervalSeconds` in registration answers.
    pub metrics_interval_seconds: u64,
    /// Start with the unmappable insight on (see [`Simulator::set_unmappable`]).
    pub extra_unmappable_insight: bool,
    /// Appended to every insight's text, as a server that sends markup would (the UI tests
    /// send HTML and script and check that it shows as text).
    pub insight_text_suffix: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls: false,
            tls_identity: None,
            api_keys: Vec::new(),
            expired_keys: Vec::new(),
            status_update_interval_seconds: 60,
            reregistration_interval_hours: 24.0,
            metrics_interval_seconds: 3600,
            extra_unmappable_insight: false,
            insight_text_suffix: String::new(),
        }
    }
}

/// One request as received.
#[derive(Clone, Debug, Serialize)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    #[serde(serialize_with = "lossy")]
    pub body: Vec<u8>,
    pub at: SystemTime,
}

fn lossy<S: serde::Serializer>(body: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(body))
}

/// One acknowledgement as received (unknown ids included).
#[derive(Clone, Debug, Serialize)]
pub struct RecordedAck {
    pub id: String,
    /// `acknowledged` or `dismissed`.
    pub state: String,
    pub note: Option<String>,
    #[serde(serialize_with = "rfc3339_ser")]
    pub at: SystemTime,
    /// Whether the simulator knew the id (false: answered 404).
    pub found: bool,
}

fn rfc3339_ser<S: serde::Serializer>(at: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*at))
}

/// `2026-11-23T10:00:00Z`: RFC 3339, UTC, whole seconds.
fn rfc3339(at: SystemTime) -> String {
    jiff::Timestamp::try_from(at).map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()).unwrap_or_default()
}

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error("cannot make a TLS certificate: {0}")]
    Certificate(String),
}

struct State {
    options: Options,
    behavior: Mutex<Behavior>,
    requests: Mutex<Vec<RecordedRequest>>,
    registered: Mutex<BTreeSet<String>>,
    registrations: Mutex<usize>,
    unmappable: Mutex<bool>,
    /// Every insight ever generated, by id, with its current status.
    insights: Mutex<BTreeMap<String, Insight>>,
    acks: Mutex<Vec<RecordedAck>>,
    metrics_uploads: Mutex<usize>,
}

/// A running simulator; stopped by [`Simulator::shutdown`] or when dropped.
pub struct Simulator {
    url: String,
    identity: Option<TlsIdentity>,
    state: Arc<State>,
    server: tokio::task::JoinHandle<()>,
}

impl Simulator {
    pub async fn start(options: Options) -> Result<Simulator, Error> {
        let listener = TcpListener::bind(options.listen).await.map_err(|e| Error::Bind(options.listen, e))?;
        let addr = listener.local_addr().map_err(|e| Error::Bind(options.listen, e))?;
        let identity = match (&options.tls_identity, options.tls) {
            (_, false) => None,
            (Some(identity), true) => Some(identity.clone()),
            (None, true) => {
                let (config, ca_pem) = tls_config().map_err(Error::Certificate)?;
                Some(TlsIdentity { config: Arc::new(config), ca_pem })
            }
        };
        let acceptor = identity.as_ref().map(|i| tokio_rustls::TlsAcceptor::from(i.config.clone()));
        let scheme = if options.tls { "https" } else { "http" };
        let state = Arc::new(State {
            unmappable: Mutex::new(options.extra_unmappable_insight),
            options,
            behavior: Mutex::new(Behavior::Accept),
            requests: Mutex::default(),
            registered: Mutex::default(),
            registrations: Mutex::new(0),
            insights: Mutex::default(),
            acks: Mutex::default(),
            metrics_uploads: Mutex::new(0),
        });
        let server = tokio::spawn(accept_loop(listener, acceptor, state.clone()));
        Ok(Simulator { url: format!("{scheme}://{addr}"), identity, state, server })
    }

    /// `https://127.0.0.1:PORT` (or `http://` without TLS).
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The CA certificate (PEM) that signed the serving certificate, when TLS is on.
    pub fn ca_pem(&self) -> Option<String> {
        self.identity.as_ref().map(|i| i.ca_pem.clone())
    }

    /// The TLS identity, to start another simulator that the same clients trust.
    pub fn tls_identity(&self) -> Option<TlsIdentity> {
        self.identity.clone()
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.url.rsplit("://").next().and_then(|a| a.parse().ok()).unwrap_or(self.state.options.listen)
    }

    pub fn set_behavior(&self, behavior: Behavior) {
        if let Ok(mut b) = self.state.behavior.lock() {
            *b = behavior;
        }
    }

    /// Every request received (control endpoints aside), in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// How many registrations were answered with 200.
    pub fn registrations(&self) -> usize {
        self.state.registrations.lock().map(|n| *n).unwrap_or(0)
    }

    /// When on, every metrics answer also carries an insight about
    /// `Deployment namespace-000000/deployment-000000`, an object no operator sent.
    pub fn set_unmappable(&self, on: bool) {
        if let Ok(mut u) = self.state.unmappable.lock() {
            *u = on;
        }
    }

    /// Every acknowledgement received (404s included), in order.
    pub fn acknowledgements(&self) -> Vec<RecordedAck> {
        self.state.acks.lock().map(|a| a.clone()).unwrap_or_default()
    }

    /// How many metrics uploads were answered with 200.
    pub fn metrics_uploads(&self) -> usize {
        self.state.metrics_uploads.lock().map(|n| *n).unwrap_or(0)
    }

    /// Every insight generated so far, in its current state, ordered by id.
    pub fn insights(&self) -> Vec<serde_json::Value> {
        all_insights(&self.state)
    }

    pub async fn shutdown(self) {
        self.server.abort();
        let _ = (&mut { self }.server).await;
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A CA and a serving certificate for 127.0.0.1 and localhost signed by it.
fn tls_config() -> Result<(rustls::ServerConfig, String), String> {
    let err = |e: rcgen::Error| e.to_string();
    let ca_key = rcgen::KeyPair::generate().map_err(err)?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "kube9-server-sim CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).map_err(err)?;
    let leaf_key = rcgen::KeyPair::generate().map_err(err)?;
    let leaf_params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).map_err(err)?;
    let leaf = leaf_params.signed_by(&leaf_key, &ca).map_err(err)?;
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], key)
        .map_err(|e| e.to_string())?;
    Ok((config, ca.pem()))
}

async fn accept_loop(listener: TcpListener, acceptor: Option<tokio_rustls::TlsAcceptor>, state: Arc<State>) {
    // Connections live in this set, so aborting the loop ends them too (hung ones included).
    let mut connections = JoinSet::new();
    loop {
        let Ok((tcp, _)) = listener.accept().await else { continue };
        let state = state.clone();
        let acceptor = acceptor.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let state = state.clone();
                async move {
                    let endless = state.behavior.lock().is_ok_and(|b| *b == Behavior::Endless);
                    if endless && !req.uri().path().starts_with("/_sim/") {
                        return Ok::<_, Infallible>(endless_answer());
                    }
                    handle(state, req).await.map(|response| response.map(Either::Left))
                }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            match acceptor {
                Some(acceptor) => {
                    let Ok(tls) = acceptor.accept(tcp).await else { return };
                    let _ = builder.serve_connection(TokioIo::new(tls), service).await;
                }
                None => {
                    let _ = builder.serve_connection(TokioIo::new(tcp), service).await;
                }
            }
        });
        while connections.try_join_next().is_some() {}
    }
}

/// A body that is either whole or an endless stream.
type Answer = Response<Either<Full<Bytes>, StreamBody<futures::stream::RepeatWith<fn() -> FrameResult>>>>;
type FrameResult = Result<hyper::body::Frame<Bytes>, Infallible>;

/// `200 OK` and then spaces, forever.
fn endless_answer() -> Answer {
    static CHUNK: [u8; 65536] = [b' '; 65536];
    let frames: fn() -> FrameResult = || Ok(hyper::body::Frame::data(Bytes::from_static(&CHUNK)));
    let mut response = Response::new(Either::Right(StreamBody::new(futures::stream::repeat_with(frames))));
    response
        .headers_mut()
        .insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json"));
    response
}

fn json(status: StatusCode, body: serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json"));
    response
}

fn error(status: StatusCode, code: &str, message: &str) -> Response<Full<Bytes>> {
    json(status, serde_json::json!({"error": code, "message": message}))
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let body = req.into_body().collect().await.map(|b| b.to_bytes().to_vec()).unwrap_or_default();

    if let Some(control) = path.strip_prefix("/_sim/") {
        return Ok(self_control(&state, &method, control, &body));
    }
    tracing::info!(%method, %path, bytes = body.len(), "request");
    if let Ok(mut requests) = state.requests.lock() {
        requests.push(RecordedRequest {
            method: method.to_string(),
            path: path.clone(),
            headers: headers.clone(),
            body: body.clone(),
            at: SystemTime::now(),
        });
    }
    let ack = path.strip_prefix("/api/insights/").and_then(|p| p.strip_suffix("/acknowledge"));
    let ack = ack.filter(|id| !id.is_empty() && !id.contains('/'));
    match (method, path.as_str(), ack) {
        (Method::POST, "/v1/operator/register", _) => Ok(register(&state, &headers, &body).await),
        (Method::POST, "/api/metrics", _) => Ok(metrics(&state, &headers, &body).await),
        (Method::POST, _, Some(id)) => Ok(acknowledge(&state, &headers, id, &body).await),
        _ => Ok(error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such endpoint")),
    }
}

fn self_control(state: &State, method: &Method, path: &str, body: &[u8]) -> Response<Full<Bytes>> {
    match (method, path) {
        (&Method::GET, "health") => json(StatusCode::OK, serde_json::json!({"ok": true})),
        (&Method::GET, "requests") => {
            let requests = state.requests.lock().map(|r| r.clone()).unwrap_or_default();
            json(StatusCode::OK, serde_json::to_value(requests).unwrap_or_default())
        }
        (&Method::GET, "insights") => json(StatusCode::OK, serde_json::Value::from(all_insights(state))),
        (&Method::GET, "acknowledgements") => {
            let acks = state.acks.lock().map(|a| a.clone()).unwrap_or_default();
            json(StatusCode::OK, serde_json::to_value(acks).unwrap_or_default())
        }
        (&Method::PUT, "unmappable") => match serde_json::from_slice::<bool>(body) {
            Ok(on) => {
                if let Ok(mut u) = state.unmappable.lock() {
                    *u = on;
                }
                json(StatusCode::OK, serde_json::Value::Bool(on))
            }
            Err(e) => error(StatusCode::BAD_REQUEST, "BAD_REQUEST", &e.to_string()),
        },
        (&Method::PUT, "behavior") => match serde_json::from_slice::<Behavior>(body) {
            Ok(behavior) => {
                if let Ok(mut b) = state.behavior.lock() {
                    *b = behavior.clone();
                }
                json(StatusCode::OK, serde_json::to_value(behavior).unwrap_or_default())
            }
            Err(e) => error(StatusCode::BAD_REQUEST, "BAD_REQUEST", &e.to_string()),
        },
        _ => error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such control endpoint"),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // The fields are read only to check that they are there.
struct RegisterBody {
    operator_version: String,
    cluster_identifier: String,
    kubernetes_version: String,
    approximate_node_count: u64,
}

/// What every API endpoint does first: misbehave as told, else check the Bearer key. `None`:
/// go on and answer.
async fn gate(state: &State, headers: &[(String, String)]) -> Option<Response<Full<Bytes>>> {
    let behavior = state.behavior.lock().map(|b| b.clone()).unwrap_or(Behavior::Accept);
    Some(match behavior {
        Behavior::Accept => return check_key(state, headers),
        Behavior::RejectKey => error(StatusCode::UNAUTHORIZED, "INVALID_API_KEY", "the API key is not valid"),
        Behavior::ExpiredKey => error(StatusCode::UNAUTHORIZED, "API_KEY_EXPIRED", "the API key has expired"),
        Behavior::RateLimit { retry_after_seconds } => {
            let mut response = error(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED", "slow down");
            if let Ok(value) = hyper::header::HeaderValue::from_str(&retry_after_seconds.to_string()) {
                response.headers_mut().insert(hyper::header::RETRY_AFTER, value);
            }
            response
        }
        Behavior::ServerError { status } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            error(status, "SERVER_ERROR", "simulated failure")
        }
        Behavior::Hang => std::future::pending().await,
        Behavior::Malformed => {
            let mut response = Response::new(Full::new(Bytes::from_static(b"{\"status\": \"registered\", oops")));
            response
                .headers_mut()
                .insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json"));
            response
        }
        Behavior::BadRequest => error(StatusCode::BAD_REQUEST, "BAD_REQUEST", "simulated bad request"),
        // Answered before `gate` is reached (see the service); kept for completeness.
        Behavior::Endless => error(StatusCode::OK, "ENDLESS", "an endless answer"),
    })
}

/// 401 unless the Bearer key is one of the configured (and not expired) keys.
fn check_key(state: &State, headers: &[(String, String)]) -> Option<Response<Full<Bytes>>> {
    let key = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        .and_then(|(_, v)| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if state.options.expired_keys.iter().any(|k| k == key) {
        return Some(error(StatusCode::UNAUTHORIZED, "API_KEY_EXPIRED", "the API key has expired"));
    }
    if !state.options.api_keys.iter().any(|k| k == key) {
        return Some(error(StatusCode::UNAUTHORIZED, "INVALID_API_KEY", "the API key is not valid"));
    }
    None
}

async fn register(state: &State, headers: &[(String, String)], body: &[u8]) -> Response<Full<Bytes>> {
    if let Some(response) = gate(state, headers).await {
        return response;
    }
    let request: RegisterBody = match serde_json::from_slice(body) {
        Ok(request) => request,
        Err(e) => return error(StatusCode::BAD_REQUEST, "BAD_REQUEST", &e.to_string()),
    };
    let id = &request.cluster_identifier;
    let first = state.registered.lock().map(|mut r| r.insert(id.clone())).unwrap_or(true);
    if let Ok(mut n) = state.registrations.lock() {
        *n += 1;
    }
    let cluster_id = format!("cls_{}", &hex::encode(Sha256::digest(id.as_bytes()))[..16]);
    json(
        StatusCode::OK,
        serde_json::json!({
            "status": if first { "registered" } else { "reregistered" },
            "clusterId": cluster_id,
            "tier": "pro",
            "configuration": {
                "statusUpdateIntervalSeconds": state.options.status_update_interval_seconds,
                "reregistrationIntervalHours": state.options.reregistration_interval_hours,
                "metricsEnabled": true,
                "metricsIntervalSeconds": state.options.metrics_interval_seconds,
            },
            "message": if first { "cluster registered" } else { "cluster re-registered" },
        }),
    )
}

/// `POST /api/metrics`. Only the fields the simulator needs are read; the rest are checked to
/// be there.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct MetricsBody {
    cluster_id: String,
    operator_version: String,
    sent_at: String,
    collections: Vec<Collection>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Collection {
    #[serde(rename = "type")]
    kind: String,
    collected_at: String,
    data: serde_json::Value,
}

/// `data` of a `configurationPatterns` collection.
#[derive(Deserialize)]
struct ConfigurationPatterns {
    workloads: Vec<Workload>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Workload {
    #[serde(flatten)]
    object: ObjectRef,
    replicas: Option<u64>,
    resource_limits: Option<bool>,
}

/// An object reference as in collected data (`namespace` absent when cluster-scoped).
#[derive(Clone, Deserialize, Serialize)]
struct ObjectRef {
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    namespace: Option<String>,
    name: String,
}

/// What a rule found about a workload.
#[derive(Clone)]
struct Finding {
    kind: &'static str,
    severity: &'static str,
    title: &'static str,
    text: String,
    recommendation: &'static str,
    confidence: f64,
}

/// An insight as the simulator keeps it.
#[derive(Clone)]
struct Insight {
    id: String,
    object: ObjectRef,
    finding: Finding,
    /// `active`, `acknowledged` or `dismissed`.
    status: &'static str,
    acknowledged_at: Option<SystemTime>,
    created_at: SystemTime,
}

/// How long an insight is valid after it was made.
const INSIGHT_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

impl Insight {
    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "object": self.object,
            "type": self.finding.kind,
            "severity": self.finding.severity,
            "title": self.finding.title,
            "text": self.finding.text,
            "recommendation": self.finding.recommendation,
            "status": self.status,
            "acknowledgedAt": self.acknowledged_at.map(rfc3339),
            "createdAt": rfc3339(self.created_at),
            "expiresAt": rfc3339(self.created_at + INSIGHT_LIFETIME),
            "confidence": self.finding.confidence,
            "generationMethod": "rules",
        })
    }
}

fn all_insights(state: &State) -> Vec<serde_json::Value> {
    state.insights.lock().map(|m| m.values().map(Insight::to_json).collect()).unwrap_or_default()
}

/// The rules: missing memory limits, and a single replica of a Deployment or StatefulSet.
fn findings(w: &Workload) -> Vec<Finding> {
    let o = &w.object;
    let subject = match &o.namespace {
        Some(ns) => format!("{} {} in {ns}", o.kind, o.name),
        None => format!("{} {}", o.kind, o.name),
    };
    let mut found = Vec::new();
    if w.resource_limits == Some(false) {
        found.push(Finding {
            kind: "missing-resource-limits",
            severity: "high",
            title: "Containers without memory limits",
            text: format!("{subject} has containers without memory limits."),
            recommendation: "Set resources.limits.memory on every container.",
            confidence: 0.9,
        });
    }
    if w.replicas == Some(1) && matches!(o.kind.as_str(), "Deployment" | "StatefulSet") {
        found.push(Finding {
            kind: "single-replica",
            severity: "medium",
            title: "Single replica",
            text: format!("{subject} runs one replica; a node failure stops it."),
            recommendation: "Run at least two replicas with a PodDisruptionBudget.",
            confidence: 0.75,
        });
    }
    found
}

/// `ins_` and 16 hex of sha256(`clusterId/type/kind/namespace/name`).
fn insight_id(cluster_id: &str, kind: &str, o: &ObjectRef) -> String {
    let namespace = o.namespace.as_deref().unwrap_or_default();
    let digest = Sha256::digest(format!("{cluster_id}/{kind}/{}/{namespace}/{}", o.kind, o.name).as_bytes());
    format!("ins_{}", &hex::encode(digest)[..16])
}

fn bad_request(message: &str) -> Response<Full<Bytes>> {
    error(StatusCode::BAD_REQUEST, "BAD_REQUEST", message)
}

async fn metrics(state: &State, headers: &[(String, String)], body: &[u8]) -> Response<Full<Bytes>> {
    if let Some(response) = gate(state, headers).await {
        return response;
    }
    let upload: MetricsBody = match serde_json::from_slice(body) {
        Ok(upload) => upload,
        Err(e) => return bad_request(&e.to_string()),
    };
    if upload.sent_at.parse::<jiff::Timestamp>().is_err() {
        return bad_request("sentAt is not an RFC 3339 time");
    }
    let mut workloads = Vec::new();
    for (i, collection) in upload.collections.into_iter().enumerate() {
        if collection.collected_at.parse::<jiff::Timestamp>().is_err() {
            return bad_request(&format!("collections[{i}].collectedAt is not an RFC 3339 time"));
        }
        if collection.kind == "configurationPatterns" {
            match serde_json::from_value::<ConfigurationPatterns>(collection.data) {
                Ok(patterns) => workloads.extend(patterns.workloads),
                Err(e) => return bad_request(&format!("collections[{i}].data: {e}")),
            }
        }
    }
    if state.unmappable.lock().map(|u| *u).unwrap_or(false) {
        workloads.push(Workload {
            object: ObjectRef {
                kind: "Deployment".into(),
                namespace: Some("namespace-000000".into()),
                name: "deployment-000000".into(),
            },
            replicas: Some(1),
            resource_limits: Some(true),
        });
    }
    let now = SystemTime::now();
    let mut answer = BTreeMap::new();
    if let Ok(mut insights) = state.insights.lock() {
        for workload in &workloads {
            for mut finding in findings(workload) {
                finding.text.push_str(&state.options.insight_text_suffix);
                let id = insight_id(&upload.cluster_id, finding.kind, &workload.object);
                let insight = insights.entry(id.clone()).or_insert_with(|| Insight {
                    id: id.clone(),
                    object: workload.object.clone(),
                    finding,
                    status: "active",
                    acknowledged_at: None,
                    created_at: now,
                });
                answer.insert(id, insight.to_json());
            }
        }
    }
    if let Ok(mut n) = state.metrics_uploads.lock() {
        *n += 1;
    }
    json(StatusCode::OK, serde_json::json!({"insights": answer.into_values().collect::<Vec<_>>()}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AckBody {
    state: AckState,
    note: Option<String>,
}

#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase")]
enum AckState {
    Acknowledged,
    Dismissed,
}

impl AckState {
    fn as_str(self) -> &'static str {
        match self {
            AckState::Acknowledged => "acknowledged",
            AckState::Dismissed => "dismissed",
        }
    }
}

async fn acknowledge(state: &State, headers: &[(String, String)], id: &str, body: &[u8]) -> Response<Full<Bytes>> {
    if let Some(response) = gate(state, headers).await {
        return response;
    }
    let ack: AckBody = match serde_json::from_slice(body) {
        Ok(ack) => ack,
        Err(e) => return bad_request(&e.to_string()),
    };
    let at = SystemTime::now();
    let found = state
        .insights
        .lock()
        .ok()
        .and_then(|mut insights| {
            insights.get_mut(id).map(|insight| {
                insight.status = ack.state.as_str();
                insight.acknowledged_at = Some(at);
            })
        })
        .is_some();
    if let Ok(mut acks) = state.acks.lock() {
        acks.push(RecordedAck { id: id.to_owned(), state: ack.state.as_str().to_owned(), note: ack.note, at, found });
    }
    if !found {
        return error(StatusCode::NOT_FOUND, "INSIGHT_NOT_FOUND", "no insight with this id");
    }
    json(StatusCode::OK, serde_json::json!({"id": id, "status": ack.state.as_str(), "acknowledgedAt": rfc3339(at)}))
}
