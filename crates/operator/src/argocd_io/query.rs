//! `kube9-operator query argocd …`: Argo CD Applications and their resource trees, read live
//! from the API server with the Pod's service account (the extension execs it inside the
//! operator's container; outside a cluster, KUBECONFIG). Nothing comes from Argo CD's API and
//! nothing is written. Stdout carries one JSON document; a failure exits non-zero with
//! `{"ok": false, "code", "message"}` on stderr, like every `query` command.

use clap::Subcommand;
use kube::Resource;
use kube::api::{Api, ListParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use kube9_argocd::tree::{self, TREE_KINDS};
use kube9_store::cli::{Format, Outcome, failure};
use serde_json::{Value, json};

use super::listed::ListedApp;
use crate::base::list;

/// What to read.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Argo CD Applications: their sync and health.
    Apps {
        #[command(subcommand)]
        command: Apps,
    },
    /// An Application's resource tree: its managed resources and what they own.
    ResourceTree {
        #[command(subcommand)]
        command: ResourceTree,
    },
}

#[derive(Subcommand, Debug)]
pub enum Apps {
    /// Every Application (in one namespace with --namespace).
    List {
        #[arg(long)]
        namespace: Option<String>,
        #[arg(long, value_enum, default_value = "json")]
        format: Format,
    },
    /// One Application, with every resource it manages.
    Get {
        name: String,
        /// The Application's namespace; without it, the one Application of that name.
        #[arg(long)]
        namespace: Option<String>,
        #[arg(long, value_enum, default_value = "json")]
        format: Format,
    },
}

#[derive(Subcommand, Debug)]
pub enum ResourceTree {
    /// The tree of one Application.
    Get {
        name: String,
        /// The Application's namespace; without it, the one Application of that name.
        #[arg(long)]
        namespace: Option<String>,
        #[arg(long, value_enum, default_value = "json")]
        format: Format,
    },
}

/// Why a query failed: a stable code and a message for people.
#[derive(Debug)]
struct Failure {
    code: &'static str,
    message: String,
}

impl Failure {
    fn new(code: &'static str, message: impl Into<String>) -> Failure {
        Failure { code, message: message.into() }
    }

    fn api(what: &str, e: &kube::Error) -> Failure {
        let code = match list::status_code(e) {
            Some(403) => "forbidden",
            Some(404) => "not-found",
            Some(_) => "api-error",
            None => "unreachable",
        };
        Failure::new(code, format!("{what}: {e}"))
    }
}

/// Runs one query against the cluster the Pod (or KUBECONFIG) points at.
pub async fn run(command: &Command) -> Outcome {
    let client = match kube::Client::try_default().await {
        Ok(client) => client,
        Err(e) => {
            return failure(
                1,
                "no-cluster",
                &format!("cannot reach the Kubernetes API (run inside the operator's Pod, or set KUBECONFIG): {e}"),
            );
        }
    };
    match answer(&client, command).await {
        Ok(stdout) => Outcome { code: 0, stdout, stderr: String::new() },
        Err(f) => failure(1, f.code, &f.message),
    }
}

async fn answer(client: &kube::Client, command: &Command) -> Result<String, Failure> {
    match command {
        Command::Apps { command: Apps::List { namespace, format } } => {
            let api: Api<ListedApp> = match namespace {
                Some(ns) => Api::namespaced(client.clone(), ns),
                None => Api::all(client.clone()),
            };
            let apps = list_all(&api, ListParams::default()).await?;
            Ok(match format {
                Format::Json => {
                    document(&json!({"applications": apps.iter().map(|a| summary(a, false)).collect::<Vec<_>>()}))
                }
                Format::Table => app_table(&apps),
            })
        }
        Command::Apps { command: Apps::Get { name, namespace, format } } => {
            let app = find(client, name, namespace.as_deref()).await?;
            Ok(match format {
                Format::Json => document(&summary(&app, true)),
                Format::Table => app_table(std::slice::from_ref(&app)),
            })
        }
        Command::ResourceTree { command: ResourceTree::Get { name, namespace, format } } => {
            let app = find(client, name, namespace.as_deref()).await?;
            let resources = &app.status.resources;
            let d = &app.spec.destination;
            // Another cluster's objects are not here: its tree is what Argo CD reports.
            let namespaces =
                if d.in_cluster() { tree::namespaces(resources, d.namespace.as_deref()) } else { Default::default() };
            let mut live = Vec::new();
            for ns in &namespaces {
                for kind in TREE_KINDS {
                    list_kind(client, kind, ns, &mut live).await?;
                }
            }
            let tree = tree::build(resources, &live);
            Ok(match format {
                Format::Json => document(&serde_json::to_value(&tree).unwrap_or_default()),
                Format::Table => tree_table(&tree),
            })
        }
    }
}

/// Every Application the list returns, page by page.
async fn list_all(api: &Api<ListedApp>, params: ListParams) -> Result<Vec<ListedApp>, Failure> {
    let mut params = params.limit(list::PAGE);
    let mut out = Vec::new();
    loop {
        let page = api.list(&params).await.map_err(|e| match list::status_code(&e) {
            Some(404) => Failure::new(
                "argocd-not-installed",
                "the cluster does not serve applications.argoproj.io: Argo CD is not installed",
            ),
            _ => Failure::api("cannot list Argo CD Applications", &e),
        })?;
        out.extend(page.items);
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(out),
        }
    }
}

