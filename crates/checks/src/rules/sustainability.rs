//! Sustainability: not keeping capacity, Pods and history that nobody uses.

use kube9_api::common::{Pillar, Severity};

use crate::check::Check;
use crate::check::Run::Each;
use crate::snapshot::{WorkloadKind, scales};
use crate::subject::Subject;

const S: Pillar = Pillar::Sustainability;

pub static CHECKS: &[Check] = &[
    Check {
        id: "sustainability.job-cleanup",
        pillar: S,
        title: "Finished Jobs kept forever",
        severity: Severity::Low,
        rationale: "Without ttlSecondsAfterFinished, finished Jobs and their Pods stay in etcd and on the API server's lists.",
        remediation: "Set ttlSecondsAfterFinished (for example 3600) on Jobs and CronJob job templates.",
        reads: &["Job", "CronJob"],
        run: Each(|s, e| {
            for w in s.workloads.iter().filter(|w| matches!(w.kind, WorkloadKind::Job | WorkloadKind::CronJob)) {
                // CronJobs clean up through their history limits too; a Job has nothing else.
                let cleaned = w.ttl_seconds_after_finished.is_some() || w.kind == WorkloadKind::CronJob;
                e.expect(
                    cleaned,
                    Subject::new(w.kind.api_version(), w.kind.as_str(), &w.metadata),
                    None,
                    "has no ttlSecondsAfterFinished",
                );
            }
        }),
    },
    Check {
        id: "sustainability.cron-history",
        pillar: S,
        title: "Long CronJob history",
        severity: Severity::Info,
        rationale: "Every Job a CronJob keeps holds its Pods and logs; more than a few is rarely read.",
        remediation: "Keep successfulJobsHistoryLimit at 3 or fewer and failedJobsHistoryLimit at 1 to 3.",
        reads: &["CronJob"],
        run: Each(|s, e| {
            for w in s.workloads.iter().filter(|w| w.kind == WorkloadKind::CronJob) {
                let cron = w.cron.clone().unwrap_or_default();
                let kept =
                    cron.successful_jobs_history_limit.unwrap_or(3) + cron.failed_jobs_history_limit.unwrap_or(1);
                e.expect(
                    kept <= 6,
                    Subject::new("batch/v1", "CronJob", &w.metadata),
                    None,
                    format!("keeps up to {kept} finished Jobs"),
                );
            }
        }),
    },
    Check {
        id: "sustainability.cron-overlap",
        pillar: S,
        title: "CronJob runs may pile up",
        severity: Severity::Low,
        rationale: "concurrencyPolicy Allow (the default) starts a new run even when the last one is still going, multiplying load.",
        remediation: "Set concurrencyPolicy: Forbid (or Replace), and a startingDeadlineSeconds.",
        reads: &["CronJob"],
        run: Each(|s, e| {
            for w in s.workloads.iter().filter(|w| w.kind == WorkloadKind::CronJob) {
                let policy = w.cron.as_ref().and_then(|c| c.concurrency_policy.clone());
                e.expect(
                    matches!(policy.as_deref(), Some("Forbid" | "Replace")),
                    Subject::new("batch/v1", "CronJob", &w.metadata),
                    None,
                    "allows overlapping runs",
                );
            }
        }),
    },
    Check {
        id: "sustainability.fixed-capacity",
        pillar: S,
        title: "Peak capacity around the clock",
        severity: Severity::Info,
        rationale: "A workload with 3 or more fixed replicas and no autoscaler runs its peak capacity at night too.",
        remediation: "Add a HorizontalPodAutoscaler so replicas follow demand.",
        reads: &["Deployment", "StatefulSet", "HorizontalPodAutoscaler"],
        run: Each(|s, e| {
            for w in s.workloads.iter().filter(|w| w.replicas.unwrap_or(0) >= 3) {
                let (namespace, name) = (w.metadata.namespace.as_deref(), w.metadata.name.as_deref());
                let scaled = s.hpas.iter().any(|h| scales(h, w.kind, namespace, name));
                e.expect(
                    scaled,
                    Subject::new(w.kind.api_version(), w.kind.as_str(), &w.metadata),
                    None,
                    format!("runs {} replicas with no autoscaler", w.replicas.unwrap_or(0)),
                );
            }
        }),
    },
    Check {
        id: "sustainability.revision-history",
        pillar: S,
        title: "Long rollout history",
        severity: Severity::Info,
        rationale: "Each kept revision is an old ReplicaSet or ControllerRevision the API server stores and lists.",
        remediation: "Set revisionHistoryLimit to 3-5; the default of 10 is more than rollbacks need.",
        reads: &["Deployment", "StatefulSet", "DaemonSet"],
        run: Each(|s, e| {
            for w in s.workloads.iter().filter(|w| {
                matches!(w.kind, WorkloadKind::Deployment | WorkloadKind::StatefulSet | WorkloadKind::DaemonSet)
            }) {
                let kept = w.revision_history_limit.unwrap_or(10);
                e.expect(
                    kept <= 5,
                    Subject::new(w.kind.api_version(), w.kind.as_str(), &w.metadata),
                    None,
                    format!("keeps {kept} old revisions"),
                );
            }
        }),
    },
];

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::CHECKS;
    use crate::testing::*;

    fn job(extra: serde_json::Value) -> serde_json::Value {
        merge(
            json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "report", "namespace": "shop"},
                     "spec": {"template": {"spec": pod_spec(json!({"restartPolicy": "Never"}))}}}),
            extra,
        )
    }

    fn cron(extra: serde_json::Value) -> serde_json::Value {
        merge(
            json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "nightly", "namespace": "shop"},
                     "spec": {"schedule": "0 2 * * *", "concurrencyPolicy": "Forbid", "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 1,
                              "jobTemplate": {"spec": {"template": {"spec": pod_spec(json!({"restartPolicy": "Never"}))}}}}}),
            extra,
        )
    }

    #[test]
    fn every_sustainability_check_flags_its_fixture_and_passes_a_good_one() {
        let good = deployment_with_container(json!({}));
        let hpa = json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web", "namespace": "shop"},
                         "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "minReplicas": 2, "maxReplicas": 6}});
        let cases: Vec<Case> = vec![
            (
                "sustainability.job-cleanup",
                vec![job(json!({}))],
                vec![job(json!({"spec": {"ttlSecondsAfterFinished": 3600}}))],
            ),
            (
                "sustainability.cron-history",
                vec![cron(json!({"spec": {"successfulJobsHistoryLimit": 20}}))],
                vec![cron(json!({}))],
            ),
            (
                "sustainability.cron-overlap",
                vec![cron(json!({"spec": {"concurrencyPolicy": "Allow"}}))],
                vec![cron(json!({}))],
            ),
            ("sustainability.fixed-capacity", vec![good.clone()], vec![good.clone(), hpa]),
            (
                "sustainability.revision-history",
                vec![deployment(pod_spec(json!({})), json!({"spec": {"revisionHistoryLimit": null}}))],
                vec![good],
            ),
        ];
        every_check_flags_and_passes(CHECKS, cases);
    }
}
