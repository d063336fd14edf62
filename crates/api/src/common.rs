//! Enums and small types shared by several resources.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One of the six pillars of the Kubernetes Well-Architected Framework.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
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

    /// The name as the API writes it, and the prefix of its check ids.
    pub fn as_str(self) -> &'static str {
        match self {
            Pillar::Security => "security",
            Pillar::Reliability => "reliability",
            Pillar::PerformanceEfficiency => "performance-efficiency",
            Pillar::CostOptimization => "cost-optimization",
            Pillar::OperationalExcellence => "operational-excellence",
            Pillar::Sustainability => "sustainability",
        }
    }

    /// The name a person reads.
    pub fn title(self) -> &'static str {
        match self {
            Pillar::Security => "Security",
            Pillar::Reliability => "Reliability",
            Pillar::PerformanceEfficiency => "Performance Efficiency",
            Pillar::CostOptimization => "Cost Optimization",
            Pillar::OperationalExcellence => "Operational Excellence",
            Pillar::Sustainability => "Sustainability",
        }
    }
}

impl std::str::FromStr for Pillar {
    type Err = String;

    /// A pillar by its API name; the error lists the names.
    fn from_str(text: &str) -> Result<Pillar, String> {
        Pillar::ALL.into_iter().find(|p| p.as_str() == text).ok_or_else(|| {
            let names: Vec<String> = Pillar::ALL.iter().map(|p| format!("\"{}\"", p.as_str())).collect();
            format!("not a pillar; one of {}", names.join(", "))
        })
    }
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

impl Severity {
    /// All severities, most severe first.
    pub const ALL: [Severity; 5] =
        [Severity::Critical, Severity::High, Severity::Medium, Severity::Low, Severity::Info];

    /// The name as the API writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
            Severity::Info => "info",
        }
    }
}

impl std::str::FromStr for Severity {
    type Err = String;

    fn from_str(text: &str) -> Result<Severity, String> {
        Severity::ALL.into_iter().find(|s| s.as_str() == text).ok_or_else(|| format!("not a severity: {text:?}"))
    }
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
                "performance-efficiency",
                "cost-optimization",
                "operational-excellence",
                "sustainability"
            ]
        );
    }

    #[test]
    fn names_match_the_serialized_form_and_parse_back() {
        for p in Pillar::ALL {
            assert_eq!(serde_json::to_value(p).unwrap(), p.as_str());
            assert_eq!(p.as_str().parse::<Pillar>(), Ok(p));
        }
        for s in Severity::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
            assert_eq!(s.as_str().parse::<Severity>(), Ok(s));
        }
        assert!("speed".parse::<Pillar>().unwrap_err().contains("\"cost-optimization\""));
    }

    #[test]
    fn severities_order_from_most_to_least_severe() {
        assert!(Severity::Critical < Severity::High);
        assert!(Severity::Low < Severity::Info);
        assert_eq!(serde_json::to_value(Severity::Medium).unwrap(), "medium");
    }
}
