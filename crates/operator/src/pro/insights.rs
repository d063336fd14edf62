//! Insights as kube9-server sends them (obfuscated names) and as the OperatorStatus shows
//! them (real names): mapping back, cleaning and ordering.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube9_api::common::Severity;
use kube9_api::operator_status::{Insight, InsightObject, InsightState};
use kube9_privacy::Mapping;
use serde::Deserialize;

use kube9_privacy::names::{NAMESPACE, unmask};

use crate::base::printable;

/// The answer to an upload.
#[derive(Debug, Deserialize)]
pub struct MetricsAnswer {
    #[serde(default)]
    pub insights: Vec<ServerInsight>,
}

/// One insight as the server sends it; lenient, so one odd field does not lose the rest.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerInsight {
    pub id: String,
    #[serde(default)]
    pub object: Option<ServerObject>,
    #[serde(rename = "type", default)]
    pub insight_type: String,
    #[serde(default)]
    pub severity: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub recommendation: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub acknowledged_at: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub expires_at: Option<String>,
    #[serde(default)]
    pub confidence: Option<f64>,
    #[serde(default)]
    pub generation_method: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ServerObject {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub name: String,
}

/// Whether an id can be a key in the spec and a path segment of the acknowledge URL.
pub fn valid_id(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
}

/// One insight with real names where the mapping knows the mock ones.
pub fn map_back(insight: ServerInsight, mapping: &Mapping) -> Insight {
    let object = insight.object.unwrap_or(ServerObject { kind: String::new(), namespace: None, name: String::new() });
    let name = mapping.real(&object.name).filter(|(kind, _)| *kind == object.kind).map(|(_, real)| real.to_owned());
    let namespace = object
        .namespace
        .as_deref()
        .map(|ns| mapping.real(ns).filter(|(kind, _)| *kind == NAMESPACE).map(|(_, real)| real.to_owned()).ok_or(ns));
    let mapped = name.is_some() && !matches!(namespace, Some(Err(_)));
    let clean = |text: &str, max: usize| printable(&unmask(text, mapping), max);
    Insight {
        id: insight.id,
        object: InsightObject {
            kind: printable(&object.kind, 63),
            namespace: namespace.map(|ns| ns.unwrap_or_else(|mock| mock.to_owned())).map(|ns| printable(&ns, 253)),
            name: printable(&name.unwrap_or(object.name), 253),
        },
        mapped,
        insight_type: clean(&insight.insight_type, 100),
        severity: insight.severity.parse().unwrap_or(Severity::Info),
        title: clean(&insight.title, 200),
        text: clean(&insight.text, 2000),
        recommendation: clean(&insight.recommendation, 2000),
        status: state(&insight.status).unwrap_or(InsightState::Active),
        acknowledged_at: time(insight.acknowledged_at.as_deref()),
        created_at: time(insight.created_at.as_deref()),
        expires_at: time(insight.expires_at.as_deref()),
        confidence: insight.confidence.filter(|c| c.is_finite()).map(|c| c.clamp(0.0, 1.0)),
        generation_method: insight.generation_method.map(|m| printable(&m, 50)),
    }
}

/// An insight state as kube9-server spells it.
pub fn state(text: &str) -> Option<InsightState> {
    match text {
        "active" => Some(InsightState::Active),
        "acknowledged" => Some(InsightState::Acknowledged),
        "resolved" => Some(InsightState::Resolved),
        "dismissed" => Some(InsightState::Dismissed),
        _ => None,
    }
}

/// Most severe first, then newest first, then by id; at most `max`, and how many did not fit.
pub fn order(mut insights: Vec<Insight>, max: usize) -> (Vec<Insight>, u32) {
    insights.sort_by(|a, b| {
        a.severity
            .cmp(&b.severity)
            .then_with(|| b.created_at.as_ref().map(|t| t.0).cmp(&a.created_at.as_ref().map(|t| t.0)))
            .then_with(|| a.id.cmp(&b.id))
    });
    let omitted = insights.len().saturating_sub(max);
    insights.truncate(max);
    (insights, u32::try_from(omitted).unwrap_or(u32::MAX))
}

