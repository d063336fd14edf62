//! Networking: inference behind Gateway API, the Inference Extension's InferencePools,
//! high-performance networking and disaggregated serving.

use kube9_api::ai_conformance::{Level, RequirementStatus as Status};

use super::finding::{Finding, finding, named, unmet, unreadable};
use crate::evidence::Evidence;

/// Accepted GatewayClasses, or the finding when Gateway API is not usable.
fn accepted_gateway_classes(level: Level, evidence: &Evidence) -> Result<Vec<String>, Finding> {
    const KINDS: [&str; 3] = ["GatewayClass", "Gateway", "HTTPRoute"];
    let groups = evidence.groups.as_ref().map_err(|why| unreadable("the served API groups", why))?;
    let Some(group) = groups.get("gateway.networking.k8s.io") else {
        return Err(finding(
            unmet(level),
            "the cluster does not serve Gateway API (gateway.networking.k8s.io): install its CRDs and an implementation",
            vec![],
        ));
    };
    if let Some(error) = &group.error {
        return Err(unreadable("the kinds of gateway.networking.k8s.io", error));
    }
    let Some(version) = group.version_serving(&KINDS) else {
        return Err(finding(
            unmet(level),
            format!(
                "gateway.networking.k8s.io ({}) does not serve GatewayClass, Gateway and HTTPRoute",
                group.versions.join(", ")
            ),
            vec![],
        ));
    };
    let classes = evidence.gateway_classes.as_ref().map_err(|why| unreadable("GatewayClasses", why))?;
    let accepted: Vec<String> = classes
        .iter()
        .filter(|c| c.accepted == Some(true))
        .map(|c| format!("GatewayClass {} ({})", c.name, c.controller))
        .collect();
    if accepted.is_empty() {
        let why = if classes.is_empty() {
            "no GatewayClass exists: no implementation is installed".to_owned()
        } else {
            format!(
                "no GatewayClass is Accepted by its controller ({})",
                named(classes.iter().map(|c| format!(
                    "{}: {}",
                    c.name,
                    c.accepted.map_or("no condition", |_| "not accepted")
                )))
            )
        };
        return Err(finding(unmet(level), format!("Gateway API is served ({version}) but {why}"), vec![]));
    }
    Ok(accepted)
}

pub(super) fn ai_inference(level: Level, evidence: &Evidence) -> Finding {
    match accepted_gateway_classes(level, evidence) {
        Ok(accepted) => finding(
            Status::Passed,
            format!(
                "Gateway API is served and {} accepted; weighted and header-based routing are Gateway API features (not exercised)",
                named(accepted.iter().cloned())
            ),
            accepted,
        ),
        Err(f) => f,
    }
}

pub(super) fn advanced_inference_ingress(level: Level, evidence: &Evidence) -> Finding {
    let groups = read!(evidence.groups, "the served API groups");
    let pool = ["inference.networking.k8s.io", "inference.networking.x-k8s.io"]
        .into_iter()
        .find_map(|g| groups.get(g).filter(|group| group.all_kinds().contains("InferencePool")).map(|_| g));
    let Some(pool) = pool else {
        return finding(
            unmet(level),
            "the cluster does not serve InferencePool (Gateway API Inference Extension is not installed)",
            vec![],
        );
    };
    match accepted_gateway_classes(level, evidence) {
        Ok(accepted) => finding(
            Status::Passed,
            format!("{pool} serves InferencePool and {} accepted", named(accepted.iter().cloned())),
            accepted,
        ),
        Err(f) => finding(unmet(level), format!("{pool} serves InferencePool, but {}", f.rationale), vec![]),
    }
}

pub(super) fn high_performance_networking(evidence: &Evidence) -> Finding {
    let groups = read!(evidence.groups, "the served API groups");
    let mut signs = Vec::new();
    if groups.contains_key("k8s.cni.cncf.io") {
        signs.push("k8s.cni.cncf.io (NetworkAttachmentDefinition: extra Pod interfaces) is served".to_owned());
    }
    if let Ok(drivers) = evidence.dra_drivers.as_ref() {
        signs.extend(drivers.iter().filter(|d| d.contains("net")).map(|d| format!("DRA driver {d} publishes devices")));
    }
    if signs.is_empty() {
        return finding(
            Status::NeedsEvidence,
            "no multi-network API or DRA network driver is visible; attest whether high-performance networking is needed and offered",
            vec![],
        );
    }
    finding(Status::Passed, signs.join("; "), signs)
}

