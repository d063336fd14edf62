//! Enums and small types shared by several resources.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One of the six pillars of the Kubernetes Well-Architected Framework.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Pillar {
    /// Protecting workloads, data and the control plane.
    Security,
    /// Keeping workloads available through failures and change.
    Reliability,
    /// Using resources to meet demand as it changes.
    PerformanceEfficiency,
    /// Paying only for what is needed.
    CostOptimization,
    /// Running, observing and changing workloads safely.
    OperationalExcellence,
    /// Using less energy and hardware for the same work.
    Sustainability,
}

impl Pillar {
    /// All pillars, in the order the framework lists them.
    pub const ALL: [Pillar; 6] = [
        Pillar::Security,
        Pillar::Reliability,
        Pillar::PerformanceEfficiency,
        Pillar::CostOptimization,
        Pillar::OperationalExcellence,
        Pillar::Sustainability,
    ];
}

/// How much a failed check matters, most severe first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Exploitable or outage-causing now.
    Critical,
    /// Should be fixed soon.
    High,
    /// Worth fixing.
    Medium,
    /// Minor.
    Low,
    /// For information only.
    Info,
}

/// Schema for a `conditions` list: a list-map keyed by `type`, so server-side apply merges
/// conditions one by one instead of replacing the whole list.
pub(crate) fn conditions_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut schema = generator.subschema_for::<Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>>();
    schema.insert("x-kubernetes-list-type".into(), "map".into());
    schema.insert("x-kubernetes-list-map-keys".into(), serde_json::json!(["type"]));
    schema
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pillars_serialize_as_the_check_id_prefix() {
        let names: Vec<String> =
            Pillar::ALL.iter().map(|p| serde_json::to_value(p).unwrap().as_str().unwrap().to_owned()).collect();
        assert_eq!(
            names,
            [
                "security",
                "reliability",
                "performanceEfficiency",
                "costOptimization",
                "operationalExcellence",
                "sustainability"
            ]
        );
    }

    #[test]
    fn severities_order_from_most_to_least_severe() {
        assert!(Severity::Critical < Severity::High);
        assert!(Severity::Low < Severity::Info);
        assert_eq!(serde_json::to_value(Severity::Medium).unwrap(), "medium");
    }
}
