//! Scheduling and orchestration: gang scheduling, cluster autoscaling and Pod autoscaling on
//! custom metrics.

use kube9_api::ai_conformance::{Level, RequirementStatus as Status};

use super::finding::{Finding, describe_all, finding, named, served_groups, unmet, unreadable};
use crate::evidence::{Evidence, Seen, Workload};
use crate::solutions::{AUTOSCALERS, GANG_SCHEDULERS};

pub(super) fn gang_scheduling(level: Level, evidence: &Evidence) -> Finding {
    let served = match served_groups(evidence) {
        Ok(s) => s,
        Err(why) => return unreadable("the served API groups", why),
    };
    let workloads = read!(evidence.workloads, "Deployments, StatefulSets and DaemonSets");
    let mut broken = Vec::new();
    for s in GANG_SCHEDULERS {
        let groups = s.served_groups(&served);
        let controllers = s.workloads(workloads);
        if groups.is_empty() && controllers.is_empty() {
            continue;
        }
        // Kueue's controller shows itself by its work too: only it makes a ClusterQueue Active.
        let active: Vec<String> = match (&evidence.active_cluster_queues, groups.contains(&"kueue.x-k8s.io")) {
            (Seen::Read(queues), true) => queues.iter().map(|q| format!("ClusterQueue {q} Active")).collect(),
            _ => vec![],
        };
        let running: Vec<&&Workload> = controllers.iter().filter(|w| w.available).collect();
        let apis = if groups.is_empty() { String::new() } else { format!("{} served; ", groups.join(", ")) };
        let queues = if active.is_empty() { String::new() } else { format!("; {}", named(active.iter().cloned())) };
        if !running.is_empty() {
            let seen = describe_all(&controllers);
            return finding(
                Status::Passed,
                format!("{}: {apis}controller {}{queues}", s.name, named(seen.iter().cloned())),
                seen.into_iter().chain(active).collect(),
            );
        }
        if controllers.is_empty() && !active.is_empty() {
            return finding(
                Status::Passed,
                format!(
                    "{}: {apis}no controller Deployment in the cluster, but {}: a condition only its controller sets (it runs beside the cluster's workloads)",
                    s.name,
                    named(active.iter().cloned())
                ),
                active,
            );
        }
        broken.push(if controllers.is_empty() {
            format!("{}: {apis}but no controller Deployment runs in the cluster", s.name)
        } else {
            format!("{}: {apis}controller not available ({})", s.name, named(describe_all(&controllers)))
        });
    }
    if broken.is_empty() {
        return finding(
            unmet(level),
            "no gang scheduler is installed (looked for Kueue, Volcano, the coscheduling plugin and YuniKorn by their APIs and controllers)",
            vec![],
        );
    }
    finding(unmet(level), broken.join("; "), broken.clone())
}

pub(super) fn cluster_autoscaling(level: Level, evidence: &Evidence) -> Finding {
    let served = match served_groups(evidence) {
        Ok(s) => s,
        Err(why) => return unreadable("the served API groups", why),
    };
    let workloads = read!(evidence.workloads, "Deployments, StatefulSets and DaemonSets");
    let mut apis_only = Vec::new();
    for s in AUTOSCALERS {
        let controllers = s.workloads(workloads);
        let groups = s.served_groups(&served);
        if let Some(running) = controllers.iter().find(|w| w.available) {
            return finding(
                Status::Passed,
                format!(
                    "{} runs ({}); scaling accelerator node groups for pending Pods is not exercised",
                    s.name,
                    running.describe()
                ),
                describe_all(&controllers),
            );
        }
        if !controllers.is_empty() {
            return finding(
                unmet(level),
                format!("{} is installed but not available: {}", s.name, named(describe_all(&controllers))),
                describe_all(&controllers),
            );
        }
        if !groups.is_empty() {
            apis_only.push(format!("{} ({})", s.name, groups.join(", ")));
        }
    }
    let rationale = if apis_only.is_empty() {
        "no cluster autoscaler or Karpenter runs in the cluster; a managed autoscaler runs outside it: attest it (or that the platform provides none)".to_owned()
    } else {
        format!(
            "{} APIs are served but no controller runs in the cluster (a managed one runs outside it): attest it scales accelerator node groups",
            named(apis_only.iter().cloned())
        )
    };
    finding(Status::NeedsEvidence, rationale, apis_only)
}