pub(super) fn disaggregated_inference(evidence: &Evidence) -> Finding {
    let groups = read!(evidence.groups, "the served API groups");
    let crds = evidence.crds.as_ref().ok();
    let kinds = ["DynamoGraphDeployment", "LLMInferenceService"];
    let mut signs: Vec<String> = crds
        .into_iter()
        .flatten()
        .filter(|c| kinds.contains(&c.kind.as_str()) || c.group == "llm-d.ai")
        .map(|c| format!("CRD {}", c.name))
        .collect();
    if signs.is_empty() && groups.contains_key("llm-d.ai") {
        signs.push("llm-d.ai is served".into());
    }
    if signs.is_empty() {
        return finding(
            Status::NeedsEvidence,
            "no disaggregated serving stack (Dynamo, llm-d, KServe LLMInferenceService) is installed; attest a prefill/decode deployment if one runs",
            vec![],
        );
    }
    finding(
        Status::Passed,
        format!(
            "a disaggregated serving stack is installed ({}); separate prefill and decode are not exercised",
            named(signs.iter().cloned())
        ),
        signs,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluate::fixtures::*;
    use crate::evidence::{GatewayClass, Seen};

    #[test]
    fn ai_inference_needs_gateway_api_and_an_accepted_gateway_class() {
        let classes = |accepted: Option<bool>| {
            Seen::Read(vec![GatewayClass {
                name: "eg".into(),
                controller: "gateway.envoyproxy.io/gatewayclass-controller".into(),
                accepted,
            }])
        };
        let gateway = served(&[("gateway.networking.k8s.io", group(&[("v1", GATEWAY)]))]);
        let present = Evidence { groups: gateway.clone(), gateway_classes: classes(Some(true)), ..without_gpus() };
        let (s, why) = status("ai_inference", Level::Must, &present);
        assert_eq!(s, Status::Passed);
        assert!(why.contains("GatewayClass eg (gateway.envoyproxy.io/gatewayclass-controller)"), "{why}");
        let absent = Evidence { groups: served(&[]), ..without_gpus() };
        assert!(status("ai_inference", Level::Must, &absent).1.contains("does not serve Gateway API"));
        let broken = Evidence { groups: gateway.clone(), gateway_classes: classes(Some(false)), ..without_gpus() };
        let (s, why) = status("ai_inference", Level::Must, &broken);
        assert_eq!(s, Status::Failed);
        assert!(why.contains("no GatewayClass is Accepted"), "{why}");
        let none = Evidence { groups: gateway.clone(), gateway_classes: Seen::Read(vec![]), ..without_gpus() };
        assert!(status("ai_inference", Level::Must, &none).1.contains("no GatewayClass exists"));
        let forbidden =
            Evidence { groups: gateway, gateway_classes: Seen::Unreadable("forbidden".into()), ..without_gpus() };
        assert_eq!(status("ai_inference", Level::Must, &forbidden).0, Status::NotEvaluated);
    }

    #[test]
    fn advanced_inference_ingress_needs_inference_pools_behind_an_accepted_gateway() {
        let classes =
            Seen::Read(vec![GatewayClass { name: "gke-l7".into(), controller: "c".into(), accepted: Some(true) }]);
        let both = Evidence {
            groups: served(&[
                ("gateway.networking.k8s.io", group(&[("v1", GATEWAY)])),
                ("inference.networking.k8s.io", group(&[("v1", &["InferencePool"])])),
            ]),
            gateway_classes: classes,
            ..without_gpus()
        };
        assert_eq!(status("advanced_inference_ingress", Level::Should, &both).0, Status::Passed);
        let pools_only = Evidence {
            groups: served(&[(
                "inference.networking.x-k8s.io",
                group(&[("v1alpha2", &["InferencePool", "InferenceModel"])]),
            )]),
            ..without_gpus()
        };
        let (s, why) = status("advanced_inference_ingress", Level::Should, &pools_only);
        assert_eq!(s, Status::Warning);
        assert!(why.contains("serves InferencePool, but"), "{why}");
        assert_eq!(
            status("advanced_inference_ingress", Level::Should, &Evidence { groups: served(&[]), ..without_gpus() }).0,
            Status::Warning
        );
    }

    #[test]
    fn networking_and_disaggregated_serving_pass_on_their_apis_and_otherwise_need_a_person() {
        let multus = Evidence { groups: served(&[("k8s.cni.cncf.io", group(&[("v1", &[])]))]), ..without_gpus() };
        assert_eq!(status("high_performance_networking", Level::Should, &multus).0, Status::Passed);
        let dranet =
            Evidence { groups: served(&[]), dra_drivers: Seen::Read(["dra.net".to_owned()].into()), ..without_gpus() };
        assert_eq!(status("high_performance_networking", Level::Should, &dranet).0, Status::Passed);
        assert_eq!(
            status("high_performance_networking", Level::Should, &Evidence { groups: served(&[]), ..without_gpus() }).0,
            Status::NeedsEvidence
        );
        let dynamo = Evidence {
            groups: served(&[("nvidia.com", group(&[("v1alpha1", &[])]))]),
            crds: Seen::Read(vec![crd("nvidia.com", "DynamoGraphDeployment", true)]),
            ..without_gpus()
        };
        assert_eq!(status("disaggregated_inference", Level::Should, &dynamo).0, Status::Passed);
        assert_eq!(
            status("disaggregated_inference", Level::Should, &Evidence { groups: served(&[]), ..without_gpus() }).0,
            Status::NeedsEvidence
        );
    }
}
