//! Operational excellence, upgrades: objects written in API versions that the target
//! Kubernetes release deprecates or no longer serves, as Pluto and kubent report them. The
//! target is the cluster's version in the cluster, and `--kubernetes-version` offline (by
//! default the newest release the table knows).

use kube9_api::common::{Pillar, Severity};

use crate::check::Run::Each;
use crate::check::{Check, Eval};
use crate::deprecations::{Deprecation, NEWEST_MINOR};
use crate::snapshot::Snapshot;
use crate::subject::Subject;

const O: Pillar = Pillar::OperationalExcellence;

/// Every kind the deprecation table names, so the cluster path lists none of them needlessly:
/// the checks read what the snapshot recorded while reading the other kinds.
const READS: &[&str] = &[
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "CronJob",
    "Ingress",
    "NetworkPolicy",
    "PodDisruptionBudget",
    "HorizontalPodAutoscaler",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
];

fn target(s: &Snapshot) -> u32 {
    s.kubernetes_version.map_or(NEWEST_MINOR, |(_, minor)| minor)
}

fn each(s: &Snapshot, e: &mut Eval<'_>, problem: impl Fn(&Deprecation, u32) -> Option<String>) {
    let minor = target(s);
    for old in &s.old_api_versions {
        let d = old.deprecation;
        let subject = Subject::new(d.api_version, d.kind, &old.metadata);
        match problem(d, minor) {
            Some(message) => e.fail(subject, None, message),
            None => e.pass(subject),
        }
    }
}

pub static CHECKS: &[Check] = &[
    Check {
        id: "operational-excellence.removed-api-version",
        pillar: O,
        title: "API versions the target Kubernetes no longer serves",
        severity: Severity::High,
        rationale: "The API server refuses an object in a removed API version: applying the manifest fails after the upgrade (the most common upgrade blocker), and Helm cannot upgrade a release that holds one.",
        remediation: "Rewrite the object in the replacement apiVersion (kubectl convert helps), then re-apply it before upgrading.",
        reads: READS,
        run: Each(|s, e| {
            each(s, e, |d, minor| {
                d.removed_in.filter(|&r| r <= minor).map(|r| {
                    format!(
                        "{} {} was removed in Kubernetes 1.{r} (target 1.{minor}); use {}",
                        d.api_version, d.kind, d.replacement
                    )
                })
            })
        }),
    },
    Check {
        id: "operational-excellence.deprecated-api-version",
        pillar: O,
        title: "Deprecated API versions",
        severity: Severity::Low,
        rationale: "A deprecated API version still works but will be removed: moving now avoids a blocked upgrade later.",
        remediation: "Rewrite the object in the replacement apiVersion.",
        reads: READS,
        run: Each(|s, e| {
            each(s, e, |d, minor| {
                (d.deprecated_in <= minor && d.removed_in.is_none_or(|r| r > minor)).then(|| {
                    let removal = d.removed_in.map(|r| format!(", removed in 1.{r}")).unwrap_or_default();
                    format!(
                        "{} {} is deprecated since Kubernetes 1.{}{removal}; use {}",
                        d.api_version, d.kind, d.deprecated_in, d.replacement
                    )
                })
            })
        }),
    },
];

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::testing::*;

    fn cronjob(api_version: &str) -> serde_json::Value {
        json!({"apiVersion": api_version, "kind": "CronJob", "metadata": {"name": "c", "namespace": "shop"},
               "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": {"containers": []}}}}}})
    }

    #[test]
    fn removal_and_deprecation_follow_the_target_version() {
        let at = |minor: u32, id: &str| {
            let mut s = snapshot(&[cronjob("batch/v1beta1"), cronjob("batch/v1")]);
            s.kubernetes_version = Some((1, minor));
            let report =
                crate::engine::run(&s, &crate::Options { include_checks: vec![id.into()], ..Default::default() });
            (report.results[0].passed, report.results[0].failed.len())
        };
        assert_eq!(at(20, "operational-excellence.removed-api-version"), (1, 0));
        assert_eq!(at(20, "operational-excellence.deprecated-api-version"), (1, 0), "not yet deprecated in 1.20");
        assert_eq!(at(23, "operational-excellence.deprecated-api-version"), (0, 1));
        assert_eq!(at(25, "operational-excellence.removed-api-version"), (0, 1));
        assert_eq!(at(25, "operational-excellence.deprecated-api-version"), (1, 0), "removed, not merely deprecated");
    }

    #[test]
    fn the_last_applied_version_counts_in_the_cluster() {
        let applied = r#"{"apiVersion":"extensions/v1beta1","kind":"Ingress","metadata":{"name":"web"}}"#;
        let live = json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "web", "namespace": "shop", "annotations": {"kubectl.kubernetes.io/last-applied-configuration": applied}}, "spec": {}});
        assert_eq!(outcome("operational-excellence.removed-api-version", &[live]), (0, 1, 0));
    }
}
