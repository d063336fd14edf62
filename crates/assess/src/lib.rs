//! `kube9-operator assess`: the Well-Architected checks over manifest files, offline, for CI.
//!
//! Exit codes: 0 when nothing reaches `--fail-on`; 1 when a finding does; 2 when an input could
//! not be read or parsed (the rest is still assessed and reported) or the arguments are wrong.

pub mod input;
pub mod output;
pub mod yaml;

use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use kube9_api::common::{Pillar, Severity};
use kube9_checks::Options;

#[derive(Parser, Debug)]
#[command(
    about = "Assess Kubernetes manifests against the Well-Architected checks, without a cluster",
    after_help = "Exit status: 0 no finding at or above --fail-on; 1 there is one; 2 an input could not be read \
                  (the rest is still assessed). Objects are exempted from checks with the annotation \
                  kube9.io/exempt: \"<check id>,...\" on the object or its Namespace."
)]
pub struct Args {
    /// A file, a directory (searched recursively for .yaml, .yml and .json), or - for standard
    /// input. Repeatable.
    #[arg(short = 'f', long = "filename", required = true, value_name = "PATH")]
    pub inputs: Vec<PathBuf>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    pub output: Format,
    /// Exit with status 1 when a finding (not exempted) is this severe or more.
    #[arg(long, value_enum, default_value_t = FailOn::None, value_name = "SEVERITY")]
    pub fail_on: FailOn,
    /// Only these pillars (repeatable): security, reliability, performance-efficiency,
    /// cost-optimization, operational-excellence, sustainability.
    #[arg(long = "pillar", value_parser = str::parse::<Pillar>, value_name = "PILLAR")]
    pub pillars: Vec<Pillar>,
    /// Only these checks or pillars, by id (repeatable).
    #[arg(long = "check", value_name = "ID")]
    pub checks: Vec<String>,
    /// Never these checks or pillars, by id (repeatable).
    #[arg(long = "skip-check", value_name = "ID")]
    pub skip_checks: Vec<String>,
    /// The Kubernetes version the manifests are for (e.g. 1.29): API versions deprecated or
    /// removed by then are reported. Default: the newest release the checks know.
    #[arg(long = "kubernetes-version", value_parser = parse_version, value_name = "MAJOR.MINOR")]
    pub kubernetes_version: Option<(u32, u32)>,
}

fn parse_version(text: &str) -> Result<(u32, u32), String> {
    kube9_checks::deprecations::parse_version(text).ok_or_else(|| format!("{text:?} is not a version like 1.29"))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Sarif,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    Critical,
    High,
    Medium,
    Low,
    Info,
    /// Never fail on findings.
    None,
}

impl FailOn {
    fn threshold(self) -> Option<Severity> {
        match self {
            FailOn::Critical => Some(Severity::Critical),
            FailOn::High => Some(Severity::High),
            FailOn::Medium => Some(Severity::Medium),
            FailOn::Low => Some(Severity::Low),
            FailOn::Info => Some(Severity::Info),
            FailOn::None => None,
        }
    }
}

/// What the command printed and how it ends.
pub struct Outcome {
    pub stdout: String,
    pub stderr: String,
    pub code: u8,
}

/// Runs the assessment over `args.inputs`.
pub fn run(args: &Args) -> Outcome {
    let ids: Vec<&str> = kube9_checks::registry().iter().map(|c| c.id).collect();
    for id in args.checks.iter().chain(&args.skip_checks) {
        if !ids.contains(&id.as_str()) && id.parse::<Pillar>().is_err() {
            return Outcome {
                stdout: String::new(),
                stderr: format!("kube9-operator assess: no check or pillar {id:?} (see docs/checks.md)\n"),
                code: 2,
            };
        }
    }
    let mut loaded = input::load(&args.inputs);
    loaded.snapshot.kubernetes_version = args.kubernetes_version;
    let options = Options {
        pillars: args.pillars.clone(),
        include_checks: args.checks.clone(),
        exclude_checks: args.skip_checks.clone(),
        ..Options::default()
    };
    let report = kube9_checks::run(&loaded.snapshot, &options);
    let stdout = match args.output {
        Format::Table => output::table(&report, &loaded),
        Format::Json => pretty(&output::json(&report, &loaded)),
        Format::Sarif => pretty(&output::sarif(&report, &loaded)),
    };
    let stderr: String = loaded.errors.iter().map(|e| format!("kube9-operator assess: {e}\n")).collect();
    let failing = args
        .fail_on
        .threshold()
        .is_some_and(|t| report.results.iter().any(|r| !r.failed.is_empty() && r.check.severity <= t));
    let code = if !loaded.errors.is_empty() {
        2
    } else if failing {
        1
    } else {
        0
    };
    Outcome { stdout, stderr, code }
}

