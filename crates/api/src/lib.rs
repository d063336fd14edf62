//! Custom resource types of the kube9.io API group, and the enums they share.
//!
//! Everything here is plain data: no I/O, no clients. The CRD YAML in `crds/` is generated
//! from these types by `cargo xtask crdgen` and never edited by hand.

pub mod ai_conformance;
pub mod argocd;
pub mod assessment;
pub mod common;
pub mod legacy;
pub mod operator_status;
pub mod text;
pub mod time;

pub use assessment::{Assessment, AssessmentSpec, AssessmentStatus};
pub use common::{Pillar, Severity};
pub use operator_status::{OperatorStatus, OperatorStatusSpec, OperatorStatusStatus};

/// The API group of every kube9 custom resource.
pub const GROUP: &str = "kube9.io";
/// The API version served for every kube9 custom resource.
pub const VERSION: &str = "v1alpha1";

/// Every CustomResourceDefinition this crate defines, in the order they are written to disk.
pub fn crds() -> Vec<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> {
    use kube::CustomResourceExt;
    vec![OperatorStatus::crd(), Assessment::crd()]
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    /// Walks a schema and reports every place a structural schema forbids: references,
    /// unions at the top of a node, and nodes without a type (other than the documented
    /// escape hatches).
    fn structural_violations(path: &str, node: &Value, out: &mut Vec<String>) {
        let Some(map) = node.as_object() else { return };
        for key in ["$ref", "anyOf", "oneOf", "allOf", "not", "definitions", "$defs"] {
            if map.contains_key(key) {
                out.push(format!("{path}: has {key}"));
            }
        }
        let escape =
            map.contains_key("x-kubernetes-int-or-string") || map.contains_key("x-kubernetes-preserve-unknown-fields");
        if !map.contains_key("type") && !escape {
            out.push(format!("{path}: has no type"));
        }
        // A null among an enum's values is refused by the API server (1.20) with a confusing
        // "per-version schemas" error; `nullable` says it instead.
        if map.get("enum").and_then(Value::as_array).is_some_and(|values| values.iter().any(Value::is_null)) {
            out.push(format!("{path}: null in an enum"));
        }
        if let Some(props) = map.get("properties").and_then(Value::as_object) {
            for (name, child) in props {
                structural_violations(&format!("{path}.{name}"), child, out);
            }
        }
        if let Some(items) = map.get("items") {
            structural_violations(&format!("{path}[]"), items, out);
        }
        if let Some(extra) = map.get("additionalProperties").filter(|v| v.is_object()) {
            structural_violations(&format!("{path}{{}}"), extra, out);
        }
    }

    #[test]
    fn every_crd_schema_is_structural() {
        for crd in super::crds() {
            let json = serde_json::to_value(&crd).unwrap();
            for version in json["spec"]["versions"].as_array().unwrap() {
                let schema = &version["schema"]["openAPIV3Schema"];
                let mut violations = Vec::new();
                structural_violations("", schema, &mut violations);
                assert!(violations.is_empty(), "{}: {violations:#?}", crd.metadata.name.clone().unwrap());
            }
        }
    }

    #[test]
    fn both_crds_are_cluster_scoped_with_a_status_subresource() {
        for crd in super::crds() {
            assert_eq!(crd.spec.scope, "Cluster");
            assert_eq!(crd.spec.group, super::GROUP);
            let version = &crd.spec.versions[0];
            assert_eq!(version.name, super::VERSION);
            assert!(version.subresources.as_ref().and_then(|s| s.status.as_ref()).is_some());
            assert!(!crd.spec.names.short_names.clone().unwrap_or_default().is_empty());
        }
    }

    #[test]
    fn enumerated_fields_are_enums_in_the_schema() {
        let json = serde_json::to_value(<super::OperatorStatus as kube::CustomResourceExt>::crd()).unwrap();
        let status = &json["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"];
        assert_eq!(status["mode"]["enum"], serde_json::json!(["operated", "enabled"]));
        assert_eq!(status["tier"]["enum"], serde_json::json!(["free", "pro"]));
        assert_eq!(status["health"]["enum"], serde_json::json!(["healthy", "degraded", "unhealthy"]));
    }
}
