//! GitOps with Argo CD: whether Applications converge on what Git says, whether automation
//! really keeps them there, and whether projects fence what they may deploy. Every check is
//! silent (nothing evaluated) where Argo CD's CRDs are not served.

use std::collections::BTreeSet;
use std::time::Duration;

use kube9_api::common::{Pillar, Severity};
use kube9_argocd::app::{Application, Destination};

use crate::check::Check;
use crate::check::Run::{Each, Kept};
use crate::pods::pod_owners;
use crate::snapshot::Snapshot;
use crate::subject::Subject;

const O: Pillar = Pillar::OperationalExcellence;
const S: Pillar = Pillar::Security;
const APP: &str = "argoproj.io/v1alpha1";

/// How long an Application may stay OutOfSync or Degraded before it is a finding.
pub const STUCK_AFTER: Duration = Duration::from_secs(60 * 60);

fn subject(app: &Application) -> Subject<'_> {
    Subject::new(APP, "Application", &app.metadata)
}

fn word(value: &Option<String>) -> &str {
    value.as_deref().unwrap_or("Unknown")
}

/// How long the Application has been in a bad state, when the snapshot says; None when it is
/// not in one (or, read from manifests, the time is unknown and the state alone counts).
fn stuck(s: &Snapshot, app: &Application) -> Option<String> {
    let sync = word(&app.status.sync.status);
    let health = word(&app.status.health.status);
    let older = |since: Option<k8s_openapi::jiff::Timestamp>| match (s.taken_at, since) {
        (Some(now), Some(since)) => now.as_second() - since.as_second() >= STUCK_AFTER.as_secs() as i64,
        // A state with no recorded start (never synced, or an older Argo CD) has lasted as long
        // as anyone can tell.
        _ => true,
    };
    let last_sync = app.status.operation_state.as_ref().and_then(|o| o.finished_at);
    let minutes = STUCK_AFTER.as_secs() / 60;
    if health == "Degraded" && older(app.status.health.last_transition_time) {
        return Some(format!("Degraded for more than {minutes} minutes"));
    }
    if sync == "OutOfSync" && older(last_sync) {
        return Some(match last_sync {
            Some(_) => format!("OutOfSync, and no sync has finished for more than {minutes} minutes"),
            None => "OutOfSync and never synced".into(),
        });
    }
    None
}

/// The namespaces Applications deploy into, and every (group, kind, namespace, name) they
/// manage.
/// A resource by group, kind, namespace and name.
type Key<'a> = (&'a str, &'a str, &'a str, &'a str);

fn managed(s: &Snapshot) -> (BTreeSet<&str>, BTreeSet<Key<'_>>) {
    let mut namespaces = BTreeSet::new();
    let mut resources = BTreeSet::new();
    // Only Applications that deploy into this cluster (the in-cluster destination).
    for app in s.applications.iter().filter(|a| a.spec.destination.in_cluster()) {
        if let Some(ns) = app.spec.destination.namespace.as_deref().filter(|ns| !ns.is_empty()) {
            namespaces.insert(ns);
        }
        for r in &app.status.resources {
            let ns = r.namespace.as_deref().unwrap_or_default();
            if !ns.is_empty() {
                namespaces.insert(ns);
            }
            resources.insert((r.group.as_deref().unwrap_or_default(), r.kind.as_str(), ns, r.name.as_str()));
        }
    }
    (namespaces, resources)
}

fn anywhere(d: &Destination) -> bool {
    let server = d.server.as_deref() == Some("*") || d.name.as_deref() == Some("*");
    server && d.namespace.as_deref() == Some("*")
}