fn pretty(value: &impl serde::Serialize) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("the report serializes");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifests() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "kube9-assess-cli-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("app.yaml"),
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers:\n        - {name: app, image: 'shop/web:latest', securityContext: {privileged: true}}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: accepted\n  namespace: shop\n  annotations: {kube9.io/exempt: security.privileged}\nspec:\n  selector: {matchLabels: {app: a}}\n  template:\n    metadata: {labels: {app: a}}\n    spec:\n      containers:\n        - {name: app, image: 'shop/a:1.0', securityContext: {privileged: true}}\n",
        )
        .unwrap();
        dir
    }

    fn args(extra: &[&str], dir: &std::path::Path) -> Args {
        let mut argv = vec!["assess", "-f", dir.to_str().unwrap()];
        argv.extend_from_slice(extra);
        Args::try_parse_from(argv).unwrap()
    }

    #[test]
    fn the_table_names_the_object_the_container_the_line_and_the_fix() {
        let dir = manifests();
        let out = run(&args(&[], &dir));
        assert_eq!(out.code, 0, "{}", out.stderr);
        let line = out.stdout.lines().find(|l| l.contains("security.privileged")).unwrap();
        assert!(line.starts_with("critical") && line.contains("Deployment shop/web (app)"), "{line}");
        assert!(line.contains("app.yaml:1"), "{line}");
        assert!(out.stdout.contains("How to fix:\n"));
        assert!(
            out.stdout.contains("Exempted by annotation (1):\n  security.privileged on Deployment shop/accepted (app)")
        );
        assert!(out.stdout.contains("over 2 documents in 1 files; 0 could not be read"), "{}", out.stdout);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn checks_that_need_a_live_cluster_are_skipped_and_said_so() {
        let dir = manifests();
        std::fs::write(
            dir.join("webhook.yaml"),
            "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\nmetadata: {name: gate}\nwebhooks:\n  - name: gate.example.com\n    clientConfig: {service: {name: gone, namespace: policy}}\n    sideEffects: None\n    admissionReviewVersions: [v1]\n",
        )
        .unwrap();
        let live: Vec<&str> = kube9_checks::registry().iter().filter(|c| c.needs_cluster()).map(|c| c.id).collect();
        assert!(live.contains(&"reliability.webhook-fail-closed-unreachable"));
        let out = run(&args(&["--fail-on", "info", "--check", "reliability"], &dir));
        assert!(!out.stdout.contains("webhook gate.example.com"), "not judged offline: {}", out.stdout);
        for id in live.iter().filter(|id| id.starts_with("reliability.")) {
            assert!(out.stdout.contains(&format!("skipped {id}: needs a live cluster")), "{id}: {}", out.stdout);
        }
        let skipped = live.iter().filter(|id| id.starts_with("reliability.")).count();
        assert!(out.stdout.contains(&format!("passed everywhere, {skipped} skipped;")), "{}", out.stdout);
        let json: serde_json::Value = serde_json::from_str(&run(&args(&["-o", "json"], &dir)).stdout).unwrap();
        let states: Vec<(&str, &str)> = json["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["state"] == "skipped")
            .map(|c| (c["checkId"].as_str().unwrap(), c["message"].as_str().unwrap()))
            .collect();
        assert_eq!(states.len(), live.len(), "{states:?}");
        assert!(states.iter().all(|(id, why)| live.contains(id) && why.starts_with("needs a live cluster")));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn fail_on_sets_the_exit_status_and_unreadable_input_is_status_2() {
        let dir = manifests();
        assert_eq!(run(&args(&["--fail-on", "critical"], &dir)).code, 1);
        assert_eq!(run(&args(&["--fail-on", "critical", "--skip-check", "security"], &dir)).code, 0);
        assert_eq!(run(&args(&["--fail-on", "info", "--check", "security.privileged"], &dir)).code, 1);
        std::fs::write(dir.join("broken.yaml"), "kind: [\n").unwrap();
        let out = run(&args(&["--fail-on", "critical"], &dir));
        assert_eq!(out.code, 2);
        assert!(out.stderr.contains("broken.yaml:"), "{}", out.stderr);
        assert!(out.stdout.contains("security.privileged"), "the rest is still assessed");
        let unknown = run(&args(&["--check", "security.nope"], &dir));
        assert_eq!((unknown.code, unknown.stdout.as_str()), (2, ""));
        assert!(Args::try_parse_from(["assess", "-f", "x", "--pillar", "speed"]).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn json_and_sarif_carry_findings_exemptions_and_locations() {
        let dir = manifests();
        let json: serde_json::Value = serde_json::from_str(&run(&args(&["-o", "json"], &dir)).stdout).unwrap();
        let privileged: Vec<_> =
            json["findings"].as_array().unwrap().iter().filter(|f| f["checkId"] == "security.privileged").collect();
        assert_eq!(privileged.len(), 1);
        assert_eq!(privileged[0]["source"]["line"], 1);
        assert_eq!(json["exempted"][0]["object"]["name"], "accepted");
        assert_eq!(json["checks"].as_array().unwrap().len(), kube9_checks::registry().len());

        let sarif: serde_json::Value = serde_json::from_str(&run(&args(&["-o", "sarif"], &dir)).stdout).unwrap();
        assert_eq!(sarif["version"], "2.1.0");
        let run0 = &sarif["runs"][0];
        let rules = run0["tool"]["driver"]["rules"].as_array().unwrap();
        assert_eq!(rules.len(), kube9_checks::registry().len());
        let results = run0["results"].as_array().unwrap();
        for r in results {
            let rule = &rules[r["ruleIndex"].as_u64().unwrap() as usize];
            assert_eq!(rule["id"], r["ruleId"]);
        }
        let privileged: Vec<_> = results.iter().filter(|r| r["ruleId"] == "security.privileged").collect();
        assert_eq!(privileged.len(), 2);
        let shown = privileged.iter().find(|r| r.get("suppressions").is_none()).unwrap();
        assert_eq!(shown["level"], "error");
        let location = &shown["locations"][0]["physicalLocation"];
        assert!(location["artifactLocation"]["uri"].as_str().unwrap().ends_with("/app.yaml"));
        assert_eq!(location["region"]["startLine"], 1);
        let suppressed = privileged.iter().find(|r| r.get("suppressions").is_some()).unwrap();
        assert_eq!(suppressed["locations"][0]["physicalLocation"]["region"]["startLine"], 12);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
