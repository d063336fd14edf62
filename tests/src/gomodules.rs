//! Other projects' CRDs, read from their published Go modules (`go mod download -json`, from the
//! Go module proxy into Go's module cache; nothing is copied into this repository):
//! openreports.io from `github.com/openreports/reports-api`, wgpolicyk8s.io v1alpha2 from
//! Kyverno's module (which ships the policy working group's CRDs), and Trivy Operator's from
//! `github.com/aquasecurity/trivy-operator`. `cargo xtask ci` downloads them before the tests.
//! Installing and removing them is cluster-wide: the tests that do hold the operator lock.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, Patch, PatchParams};

use crate::wait_for;

/// A set of CRD files in a Go module.
#[derive(Clone, Copy, Debug)]
pub struct CrdSet {
    pub module: &'static str,
    pub version: &'static str,
    /// Files inside the module.
    pub files: &'static [&'static str],
}

/// openreports.io/v1alpha1 Report and ClusterReport.
pub const OPENREPORTS: CrdSet = CrdSet {
    module: "github.com/openreports/reports-api",
    version: "v0.2.1",
    files: &["config/crd/openreports.io_reports.yaml", "config/crd/openreports.io_clusterreports.yaml"],
};

/// wgpolicyk8s.io/v1alpha2 PolicyReport and ClusterPolicyReport, as Kyverno ships them.
pub const POLICY_REPORTS: CrdSet = CrdSet {
    module: "github.com/kyverno/kyverno",
    version: "v1.19.1",
    files: &[
        "config/crds/policyreport/wgpolicyk8s.io_policyreports.yaml",
        "config/crds/policyreport/wgpolicyk8s.io_clusterpolicyreports.yaml",
    ],
};

/// Trivy Operator's VulnerabilityReport.
pub const TRIVY_OPERATOR: CrdSet = CrdSet {
    module: "github.com/aquasecurity/trivy-operator",
    version: "v0.29.0",
    files: &["deploy/helm/crds/aquasecurity.github.io_vulnerabilityreports.yaml"],
};

/// The module's directory in Go's module cache (downloaded through the proxy the first time).
pub fn module_dir(module: &str, version: &str) -> Result<PathBuf> {
    let go = if std::path::Path::new("/usr/local/go/bin/go").is_file() { "/usr/local/go/bin/go" } else { "go" };
    let out = std::process::Command::new(go)
        .args(["mod", "download", "-json", &format!("{module}@{version}")])
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-mod=mod")
        .output()
        .context("running go mod download (Go is needed for the other projects' CRDs)")?;
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("go mod download {module}@{version}: {}", String::from_utf8_lossy(&out.stderr)))?;
    if let Some(error) = json["Error"].as_str() {
        bail!("go mod download {module}@{version}: {error}");
    }
    json["Dir"].as_str().map(PathBuf::from).context("go mod download printed no Dir")
}

/// The CRDs of `set`, parsed.
pub fn crds(set: &CrdSet) -> Result<Vec<CustomResourceDefinition>> {
    let dir = module_dir(set.module, set.version)?;
    set.files
        .iter()
        .map(|file| {
            let path = dir.join(file);
            let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
            serde_yaml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
        })
        .collect()
}

/// Installs the CRDs of `set` and waits until each is Established.
pub async fn install(client: &kube::Client, set: &CrdSet) -> Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in crds(set)? {
        let name = crd.metadata.name.clone().context("a CRD without a name")?;
        api.patch(&name, &PatchParams::apply("kube9-tests").force(), &Patch::Apply(&crd))
            .await
            .with_context(|| format!("applying the CRD {name}"))?;
        wait_for(Duration::from_secs(60), || {
            let api = api.clone();
            let name = name.clone();
            async move {
                let crd = api.get(&name).await?;
                Ok(crd
                    .status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True"))
            }
        })
        .await
        .with_context(|| format!("the CRD {name} never became Established"))?;
    }
    Ok(())
}

/// Removes the CRDs of `set` (with every object of theirs) and waits until they are gone.
pub async fn uninstall(client: &kube::Client, set: &CrdSet) -> Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in crds(set)? {
        let name = crd.metadata.name.clone().context("a CRD without a name")?;
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(e) => return Err(e).with_context(|| format!("deleting the CRD {name}")),
        }
        wait_for(Duration::from_secs(120), || {
            let api = api.clone();
            let name = name.clone();
            async move { Ok(api.get_opt(&name).await?.is_none()) }
        })
        .await
        .with_context(|| format!("the CRD {name} was never removed"))?;
    }
    Ok(())
}
