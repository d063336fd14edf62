//! The real programs and schemas that consume what the operator and its chart publish, each
//! from its own published Go module (through the Go module proxy, cached under the cache dir;
//! nothing prebuilt is downloaded and nothing fetched is committed):
//!
//! - Prometheus and promtool (`github.com/prometheus/prometheus`): `promtool check rules` and
//!   `promtool test rules` on the chart's PrometheusRule (the chart tests).
//! - A dashboard validator of our own (`validate_dashboard.go`) built on the
//!   grafana-foundation-sdk's Go types (`github.com/grafana/grafana-foundation-sdk/go`).
//! - The CRDs the cluster tests install: openreports.io (`github.com/openreports/reports-api`),
//!   wgpolicyk8s.io v1alpha2 (as Kyverno ships them, `github.com/kyverno/kyverno`) and Trivy
//!   Operator's (`github.com/aquasecurity/trivy-operator`); the tests read them from Go's module
//!   cache, where this puts them.

use std::path::PathBuf;

use anyhow::{Context, Result};

use super::{cache_dir, gomod, run_logged};

/// The Prometheus release promtool and Prometheus are built from.
pub const PROMETHEUS_VERSION: &str = "0.316.0";
/// The grafana-foundation-sdk release the dashboard is validated with.
pub const GRAFANA_SDK_VERSION: &str = "0.0.22";

/// The modules whose CRDs the cluster tests install (module, version without `v`); the tests
/// name the same versions (tests/src/gomodules.rs).
pub const CRD_MODULES: [(&str, &str); 3] = [
    ("github.com/openreports/reports-api", "0.2.1"),
    ("github.com/kyverno/kyverno", "1.19.1"),
    ("github.com/aquasecurity/trivy-operator", "0.29.0"),
];

/// The directory holding `promtool` and `prometheus`.
pub fn prometheus() -> Result<PathBuf> {
    gomod::ensure(&gomod::Build {
        name: "prometheus",
        module: "github.com/prometheus/prometheus",
        version: PROMETHEUS_VERSION,
        commands: &["github.com/prometheus/prometheus/cmd/prometheus", "github.com/prometheus/prometheus/cmd/promtool"],
        ldflags: vec![],
        replaces: vec![],
    })
}

/// The dashboard validator, built from `validate_dashboard.go` against the SDK.
pub fn dashboard_validator() -> Result<PathBuf> {
    let source = include_str!("validate_dashboard.go");
    let dest = cache_dir().join(format!("go-dashboard-validator-v{GRAFANA_SDK_VERSION}"));
    let binary = dest.join("bin/validate-dashboard");
    let module = dest.join("module");
    let main = module.join("main.go");
    if binary.is_file() && std::fs::read_to_string(&main).ok().as_deref() == Some(source) {
        return Ok(binary);
    }
    std::fs::create_dir_all(&module).with_context(|| format!("creating {}", module.display()))?;
    std::fs::write(
        module.join("go.mod"),
        format!(
            "// Written by `cargo xtask`: the dashboard validator.\nmodule kube9.io/validate-dashboard\n\ngo 1.25.0\n\nrequire github.com/grafana/grafana-foundation-sdk/go v{GRAFANA_SDK_VERSION}\n"
        ),
    )?;
    std::fs::write(&main, source)?;
    run_logged(gomod::go(&module).args(["mod", "tidy"]), &dest.join("tidy.log"))
        .context("resolving the grafana-foundation-sdk through the Go module proxy")?;
    run_logged(gomod::go(&module).args(["build", "-trimpath", "-o"]).arg(&binary).arg("."), &dest.join("build.log"))
        .context("building the dashboard validator")?;
    Ok(binary)
}

/// Everything above, built or fetched (CI does it beside its first steps).
pub fn build() -> Result<()> {
    for (module, version) in CRD_MODULES {
        gomod::module_dir(module, version)?;
    }
    prometheus()?;
    dashboard_validator()?;
    Ok(())
}

/// The environment the chart tests find the consumers through.
pub fn env() -> Result<Vec<(&'static str, PathBuf)>> {
    Ok(vec![
        ("KUBE9_PROMTOOL", prometheus()?.join("promtool")),
        ("KUBE9_PROMETHEUS", prometheus()?.join("prometheus")),
        ("KUBE9_DASHBOARD_VALIDATOR", dashboard_validator()?),
    ])
}
