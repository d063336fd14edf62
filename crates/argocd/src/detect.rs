//! Whether Argo CD is here: `applications.argoproj.io` served and an argocd-server Deployment
//! present; its namespace and version.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

/// The CRD whose presence means Applications can exist.
pub const APPLICATIONS_CRD: &str = "applications.argoproj.io";
/// The label Argo CD's manifests and chart put on the argocd-server Deployment.
pub const SERVER_SELECTOR: &str = "app.kubernetes.io/name=argocd-server";

/// Whether the CRD is established and serves a version.
pub fn crd_served(crd: &CustomResourceDefinition) -> bool {
    let established = crd
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Established" && c.status == "True"));
    established && crd.metadata.deletion_timestamp.is_none() && crd.spec.versions.iter().any(|v| v.served)
}

/// An argocd-server Deployment.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Server {
    pub namespace: String,
    pub name: String,
    pub version: Option<String>,
}

impl Server {
    /// The server a Deployment is; its version from the argocd-server container's image tag
    /// (the first container's when none is so named), else its `app.kubernetes.io/version` label.
    pub fn of(d: &Deployment) -> Server {
        let containers = d.spec.as_ref().and_then(|s| s.template.spec.as_ref()).map(|s| s.containers.as_slice());
        let containers = containers.unwrap_or_default();
        let container = containers.iter().find(|c| c.name == "argocd-server").or(containers.first());
        let tag = container.and_then(|c| c.image.as_deref()).and_then(image_tag);
        let label = d.metadata.labels.as_ref().and_then(|l| l.get("app.kubernetes.io/version")).cloned();
        Server {
            namespace: d.metadata.namespace.clone().unwrap_or_default(),
            name: d.metadata.name.clone().unwrap_or_default(),
            version: tag.or(label).filter(|v| !v.is_empty()),
        }
    }
}

/// The tag of an image reference (`quay.io/argoproj/argocd:v3.1.0` → `v3.1.0`), ignoring a
/// digest; None without one, or for `latest`, which names no version.
pub fn image_tag(image: &str) -> Option<String> {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    let (_, tag) = last.split_once(':')?;
    (!tag.is_empty() && tag != "latest").then(|| tag.to_owned())
}

/// What detection says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Detection {
    pub detected: bool,
    pub namespace: Option<String>,
    pub version: Option<String>,
}

/// Detected when the CRD is served and a server exists. With several servers, the one in
/// `preferred` (the configured namespace) wins, then the first by namespace and name.
pub fn decide(crd_served: bool, servers: &[Server], preferred: Option<&str>) -> Detection {
    let mut sorted: Vec<&Server> = servers.iter().collect();
    sorted.sort();
    let chosen = sorted.iter().find(|s| Some(s.namespace.as_str()) == preferred).or(sorted.first());
    match chosen {
        Some(server) if crd_served => {
            Detection { detected: true, namespace: Some(server.namespace.clone()), version: server.version.clone() }
        }
        // Without the CRD, a server alone is not Argo CD at work; say where it is anyway.
        Some(server) => Detection { detected: false, namespace: Some(server.namespace.clone()), version: None },
        None => Detection::default(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn deployment(image: &str, label: Option<&str>) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "argocd-server", "namespace": "argocd",
                "labels": label.map(|v| json!({"app.kubernetes.io/name": "argocd-server", "app.kubernetes.io/version": v}))},
            "spec": {"selector": {}, "template": {"spec": {"containers": [
                {"name": "sidecar", "image": "busybox:1.36"},
                {"name": "argocd-server", "image": image}]}}}
        }))
        .unwrap()
    }

    #[test]
    fn the_version_comes_from_the_image_tag_then_the_label() {
        assert_eq!(
            Server::of(&deployment("quay.io/argoproj/argocd:v3.1.5", Some("v3.0.0"))).version.as_deref(),
            Some("v3.1.5")
        );
        assert_eq!(
            Server::of(&deployment("quay.io/argoproj/argocd@sha256:abc", Some("v3.0.0"))).version.as_deref(),
            Some("v3.0.0")
        );
        assert_eq!(Server::of(&deployment("localhost:5000/argocd", None)).version, None, "a registry port is no tag");
        assert_eq!(image_tag("localhost:5000/argocd:v2.14.0@sha256:abc").as_deref(), Some("v2.14.0"));
        assert_eq!(image_tag("argocd:latest"), None);
    }

    #[test]
    fn detection_needs_both_the_crd_and_a_server() {
        let server =
            Server { namespace: "argocd".into(), name: "argocd-server".into(), version: Some("v3.1.5".into()) };
        let on = decide(true, std::slice::from_ref(&server), None);
        assert_eq!(
            (on.detected, on.namespace.as_deref(), on.version.as_deref()),
            (true, Some("argocd"), Some("v3.1.5"))
        );
        assert!(!decide(false, std::slice::from_ref(&server), None).detected);
        assert_eq!(decide(true, &[], None), Detection::default());
        let other = Server { namespace: "gitops".into(), ..server.clone() };
        assert_eq!(decide(true, &[other.clone(), server.clone()], None).namespace.as_deref(), Some("argocd"));
        assert_eq!(decide(true, &[server, other], Some("gitops")).namespace.as_deref(), Some("gitops"));
    }
}