fn time(text: Option<&str>) -> Option<Time> {
    text?.parse().ok().map(Time)
}

#[cfg(test)]
mod tests {
    use kube9_privacy::Key;

    use super::*;

    fn mapping() -> Mapping {
        Mapping::build(&Key::from_bytes(&[3; 32]).unwrap(), [("Deployment", "checkout"), (NAMESPACE, "shop")])
    }

    fn server(id: &str, kind: &str, ns: Option<&str>, name: &str, severity: &str, created: &str) -> ServerInsight {
        serde_json::from_value(serde_json::json!({
            "id": id, "object": {"kind": kind, "namespace": ns, "name": name}, "type": "missing-resource-limits",
            "severity": severity, "title": "Containers without memory limits",
            "text": format!("{kind} {name} in {} has containers without memory limits.", ns.unwrap_or("-")),
            "recommendation": "Set limits.", "status": "active", "createdAt": created,
            "expiresAt": "2026-11-30T10:00:00Z", "confidence": 0.9, "generationMethod": "rules"
        }))
        .unwrap()
    }

    #[test]
    fn names_are_mapped_back_in_the_object_and_the_text() {
        let m = mapping();
        let (dep, ns) = (m.mock("Deployment", "checkout").unwrap(), m.mock(NAMESPACE, "shop").unwrap());
        let insight = map_back(server("ins_1", "Deployment", Some(ns), dep, "high", "2026-11-23T10:00:00Z"), &m);
        assert!(insight.mapped);
        assert_eq!(
            insight.object,
            InsightObject { kind: "Deployment".into(), namespace: Some("shop".into()), name: "checkout".into() }
        );
        assert_eq!(insight.text, "Deployment checkout in shop has containers without memory limits.");
        assert_eq!((insight.severity, insight.status), (Severity::High, InsightState::Active));
        assert_eq!(insight.confidence, Some(0.9));
    }

    #[test]
    fn an_insight_that_cannot_be_mapped_is_kept_and_marked() {
        let m = mapping();
        let ns = m.mock(NAMESPACE, "shop").unwrap();
        let insight = map_back(server("ins_2", "Deployment", Some(ns), "deployment-000000", "bogus", "not a time"), &m);
        assert!(!insight.mapped);
        assert_eq!(insight.object.name, "deployment-000000");
        assert_eq!(insight.object.namespace.as_deref(), Some("shop"));
        assert_eq!((insight.severity, insight.created_at), (Severity::Info, None));
        // A mock of the right shape but the wrong kind is not mapped either.
        let dep = m.mock("Deployment", "checkout").unwrap();
        assert!(!map_back(server("ins_3", "StatefulSet", None, dep, "low", "2026-11-23T10:00:00Z"), &m).mapped);
    }

    #[test]
    fn most_severe_then_newest_first_and_bounded() {
        let m = mapping();
        let all = vec![
            map_back(server("a", "Deployment", None, "x", "low", "2026-11-23T10:00:00Z"), &m),
            map_back(server("b", "Deployment", None, "x", "critical", "2026-11-20T10:00:00Z"), &m),
            map_back(server("c", "Deployment", None, "x", "critical", "2026-11-22T10:00:00Z"), &m),
            map_back(server("d", "Deployment", None, "x", "medium", "2026-11-23T10:00:00Z"), &m),
        ];
        let (kept, omitted) = order(all, 3);
        let ids: Vec<&str> = kept.iter().map(|i| i.id.as_str()).collect();
        assert_eq!((ids, omitted), (vec!["c", "b", "d"], 1));
    }

    #[test]
    fn hostile_text_is_cut_and_ids_must_be_url_safe() {
        let mut s = server("ins_4", "Deployment", None, "x", "high", "2026-11-23T10:00:00Z");
        s.title = format!("a\u{7}b{}", "x".repeat(500));
        let insight = map_back(s, &mapping());
        assert!(insight.title.starts_with("ab") && insight.title.chars().count() == 200);
        assert!(valid_id("ins_3f2a1b0c9d8e7f60"));
        assert!(!valid_id("../admin") && !valid_id("..") && !valid_id("") && !valid_id("a b"));
    }
}