pub(super) fn pod_autoscaling(level: Level, evidence: &Evidence) -> Finding {
    let services = read!(evidence.api_services, "APIServices");
    let metrics: Vec<_> = services
        .iter()
        .filter(|s| s.group == "custom.metrics.k8s.io" || s.group == "external.metrics.k8s.io")
        .collect();
    let seen: Vec<String> = metrics
        .iter()
        .map(|s| {
            format!("APIService {} ({})", s.name, if s.available == Some(true) { "Available" } else { "not Available" })
        })
        .collect();
    if metrics.iter().any(|s| s.available == Some(true)) {
        return finding(
            Status::Passed,
            format!(
                "HorizontalPodAutoscaler is served and a custom or external metrics API is available ({}); scaling accelerator Pods is not exercised",
                named(seen.iter().cloned())
            ),
            seen,
        );
    }
    if !metrics.is_empty() {
        return finding(
            unmet(level),
            format!("the metrics APIs are registered but not available: {}", named(seen.iter().cloned())),
            seen,
        );
    }
    finding(
        unmet(level),
        "no custom.metrics.k8s.io or external.metrics.k8s.io APIService: HorizontalPodAutoscalers can scale only on CPU and memory (install an adapter such as prometheus-adapter or KEDA)",
        vec![],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluate::fixtures::*;
    use crate::evidence::ApiService;

    #[test]
    fn gang_scheduling_needs_a_scheduler_whose_controller_is_available() {
        let (s, why) = status("gang_scheduling", Level::Must, &kueue(1));
        assert_eq!(s, Status::Passed);
        assert!(
            why.contains(
                "Kueue: kueue.x-k8s.io served; controller Deployment kueue-system/kueue-controller-manager (1/1 ready)"
            ),
            "{why}"
        );
        let (s, why) = status("gang_scheduling", Level::Must, &kueue(0));
        assert_eq!(s, Status::Failed);
        assert!(why.contains("controller not available"), "{why}");
        let crds_only = Evidence { workloads: Seen::Read(vec![]), ..kueue(1) };
        assert!(status("gang_scheduling", Level::Must, &crds_only).1.contains("no controller Deployment runs"));
        // A controller beside the cluster's workloads shows itself by the queues it activates.
        let beside = Evidence { active_cluster_queues: Seen::Read(vec!["team-a".into()]), ..crds_only.clone() };
        let (s, why) = status("gang_scheduling", Level::Must, &beside);
        assert_eq!(s, Status::Passed);
        assert!(why.contains("no controller Deployment in the cluster, but ClusterQueue team-a Active"), "{why}");
        let both = Evidence { active_cluster_queues: Seen::Read(vec!["team-a".into()]), ..kueue(1) };
        assert!(status("gang_scheduling", Level::Must, &both).1.ends_with("(1/1 ready); ClusterQueue team-a Active"));
        // Active queues of a group that is not served say nothing (a stale list).
        let stale = Evidence { groups: served(&[]), workloads: Seen::Read(vec![]), ..beside };
        assert_eq!(status("gang_scheduling", Level::Must, &stale).0, Status::Failed);
        let absent = Evidence { groups: served(&[]), workloads: Seen::Read(vec![]), ..without_gpus() };
        let (s, why) = status("gang_scheduling", Level::Must, &absent);
        assert_eq!(s, Status::Failed);
        assert!(why.contains("no gang scheduler is installed"), "{why}");
        let volcano = Evidence {
            groups: served(&[("scheduling.volcano.sh", group(&[("v1beta1", &[])]))]),
            workloads: Seen::Read(vec![workload(
                "Deployment",
                "volcano-system",
                "volcano-scheduler",
                "volcanosh/vc-scheduler:v1.12",
                1,
                1,
            )]),
            ..without_gpus()
        };
        assert!(status("gang_scheduling", Level::Must, &volcano).1.starts_with("Volcano"));
        let unreadable = Evidence { workloads: Seen::Unreadable("forbidden".into()), ..kueue(1) };
        assert_eq!(status("gang_scheduling", Level::Must, &unreadable).0, Status::NotEvaluated);
    }

    #[test]
    fn cluster_autoscaling_passes_on_a_running_autoscaler_and_otherwise_needs_a_person() {
        let running = Evidence {
            groups: served(&[]),
            workloads: Seen::Read(vec![workload(
                "Deployment",
                "kube-system",
                "cluster-autoscaler",
                "registry.k8s.io/autoscaling/cluster-autoscaler:v1.33.0",
                1,
                1,
            )]),
            ..without_gpus()
        };
        assert_eq!(status("cluster_autoscaling", Level::Must, &running).0, Status::Passed);
        let broken = Evidence {
            groups: served(&[]),
            workloads: Seen::Read(vec![workload(
                "Deployment",
                "karpenter",
                "karpenter",
                "public.ecr.aws/karpenter/controller:1.5",
                2,
                0,
            )]),
            ..without_gpus()
        };
        assert_eq!(status("cluster_autoscaling", Level::Must, &broken).0, Status::Failed);
        let managed = Evidence { groups: served(&[("karpenter.sh", group(&[("v1", &[])]))]), ..without_gpus() };
        let (s, why) = status("cluster_autoscaling", Level::Must, &managed);
        assert_eq!(s, Status::NeedsEvidence);
        assert!(why.contains("Karpenter (karpenter.sh)"), "{why}");
        assert_eq!(
            status("cluster_autoscaling", Level::Must, &Evidence { groups: served(&[]), ..without_gpus() }).0,
            Status::NeedsEvidence
        );
    }

    #[test]
    fn pod_autoscaling_needs_an_available_custom_or_external_metrics_api() {
        let api = |available| {
            Seen::Read(vec![ApiService {
                name: "v1beta1.custom.metrics.k8s.io".into(),
                group: "custom.metrics.k8s.io".into(),
                aggregated: true,
                available,
            }])
        };
        assert_eq!(
            status("pod_autoscaling", Level::Must, &Evidence { api_services: api(Some(true)), ..without_gpus() }).0,
            Status::Passed
        );
        let (s, why) =
            status("pod_autoscaling", Level::Must, &Evidence { api_services: api(Some(false)), ..without_gpus() });
        assert_eq!(s, Status::Failed);
        assert!(why.contains("v1beta1.custom.metrics.k8s.io (not Available)"), "{why}");
        let (s, why) = status("pod_autoscaling", Level::Must, &without_gpus());
        assert_eq!(s, Status::Failed);
        assert!(why.contains("only on CPU and memory"), "{why}");
    }
}
