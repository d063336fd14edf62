//! The HTTP server: the routes, the headers every answer carries, the POST checks, and the
//! server-sent events of live updates. Each handler reads what its page needs (under the UI's
//! identity) and hands plain values to `pages`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use futures::{Stream, StreamExt};
use kube9_api::operator_status::{AcknowledgementState, OperatorStatus};
use maud::{Markup, html};
use tokio::sync::watch;

use crate::args::Args;
use crate::cluster::{self, Cluster};
use crate::pages::{self, Frame};
use crate::security;
use crate::store::{self, Transport};

/// How long one cluster may take to answer the fleet page.
const FLEET_TIMEOUT: Duration = Duration::from_secs(5);

struct Shown {
    name: String,
    client: Result<kube::Client, String>,
    live: Option<watch::Receiver<u64>>,
}

struct Ui {
    clusters: Vec<Shown>,
    /// The `--allowed-host` names ([`security::host_allowed`]).
    allowed_hosts: Vec<String>,
    token: String,
    read_only: bool,
    transport: Transport,
    operator_namespace: String,
}

type Shared = Arc<Ui>;

/// Serves the UI until SIGTERM or Ctrl-C. Prints the URL on stdout once it listens.
pub async fn run(args: Args) -> Result<()> {
    if security::needs_allow_remote(&args.address) {
        if !args.allow_remote {
            bail!(
                "{} is not a loopback address: anyone who reaches it acts with this process's Kubernetes identity; \
                 pass --allow-remote to listen there anyway",
                args.address
            );
        }
        tracing::warn!(address = %args.address, "listening beyond loopback: whoever reaches this address acts with this process's identity");
    }
    let connected = cluster::connect(&args.contexts, args.all_contexts).await?;
    if connected.is_empty() {
        bail!("the kubeconfig has no context to show");
    }
    let clusters = connected
        .into_iter()
        .map(|Cluster { name, client }| {
            let live = client.as_ref().ok().map(|c| crate::live::follow(c.clone()));
            Shown { name, client, live }
        })
        .collect();
    let transport = match args.data_dir {
        Some(dir) => Transport::Local { data_dir: dir },
        None => Transport::Exec,
    };
    let ui = Arc::new(Ui {
        clusters,
        allowed_hosts: args.allowed_hosts,
        token: security::new_token(),
        read_only: args.read_only,
        transport,
        operator_namespace: args.operator_namespace,
    });
    let listener =
        tokio::net::TcpListener::bind(args.address).await.with_context(|| format!("listening on {}", args.address))?;
    let address = listener.local_addr()?;
    println!("kube9-ui: http://{address}/");
    tracing::info!(%address, "kube9-ui serving");
    axum::serve(listener, router(ui)).with_graceful_shutdown(shutdown()).await.context("serving")?;
    Ok(())
}

async fn shutdown() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {},
        _ = tokio::signal::ctrl_c() => {},
    }
}

fn router(ui: Shared) -> axum::Router {
    axum::Router::new()
        .route("/", get(home))
        // The chart's probes: the process serves (the API server may still refuse it).
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/assets/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", include_str!("../assets/app.js")) }),
        )
        .route(
            "/assets/style.css",
            get(|| async { asset("text/css; charset=utf-8", include_str!("../assets/style.css")) }),
        )
        .route("/c/{i}/", get(overview))
        .route("/c/{i}", get(|Path(i): Path<usize>| async move { Redirect::to(&format!("/c/{i}/")) }))
        .route("/c/{i}/assessments", get(assessments))
        .route("/c/{i}/assessments/{name}/run", post(run_now))
        .route("/c/{i}/findings", get(findings))
        .route("/c/{i}/checks", get(checks))
        .route("/c/{i}/insights", get(insights))
        .route("/c/{i}/insights/{id}", post(decide))
        .route("/c/{i}/events", get(events))
        .route("/c/{i}/argocd", get(argocd))
        .route("/c/{i}/conformance", get(conformance))
        .route("/c/{i}/live", get(live))
        .fallback(|| async { (StatusCode::NOT_FOUND, "no such page") })
        .layer(axum::middleware::from_fn_with_state(ui.clone(), known_host))
        .layer(axum::middleware::map_response(headers))
        .with_state(ui)
}

/// Refuses a request whose `Host` is not this UI's ([`security::host_allowed`]): 421, saying
/// which names it answers to.
async fn known_host(
    State(ui): State<Shared>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let host = request.headers().get(header::HOST).and_then(|h| h.to_str().ok());
    if security::host_allowed(host, &ui.allowed_hosts) {
        return next.run(request).await;
    }
    let message = format!(
        "kube9-ui answers only to localhost, IP addresses and the names given with --allowed-host (KUBE9_UI_ALLOWED_HOSTS); this request named {:?}",
        host.unwrap_or("no host")
    );
    (StatusCode::MISDIRECTED_REQUEST, message).into_response()
}

