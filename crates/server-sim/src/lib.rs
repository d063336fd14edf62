//! A kube9-server simulator: speaks the registration contract and can be told to accept,
//! reject the key, rate-limit, fail, hang or answer garbage. It records every request it
//! receives, bytes and all.
//!
//! For tests and the demo on loopback only: its control endpoints (`/_sim/...`) have no
//! authentication.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// How the simulator answers registrations until told otherwise.
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
            options,
            behavior: Mutex::new(Behavior::Accept),
            requests: Mutex::default(),
            registered: Mutex::default(),
            registrations: Mutex::new(0),
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
            let service = hyper::service::service_fn(move |req| handle(state.clone(), req));
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
    match (method, path.as_str()) {
        (Method::POST, "/v1/operator/register") => Ok(register(&state, &headers, &body).await),
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

async fn register(state: &State, headers: &[(String, String)], body: &[u8]) -> Response<Full<Bytes>> {
    let behavior = state.behavior.lock().map(|b| b.clone()).unwrap_or(Behavior::Accept);
    match behavior {
        Behavior::Accept => {}
        Behavior::RejectKey => return error(StatusCode::UNAUTHORIZED, "INVALID_API_KEY", "the API key is not valid"),
        Behavior::ExpiredKey => return error(StatusCode::UNAUTHORIZED, "API_KEY_EXPIRED", "the API key has expired"),
        Behavior::RateLimit { retry_after_seconds } => {
            let mut response = error(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED", "slow down");
            if let Ok(value) = hyper::header::HeaderValue::from_str(&retry_after_seconds.to_string()) {
                response.headers_mut().insert(hyper::header::RETRY_AFTER, value);
            }
            return response;
        }
        Behavior::ServerError { status } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return error(status, "SERVER_ERROR", "simulated failure");
        }
        Behavior::Hang => std::future::pending::<()>().await,
        Behavior::Malformed => {
            let mut response = Response::new(Full::new(Bytes::from_static(b"{\"status\": \"registered\", oops")));
            response
                .headers_mut()
                .insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json"));
            return response;
        }
        Behavior::BadRequest => return error(StatusCode::BAD_REQUEST, "BAD_REQUEST", "simulated bad request"),
    }
    let key = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        .and_then(|(_, v)| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if state.options.expired_keys.iter().any(|k| k == key) {
        return error(StatusCode::UNAUTHORIZED, "API_KEY_EXPIRED", "the API key has expired");
    }
    if !state.options.api_keys.iter().any(|k| k == key) {
        return error(StatusCode::UNAUTHORIZED, "INVALID_API_KEY", "the API key is not valid");
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
                "metricsEnabled": false,
            },
            "message": if first { "cluster registered" } else { "cluster re-registered" },
        }),
    )
}