pub static CHECKS: &[Check] = &[
    Check {
        id: "operational-excellence.argocd-stuck",
        pillar: O,
        title: "Argo CD Application OutOfSync or Degraded for long",
        severity: Severity::High,
        rationale: "An Application that stays OutOfSync runs something other than what Git says; one that stays Degraded is failing. Either way the GitOps promise is broken and nobody may have noticed.",
        remediation: "Open the Application in Argo CD: sync it, or fix what keeps it from becoming healthy (its resource tree shows which resource). If the difference is intended, record it in Git or in ignoreDifferences.",
        reads: &["Application"],
        run: Kept(|s, e| {
            for app in &s.applications {
                match stuck(s, app) {
                    Some(message) => e.fail(subject(app), None, message),
                    None => e.pass(subject(app)),
                }
            }
        }),
    },
    Check {
        id: "operational-excellence.argocd-sync-failed",
        pillar: O,
        title: "Argo CD Application's last sync failed",
        severity: Severity::High,
        rationale: "A failed sync leaves the cluster part-way between two revisions, and automated sync stops retrying after its limit.",
        remediation: "Read the sync's message in Argo CD (or `kube9-operator query argocd apps get`), fix the manifest or permission it names, and sync again.",
        reads: &["Application"],
        run: Kept(|s, e| {
            for app in &s.applications {
                let op = app.status.operation_state.as_ref();
                let failed = op.is_some_and(|o| matches!(o.phase.as_deref(), Some("Failed" | "Error")));
                let message = op.and_then(|o| o.message.clone()).unwrap_or_default();
                e.expect(!failed, subject(app), None, format!("last sync failed: {message}"));
            }
        }),
    },
    Check {
        id: "operational-excellence.argocd-automation-incomplete",
        pillar: O,
        title: "Automated sync without self-heal or prune",
        severity: Severity::Medium,
        rationale: "Automated sync without selfHeal lets changes made in the cluster stay until the next commit; without prune, resources removed from Git keep running.",
        remediation: "Set syncPolicy.automated.selfHeal: true and prune: true (with the argocd.argoproj.io/sync-options: Prune=false annotation on anything that must survive removal).",
        reads: &["Application"],
        run: Kept(|s, e| {
            for app in &s.applications {
                let Some(auto) = app.spec.sync_policy.as_ref().and_then(|p| p.automated.as_ref()) else { continue };
                if auto.enabled == Some(false) {
                    continue;
                }
                let missing: Vec<&str> = [("selfHeal", auto.self_heal), ("prune", auto.prune)]
                    .into_iter()
                    .filter(|(_, on)| *on != Some(true))
                    .map(|(name, _)| name)
                    .collect();
                e.expect(
                    missing.is_empty(),
                    subject(app),
                    None,
                    format!("automated sync without {}", missing.join(" or ")),
                );
            }
        }),
    },
    Check {
        id: "operational-excellence.argocd-unmanaged-workloads",
        pillar: O,
        title: "Workload not managed by any Argo CD Application",
        severity: Severity::Low,
        rationale: "In a namespace Argo CD deploys into, a workload no Application manages was made by hand: it is not reviewed, not reproducible, and lost when the namespace is rebuilt from Git.",
        remediation: "Add the workload's manifests to an Application's source, or move it out of the GitOps-managed namespace.",
        reads: &["Application", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"],
        run: Each(|s, e| {
            if s.applications.is_empty() {
                return;
            }
            let (namespaces, resources) = managed(s);
            for owner in pod_owners(s) {
                let ns = owner.subject.meta.namespace.as_deref().unwrap_or_default();
                if !namespaces.contains(ns) {
                    continue;
                }
                let group = owner.subject.api_version.rsplit_once('/').map_or("", |(g, _)| g);
                let name = owner.subject.meta.name.as_deref().unwrap_or_default();
                e.expect(
                    resources.contains(&(group, owner.subject.kind, ns, name)),
                    owner.subject,
                    None,
                    "runs in a namespace Argo CD deploys into, but no Application manages it",
                );
            }
        }),
    },
    Check {
        id: "security.argocd-default-project",
        pillar: S,
        title: "Argo CD Application in the default project",
        severity: Severity::Medium,
        rationale: "The default AppProject allows any source repository, any destination and any kind: an Application there can deploy anything anywhere the Argo CD controller can reach.",
        remediation: "Create an AppProject per team with the repositories, destinations and kinds it needs, and move the Application into it.",
        reads: &["Application"],
        run: Kept(|s, e| {
            for app in &s.applications {
                let project = app.spec.project.as_str();
                e.expect(
                    !(project.is_empty() || project == "default"),
                    subject(app),
                    None,
                    "uses the default AppProject",
                );
            }
        }),
    },
    Check {
        id: "security.argocd-project-unrestricted",
        pillar: S,
        title: "AppProject allows any repository and any destination",
        severity: Severity::High,
        rationale: "A project whose sourceRepos is `*` and one of whose destinations is any cluster and any namespace lets whoever can create its Applications deploy anything, anywhere.",
        remediation: "List the repositories the project's teams use in sourceRepos, and the servers and namespaces they deploy to in destinations.",
        reads: &["AppProject"],
        run: Kept(|s, e| {
            for project in &s.app_projects {
                let any_repo = project.spec.source_repos.iter().any(|r| r == "*");
                let any_place = project.spec.destinations.iter().any(anywhere);
                e.expect(
                    !(any_repo && any_place),
                    Subject::new(APP, "AppProject", &project.metadata),
                    None,
                    "allows any source repository and any destination",
                );
            }
        }),
    },
];

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::CHECKS;
    use crate::testing::*;

    fn app(name: &str, extra: Value) -> Value {
        merge(
            json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
                "metadata": {"name": name, "namespace": "argocd"},
                "spec": {"project": "shop", "destination": {"server": "https://kubernetes.default.svc", "namespace": "shop"},
                    "source": {"repoURL": "https://git.example.com/shop.git", "path": "deploy"},
                    "syncPolicy": {"automated": {"prune": true, "selfHeal": true}}},
                "status": {"sync": {"status": "Synced"}, "health": {"status": "Healthy"},
                    "operationState": {"phase": "Succeeded", "finishedAt": "2026-12-01T09:00:00Z"},
                    "resources": [{"group": "apps", "version": "v1", "kind": "Deployment", "namespace": "shop", "name": "web"}]}}),
            extra,
        )
    }

    fn in_shop(d: Value) -> Value {
        merge(d, json!({"metadata": {"namespace": "shop", "name": "web"}}))
    }

    #[test]
    fn every_gitops_check_flags_its_fixture_and_passes_a_good_one() {
        let good = app("good", json!({}));
        let cases: Vec<Case> = vec![
            (
                "operational-excellence.argocd-stuck",
                vec![app("drifted", json!({"status": {"sync": {"status": "OutOfSync"}}}))],
                vec![good.clone()],
            ),
            (
                "operational-excellence.argocd-sync-failed",
                vec![app("failed", json!({"status": {"operationState": {"phase": "Failed", "message": "boom"}}}))],
                vec![good.clone()],
            ),
            (
                "operational-excellence.argocd-automation-incomplete",
                vec![app("half", json!({"spec": {"syncPolicy": {"automated": {"selfHeal": false}}}}))],
                vec![good.clone(), app("manual", json!({"spec": {"syncPolicy": null}}))],
            ),
            (
                "operational-excellence.argocd-unmanaged-workloads",
                vec![
                    good.clone(),
                    merge(in_shop(deployment_with_container(json!({}))), json!({"metadata": {"name": "by-hand"}})),
                ],
                vec![
                    good.clone(),
                    in_shop(deployment_with_container(json!({}))),
                    app(
                        "remote",
                        json!({"spec": {"destination": {"server": "https://prod.example.com", "namespace": "web"}}}),
                    ),
                    merge(
                        deployment_with_container(json!({})),
                        json!({"metadata": {"namespace": "web", "name": "local"}}),
                    ),
                ],
            ),
            (
                "security.argocd-default-project",
                vec![app("d", json!({"spec": {"project": "default"}}))],
                vec![good.clone()],
            ),
            (
                "security.argocd-project-unrestricted",
                vec![
                    json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject", "metadata": {"name": "open", "namespace": "argocd"},
                    "spec": {"sourceRepos": ["*"], "destinations": [{"server": "*", "namespace": "*"}]}}),
                ],
                vec![
                    json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject", "metadata": {"name": "shop", "namespace": "argocd"},
                    "spec": {"sourceRepos": ["*"], "destinations": [{"server": "https://kubernetes.default.svc", "namespace": "shop"}]}}),
                ],
            ),
        ];
        every_check_flags_and_passes(CHECKS, cases);
    }

    #[test]
    fn a_recent_drift_is_not_yet_a_finding() {
        use crate::engine::run;
        use crate::options::Options;
        let drifted = app(
            "drifted",
            json!({"status": {"sync": {"status": "OutOfSync"}, "health": {"status": "Degraded", "lastTransitionTime": "2026-12-01T09:50:00Z"},
                "operationState": {"phase": "Succeeded", "finishedAt": "2026-12-01T09:45:00Z"}}}),
        );
        let mut s = snapshot(&[drifted]);
        let options =
            Options { include_checks: vec!["operational-excellence.argocd-stuck".into()], ..Options::default() };
        s.taken_at = Some("2026-12-01T10:00:00Z".parse().unwrap());
        assert_eq!(run(&s, &options).results[0].failed.len(), 0, "ten minutes is not long");
        s.taken_at = Some("2026-12-01T11:00:00Z".parse().unwrap());
        let report = run(&s, &options);
        assert_eq!(report.results[0].failed.len(), 1, "seventy minutes is");
        assert!(report.results[0].failed[0].message.contains("Degraded"));
    }

    #[test]
    fn without_argo_cd_nothing_is_evaluated() {
        let workload = deployment_with_container(json!({}));
        for check in CHECKS {
            assert_eq!(outcome(check.id, std::slice::from_ref(&workload)), (0, 0, 0), "{}", check.id);
        }
    }
}