/// The headers of every answer: the Content-Security-Policy and its companions. The referrer
/// policy is `same-origin`, not `no-referrer`: with `no-referrer` a browser sends `Origin: null`
/// on the UI's own form POSTs, which the Origin check must refuse.
async fn headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(security::CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "max-age=300")], body).into_response()
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "no such cluster").into_response()
}

/// The cluster `i` and its client, or the page that says why there is none.
fn shown(ui: &Ui, i: usize) -> Result<(&Shown, &kube::Client), Box<Response>> {
    let Some(c) = ui.clusters.get(i) else { return Err(Box::new(not_found())) };
    match &c.client {
        Ok(client) => Ok((c, client)),
        Err(m) => Err(Box::new(render(ui, i, "", "Cluster", pages::refusal("No client for this context:", m)))),
    }
}

fn render(ui: &Ui, i: usize, active: &str, title: &str, body: Markup) -> Response {
    let base = format!("/c/{i}");
    let name = ui.clusters.get(i).map(|c| c.name.as_str()).unwrap_or_default();
    let frame = Frame { cluster: name, base: &base, active: Some(active), fleet: ui.clusters.len() > 1 };
    Html(pages::layout(&frame, title, body).into_string()).into_response()
}

fn operator_namespace(ui: &Ui, status: &Result<Option<OperatorStatus>, String>) -> String {
    status
        .as_ref()
        .ok()
        .and_then(|s| s.as_ref())
        .and_then(|s| s.status.as_ref())
        .and_then(|s| s.namespace.clone())
        .unwrap_or_else(|| ui.operator_namespace.clone())
}

async fn query(
    ui: &Ui,
    client: &kube::Client,
    namespace: &str,
    words: Vec<String>,
) -> Result<serde_json::Value, String> {
    store::query(client, &ui.transport, namespace, &words).await
}

async fn home(State(ui): State<Shared>) -> Response {
    if ui.clusters.len() == 1 {
        return Redirect::to("/c/0/").into_response();
    }
    let reads = ui.clusters.iter().enumerate().map(|(i, c)| async move {
        let base = format!("/c/{i}");
        let Ok(client) = &c.client else {
            let m = c.client.as_ref().err().cloned().unwrap_or_default();
            return pages::fleet::Row { name: c.name.clone(), base, status: Err(m.clone()), assessments: Err(m) };
        };
        let (status, assessments) = tokio::join!(
            tokio::time::timeout(FLEET_TIMEOUT, cluster::operator_status(client)),
            tokio::time::timeout(FLEET_TIMEOUT, cluster::assessments(client))
        );
        pages::fleet::Row { name: c.name.clone(), base, status: timed(status), assessments: timed(assessments) }
    });
    let rows = futures::future::join_all(reads).await;
    let frame = Frame { cluster: "fleet", base: "", active: None, fleet: true };
    Html(pages::layout(&frame, "Fleet", pages::fleet::page(&rows)).into_string()).into_response()
}

async fn overview(State(ui): State<Shared>, Path(i): Path<usize>) -> Response {
    let (_, client) = match shown(&ui, i) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let status = cluster::operator_status(client).await;
    render(&ui, i, "", "Overview", pages::overview::page(&status))
}

async fn assessments(State(ui): State<Shared>, Path(i): Path<usize>) -> Response {
    assessments_page(&ui, i, None).await
}

async fn assessments_page(ui: &Ui, i: usize, notice: Option<Markup>) -> Response {
    let (_, client) = match shown(ui, i) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let (status, list) = tokio::join!(cluster::operator_status(client), cluster::assessments(client));
    let namespace = operator_namespace(ui, &status);
    let body = match &list {
        Err(m) => pages::assessments::page(&Err(m.clone()), "", "", true),
        Ok(list) => {
            let histories =
                futures::future::join_all(list.iter().map(|a| {
                    let name = a.metadata.name.clone().unwrap_or_default();
                    let words = vec!["assessments".into(), "history".into(), name, "--limit=1000".into()];
                    let namespace = namespace.clone();
                    async move {
                        query(ui, client, &namespace, words).await.map(|d| pages::assessments::points_from_store(&d))
                    }
                }))
                .await;
            let rows: Vec<pages::assessments::Row<'_>> = list
                .iter()
                .zip(histories)
                .map(|(assessment, stored)| pages::assessments::Row { assessment, stored })
                .collect();
            pages::assessments::page(&Ok(rows), &format!("/c/{i}"), &ui.token, ui.read_only)
        }
    };
    let refused = notice.as_ref().is_some_and(|n| n.0.contains("class=\"refusal\""));
    let mut response = render(ui, i, "assessments", "Assessments", html! { @if let Some(n) = notice { (n) } (body) });
    if refused {
        *response.status_mut() = StatusCode::FORBIDDEN;
    }
    response
}