/// The Application named `name` (in `namespace`, or the only one of that name). A list with a
/// field selector, since the operator may list and watch Applications but not get them.
async fn find(client: &kube::Client, name: &str, namespace: Option<&str>) -> Result<ListedApp, Failure> {
    let api: Api<ListedApp> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let mut found = list_all(&api, ListParams::default().fields(&format!("metadata.name={name}"))).await?;
    let place = namespace.map(|ns| format!(" in namespace {ns}")).unwrap_or_default();
    match found.len() {
        0 => Err(Failure::new("not-found", format!("no Argo CD Application {name}{place}"))),
        1 => Ok(found.remove(0)),
        n => {
            let namespaces: Vec<String> = found.iter().filter_map(|a| a.metadata.namespace.clone()).collect();
            Err(Failure::new(
                "ambiguous",
                format!("{n} Applications are named {name} (in {}): add --namespace", namespaces.join(", ")),
            ))
        }
    }
}

/// Lists one kind in one namespace into `live`, each object with its apiVersion and kind.
async fn list_kind(
    client: &kube::Client,
    kind: &tree::TreeKind,
    ns: &str,
    live: &mut Vec<Value>,
) -> Result<(), Failure> {
    let gvk = GroupVersionKind::gvk(kind.group, kind.version, kind.kind);
    let resource = ApiResource::from_gvk_with_plural(&gvk, kind.plural);
    let api_version = kind.api_version();
    let listed = list::each_item(client, &DynamicObject::url_path(&resource, Some(ns)), |mut object| {
        if let Some(map) = object.as_object_mut() {
            map.insert("apiVersion".into(), api_version.clone().into());
            map.insert("kind".into(), kind.kind.into());
            // Only metadata, spec and status are read; managed fields are bookkeeping.
            if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.remove("managedFields");
            }
        }
        live.push(object);
        Ok::<(), ()>(())
    })
    .await;
    match listed {
        Ok(()) => Ok(()),
        // A kind this server does not serve in that version (autoscaling/v2 and
        // discovery.k8s.io/v1 before 1.23 and 1.21) has nothing to add to the tree.
        Err(list::ListError::Kube(e)) if list::status_code(&e) == Some(404) => Ok(()),
        Err(list::ListError::Kube(e)) => Err(Failure::api(&format!("cannot list {} in {ns}", kind.plural), &e)),
        Err(list::ListError::Stopped(())) => Ok(()),
    }
}

fn document(value: &Value) -> String {
    format!("{value}\n")
}

/// An Application as the query prints it; with `resources`, every resource it manages.
fn summary(app: &ListedApp, resources: bool) -> Value {
    let status = &app.status;
    let d = &app.spec.destination;
    let mut value = json!({
        "name": app.metadata.name,
        "namespace": app.metadata.namespace,
        "project": app.spec.project,
        "destination": {"server": d.server, "name": d.name, "namespace": d.namespace},
        "sync": {"status": status.sync.status.as_deref().unwrap_or("Unknown"), "revision": status.sync.revision},
        "health": {"status": status.health.status.as_deref().unwrap_or("Unknown"), "message": status.health.message},
        "operationState": status.operation_state.as_ref().map(|o| json!({
            "phase": o.phase, "message": o.message, "startedAt": o.started_at, "finishedAt": o.finished_at})),
        "resourceCount": status.resources.len(),
        "outOfSyncCount": status.resources.iter().filter(|r| r.status.as_deref() == Some("OutOfSync")).count(),
    });
    if resources {
        value["resources"] = status
            .resources
            .iter()
            .map(|r| {
                json!({"group": r.group.clone().unwrap_or_default(), "version": r.version, "kind": r.kind,
                    "namespace": r.namespace, "name": r.name, "status": r.status,
                    "health": r.health.as_ref().map(|h| json!({"status": h.status, "message": h.message}))})
            })
            .collect();
    }
    value
}

fn app_table(apps: &[ListedApp]) -> String {
    let mut out = String::from("NAMESPACE\tNAME\tPROJECT\tSYNC\tHEALTH\n");
    for a in apps {
        out.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\n",
            a.metadata.namespace.as_deref().unwrap_or_default(),
            a.metadata.name.as_deref().unwrap_or_default(),
            a.spec.project,
            a.status.sync.status.as_deref().unwrap_or("Unknown"),
            a.status.health.status.as_deref().unwrap_or("Unknown"),
        ));
    }
    out
}

fn tree_table(tree: &tree::Tree) -> String {
    let mut out = String::from("KIND\tNAMESPACE\tNAME\tHEALTH\tOWNER\n");
    for n in &tree.nodes {
        let owner = n.parent_refs.first().map(|p| format!("{}/{}", p.kind, p.name)).unwrap_or_else(|| "-".into());
        let health = n.health.as_ref().map_or("-", |h| h.status.as_str());
        out.push_str(&format!("{}\t{}\t{}\t{health}\t{owner}\n", n.kind, n.namespace, n.name));
    }
    out
}