#[derive(serde::Deserialize)]
struct TokenForm {
    #[serde(default)]
    token: String,
}

/// The POST checks: writes allowed, the token, the Origin.
fn check_post(ui: &Ui, headers: &HeaderMap, token: &str) -> Result<(), Box<Response>> {
    if ui.read_only {
        return Err(Box::new((StatusCode::FORBIDDEN, "this UI is read-only (--read-only)").into_response()));
    }
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    security::post_allowed(&ui.token, token, origin, host)
        .map_err(|m| Box::new((StatusCode::FORBIDDEN, m).into_response()))
}

async fn run_now(
    State(ui): State<Shared>,
    Path((i, name)): Path<(usize, String)>,
    headers: HeaderMap,
    Form(form): Form<TokenForm>,
) -> Response {
    if let Err(r) = check_post(&ui, &headers, &form.token) {
        return *r;
    }
    let (_, client) = match shown(&ui, i) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    match cluster::run_now(client, &name).await {
        Ok(()) => Redirect::to(&format!("/c/{i}/assessments")).into_response(),
        Err(m) => assessments_page(&ui, i, Some(pages::assessments::requested(&name, &Err(m)))).await,
    }
}

async fn findings(
    State(ui): State<Shared>,
    Path(i): Path<usize>,
    Query(mut filter): Query<pages::findings::Filter>,
) -> Response {
    let (_, client) = match shown(&ui, i) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let (status, list) = tokio::join!(cluster::operator_status(client), cluster::assessments(client));
    let list = match list {
        Ok(list) => list,
        Err(m) => return render(&ui, i, "findings", "Findings", pages::refusal("Listing Assessments failed:", &m)),
    };
    let names: Vec<String> = list.iter().filter_map(|a| a.metadata.name.clone()).collect();
    if filter.assessment.is_empty() || !names.contains(&filter.assessment) {
        // The Assessment that completed last.
        filter.assessment = list
            .iter()
            .filter_map(|a| Some((a.status.as_ref()?.completed_at.as_ref()?.0, a.metadata.name.clone()?)))
            .max()
            .map(|(_, n)| n)
            .or_else(|| names.first().cloned())
            .unwrap_or_default();
    }
    let answer = if filter.assessment.is_empty() {
        None
    } else {
        Some(query(&ui, client, &operator_namespace(&ui, &status), filter.words()).await)
    };
    render(&ui, i, "findings", "Findings", pages::findings::page(&format!("/c/{i}"), &names, &filter, answer.as_ref()))
}

async fn checks(State(ui): State<Shared>, Path(i): Path<usize>) -> Response {
    if ui.clusters.get(i).is_none() {
        return not_found();
    }
    render(&ui, i, "checks", "Checks", pages::checks::page())
}

async fn insights(State(ui): State<Shared>, Path(i): Path<usize>) -> Response {
    insights_page(&ui, i, None).await
}

async fn insights_page(ui: &Ui, i: usize, notice: Option<(Markup, bool)>) -> Response {
    let (_, client) = match shown(ui, i) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let status = cluster::operator_status(client).await;
    let body = pages::insights::page(&status, &format!("/c/{i}"), &ui.token, ui.read_only);
    let refused = notice.as_ref().is_some_and(|(_, refused)| *refused);
    let mut response = render(ui, i, "insights", "Insights", html! { @if let Some((n, _)) = notice { (n) } (body) });
    if refused {
        *response.status_mut() = StatusCode::FORBIDDEN;
    }
    response
}

#[derive(serde::Deserialize)]
struct DecideForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    note: String,
}

async fn decide(
    State(ui): State<Shared>,
    Path((i, id)): Path<(usize, String)>,
    headers: HeaderMap,
    Form(form): Form<DecideForm>,
) -> Response {
    if let Err(r) = check_post(&ui, &headers, &form.token) {
        return *r;
    }
    let state = match form.action.as_str() {
        "acknowledge" => Some(AcknowledgementState::Acknowledged),
        "dismiss" => Some(AcknowledgementState::Dismissed),
        "reopen" => None,
        _ => return (StatusCode::BAD_REQUEST, "action must be acknowledge, dismiss or reopen").into_response(),
    };
    let (_, client) = match shown(&ui, i) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let result = cluster::acknowledge(client, &id, state, &form.note).await;
    match result {
        Ok(()) => Redirect::to(&format!("/c/{i}/insights")).into_response(),
        Err(m) => {
            let notice = pages::insights::decided(&id, &form.action, &Err(m));
            insights_page(&ui, i, Some((notice, true))).await
        }
    }
}

async fn events(
    State(ui): State<Shared>,
    Path(i): Path<usize>,
    Query(filter): Query<pages::events::Filter>,
) -> Response {
    let (_, client) = match shown(&ui, i) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let status = cluster::operator_status(client).await;
    let now = k8s_openapi::jiff::Timestamp::now().as_millisecond();
    let answer = query(&ui, client, &operator_namespace(&ui, &status), filter.words(now)).await;
    render(&ui, i, "events", "Events", pages::events::page(&format!("/c/{i}"), &filter, &answer))
}

#[derive(serde::Deserialize)]
struct AppQuery {
    #[serde(default)]
    app: String,
    #[serde(default)]
    ns: String,
}

async fn argocd(State(ui): State<Shared>, Path(i): Path<usize>, Query(q): Query<AppQuery>) -> Response {
    let (_, client) = match shown(&ui, i) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let status = cluster::operator_status(client).await;
    if let Err(m) = &status {
        return render(&ui, i, "argocd", "Argo CD", pages::refusal("Reading the OperatorStatus kube9 failed:", m));
    }
    let namespace = operator_namespace(&ui, &status);
    let argo =
        status.as_ref().ok().and_then(|s| s.as_ref()).and_then(|s| s.status.as_ref()).and_then(|s| s.argocd.clone());
    let detected = argo.as_ref().is_some_and(|a| a.detected);
    let mut read = pages::argocd::Read { status: argo.as_ref(), apps: None, drift: None, tree: None };
    if detected {
        let apps = query(&ui, client, &namespace, vec!["argocd".into(), "apps".into(), "list".into()]);
        let drift = query(
            &ui,
            client,
            &namespace,
            vec!["events".into(), "list".into(), "--object-kind=Application".into(), "--limit=50".into()],
        );
        let (apps, drift) = tokio::join!(apps, drift);
        read.apps = Some(apps);
        read.drift = Some(drift);
        if !q.app.is_empty() {
            let mut words = vec!["argocd".into(), "resource-tree".into(), "get".into(), q.app.clone()];
            if !q.ns.is_empty() {
                words.push(format!("--namespace={}", q.ns));
            }
            read.tree = Some((q.app.clone(), query(&ui, client, &namespace, words).await));
        }
    }
    render(&ui, i, "argocd", "Argo CD", pages::argocd::page(&format!("/c/{i}"), &read))
}

async fn conformance(State(ui): State<Shared>, Path(i): Path<usize>) -> Response {
    let (_, client) = match shown(&ui, i) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let status = cluster::operator_status(client).await;
    if let Err(m) = &status {
        return render(
            &ui,
            i,
            "conformance",
            "AI Conformance",
            pages::refusal("Reading the OperatorStatus kube9 failed:", m),
        );
    }
    let summary = status
        .as_ref()
        .ok()
        .and_then(|s| s.as_ref())
        .and_then(|s| s.status.as_ref())
        .and_then(|s| s.ai_conformance.clone());
    let stored = if summary.is_some() {
        query(&ui, client, &operator_namespace(&ui, &status), vec!["ai-conformance".into(), "requirements".into()])
            .await
    } else {
        Err("no self-check yet".into())
    };
    render(&ui, i, "conformance", "AI Conformance", pages::conformance::page(summary.as_ref(), &stored))
}

/// Server-sent events: `change` whenever the cluster's OperatorStatus or an Assessment changes.
async fn live(State(ui): State<Shared>, Path(i): Path<usize>) -> Response {
    let Some(rx) = ui.clusters.get(i).and_then(|c| c.live.clone()) else { return not_found() };
    let stream: std::pin::Pin<Box<dyn Stream<Item = Result<Event, Infallible>> + Send>> = Box::pin(
        tokio_stream::wrappers::WatchStream::from_changes(rx)
            .map(|n| Ok(Event::default().event("change").data(n.to_string()))),
    );
    Sse::new(stream).keep_alive(KeepAlive::default()).into_response()
}

/// A read that did not answer in time reads as a failure that says so.
fn timed<T>(r: Result<Result<T, String>, tokio::time::error::Elapsed>) -> Result<T, String> {
    r.unwrap_or_else(|_| Err(format!("no answer within {} s", FLEET_TIMEOUT.as_secs())))
}
