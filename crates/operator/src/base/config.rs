//! Configuration from flags and environment, validated before anything starts.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

/// Largest status interval: consumers treat a `lastUpdate` older than five minutes as stale.
const MAX_STATUS_INTERVAL: Duration = Duration::from_secs(240);

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Pretty on a terminal, JSON otherwise (in a Pod).
    Auto,
    Json,
    Pretty,
}

/// Flags and environment, as given.
#[derive(Parser, Debug)]
#[command(name = "kube9-operator", version, about = "The in-cluster half of the kube9 toolkit")]
pub struct Flags {
    /// Namespace the operator runs in (holds the status ConfigMap).
    #[arg(long, env = "POD_NAMESPACE", default_value = "kube9-system")]
    pub namespace: String,

    /// File holding the kube9 API key (a mounted Secret). The key may also come from the
    /// KUBE9_API_KEY environment variable; never from a flag, so it stays out of `ps`.
    #[arg(long, env = "KUBE9_API_KEY_FILE")]
    pub api_key_file: Option<PathBuf>,

    /// kube9-server base URL (HTTPS).
    #[arg(long, env = "KUBE9_SERVER_URL", default_value = "https://api.kube9.io")]
    pub server_url: String,

    /// Extra PEM CA certificate(s) to trust for kube9-server, besides the system roots.
    #[arg(long, env = "KUBE9_SERVER_CA_FILE")]
    pub server_ca_file: Option<PathBuf>,

    /// How often status is refreshed even when nothing changes (e.g. 60s, 2m; at most 4m).
    #[arg(long, env = "KUBE9_STATUS_INTERVAL", default_value = "60s", value_parser = humantime::parse_duration)]
    pub status_interval: Duration,

    /// Re-registration interval used until kube9-server configures one.
    #[arg(long, env = "KUBE9_REREGISTRATION_INTERVAL", default_value = "24h", value_parser = humantime::parse_duration)]
    pub reregistration_interval: Duration,

    /// First wait after a failed registration (doubles, with jitter, up to --retry-max).
    #[arg(long, env = "KUBE9_RETRY_INITIAL", default_value = "1m", value_parser = humantime::parse_duration)]
    pub retry_initial: Duration,

    /// Longest wait between registration retries.
    #[arg(long, env = "KUBE9_RETRY_MAX", default_value = "1h", value_parser = humantime::parse_duration)]
    pub retry_max: Duration,

    /// Timeout of one request to kube9-server.
    #[arg(long, env = "KUBE9_REQUEST_TIMEOUT", default_value = "15s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,

    /// Log filter (a level such as info, or a tracing filter such as kube9_operator=debug).
    #[arg(long, env = "KUBE9_LOG_LEVEL", default_value = "info")]
    pub log_level: String,

    /// Log format.
    #[arg(long, env = "KUBE9_LOG_FORMAT", value_enum, default_value = "auto")]
    pub log_format: LogFormat,

    /// Address of the /healthz, /readyz and /metrics server.
    #[arg(long, env = "KUBE9_HEALTH_ADDR", default_value = "0.0.0.0:8080")]
    pub health_addr: SocketAddr,

    /// Publish every finding of each completed Assessment run as policy reports
    /// (openreports.io/v1alpha1 Report and ClusterReport where served, else wgpolicyk8s.io/v1alpha2
    /// PolicyReport and ClusterPolicyReport; needs --data-dir). false: none is written.
    #[arg(long, env = "KUBE9_POLICY_REPORTS", default_value_t = true, action = clap::ArgAction::Set)]
    pub policy_reports: bool,

    /// An emergency brake: most objects an Assessment run holds at once (the kinds it keeps
    /// whole, such as RBAC, Namespaces, PDBs and HPAs, and a compact record per workload,
    /// Service and distinct label set; the Pods, ReplicaSets and ConfigMaps it streams are not
    /// held). Far above real clusters; over it the run fails and says so rather than
    /// outgrowing the memory limit. 0: no bound.
    #[arg(long, env = "KUBE9_ASSESSMENT_MAX_OBJECTS", default_value_t = 200_000)]
    pub assessment_max_objects: usize,

    /// Most objects a collector run holds (about 16 KiB each at the peak: the configuration
    /// and security collectors keep every workload and standalone Pod they read); over it the
    /// collection fails and says so. 0: no bound.
    #[arg(long, env = "KUBE9_COLLECTION_MAX_OBJECTS", default_value_t = 5000)]
    pub collection_max_objects: usize,

    /// Collector intervals to change, as name=duration pairs (clusterMetadata,
    /// resourceInventory, configurationPatterns, performanceMetrics, securityPosture), for
    /// example performanceMetrics=5m,resourceInventory=1h. Each run is spread ±10 %.
    #[arg(long, env = "KUBE9_COLLECTION_INTERVALS", default_value = "")]
    pub collection_intervals: String,

    /// Collections kept per collector (in the store with --data-dir, in memory without).
    #[arg(long, env = "KUBE9_COLLECTION_RETENTION", default_value_t = 4)]
    pub collection_retention: usize,

    /// Upload interval (pro tier) until kube9-server configures one at registration.
    #[arg(long, env = "KUBE9_METRICS_INTERVAL", default_value = "1h", value_parser = humantime::parse_duration)]
    pub metrics_interval: Duration,

    /// Most insights kept in the OperatorStatus (most severe and newest first).
    #[arg(long, env = "KUBE9_MAX_INSIGHTS", default_value_t = 50)]
    pub max_insights: usize,

    /// The Secret (in the operator's namespace) holding the obfuscation key; created on first use.
    #[arg(long, env = "KUBE9_OBFUSCATION_KEY_SECRET", default_value = "kube9-operator-obfuscation-key")]
    pub obfuscation_key_secret: String,

    /// This operator's Pod (the chart sets it from the downward API): the reporting instance of
    /// the Events it records.
    #[arg(long, env = "POD_NAME")]
    pub pod_name: Option<String>,

    /// Take part in leader election (a Lease in the namespace): only the leader writes status
    /// and talks to kube9-server, so several replicas can run. false: this process always writes.
    #[arg(long, env = "KUBE9_LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_election: bool,

    /// The Lease the replicas elect a leader with, in --namespace (the chart's Role grants this name).
    #[arg(long, env = "KUBE9_LEADER_ELECTION_LEASE", default_value = "kube9-operator-leader")]
    pub leader_election_lease: String,

    /// Directory of the embedded store (event history, Assessment runs, the status): a mounted
    /// volume, since the root file system is read-only. Unset: no history is kept.
    #[arg(long, env = "KUBE9_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// The store's size budget, database and WAL together (bytes, or with Ki, Mi, Gi): the
    /// oldest rows make room. Keep it below the volume's size.
    #[arg(long, env = "KUBE9_STORE_MAX_SIZE", default_value = "192Mi")]
    pub store_max_size: String,

    /// How long events are kept after their last occurrence.
    #[arg(long, env = "KUBE9_EVENTS_RETENTION", default_value = "7d", value_parser = humantime::parse_duration)]
    pub events_retention: Duration,

    /// Most events kept (the oldest go first).
    #[arg(long, env = "KUBE9_EVENTS_MAX_ROWS", default_value_t = 200_000)]
    pub events_max_rows: u64,

    /// How long the store keeps each completed Assessment run's totals and per-check outcomes
    /// (`kube9-operator query assessments history`); the status keeps the last 30 runs.
    #[arg(long, env = "KUBE9_ASSESSMENT_HISTORY_RETENTION", default_value = "90d", value_parser = humantime::parse_duration)]
    pub assessment_history_retention: Duration,

    /// How often the Kubernetes AI Conformance readiness self-check runs (1m to 30d); 0 runs it
    /// only when requested by annotation.
    #[arg(long, env = "KUBE9_AI_CONFORMANCE_INTERVAL", default_value = "24h", value_parser = humantime::parse_duration)]
    pub ai_conformance_interval: Duration,

    /// The namespace of Argo CD's argocd-server Deployment; empty: looked for in every namespace.
    #[arg(long, env = "KUBE9_ARGOCD_NAMESPACE", default_value = "")]
    pub argocd_namespace: String,

    /// Most Argo CD Applications followed (6 to 10 KiB each, measured); the rest are counted as omitted.
    #[arg(long, env = "KUBE9_ARGOCD_MAX_APPLICATIONS", default_value_t = 5_000)]
    pub argocd_max_applications: usize,
}

/// The kube9 API key. Its `Debug` and `Display` never show the value.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Accepts a key with surrounding whitespace trimmed; refuses one that cannot be a key.
    /// The reason never contains the value.
    pub fn parse(text: &str) -> Result<ApiKey, &'static str> {
        let key = text.trim();
        if key.is_empty() {
            return Err("the API key is empty");
        }
        if key.len() > 4096 {
            return Err("the API key is longer than 4096 characters");
        }
        if !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("the API key contains whitespace or non-printable characters");
        }
        Ok(ApiKey(key.to_owned()))
    }

    /// The value, for the Authorization header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// A setting that cannot be used, named so the administrator knows what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "--namespace / POD_NAMESPACE {0:?} is not a valid namespace name (lowercase letters, digits and '-', at most 63)"
    )]
    Namespace(String),
    #[error("--server-url / KUBE9_SERVER_URL {url:?} is not usable: {why}")]
    ServerUrl { url: String, why: String },
    #[error("--server-ca-file / KUBE9_SERVER_CA_FILE {path}: {why}")]
    ServerCa { path: String, why: String },
    #[error("--api-key-file / KUBE9_API_KEY_FILE {path}: {why}")]
    ApiKeyFile { path: String, why: String },
    #[error("KUBE9_API_KEY: {0}")]
    ApiKeyEnv(String),
    #[error("set the API key once: both --api-key-file / KUBE9_API_KEY_FILE and KUBE9_API_KEY are set")]
    ApiKeyTwice,
    #[error("--{name}: {why}")]
    Duration { name: &'static str, why: String },
    #[error("--log-level {0:?} is not a valid filter (try info, debug, or kube9_operator=debug)")]
    LogLevel(String),
    #[error("--collection-intervals / KUBE9_COLLECTION_INTERVALS: {0}")]
    CollectionIntervals(String),
    #[error("--{name}: {why}")]
    Setting { name: &'static str, why: String },
    #[error("--data-dir / KUBE9_DATA_DIR {path:?}: {why}")]
    DataDir { path: String, why: String },
}

/// Validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub namespace: String,
    pub api_key: Option<ApiKey>,
    pub server_url: reqwest::Url,
    /// PEM text of extra CA certificates for kube9-server.
    pub server_ca_pem: Option<Vec<u8>>,
    pub status_interval: Duration,
    pub reregistration_interval: Duration,
    pub retry_initial: Duration,
    pub retry_max: Duration,
    pub request_timeout: Duration,
    pub log_level: String,
    pub log_format: LogFormat,
    pub health_addr: SocketAddr,
    /// 0: no bound.
    pub assessment_max_objects: usize,
    /// Publish each completed run's findings as policy reports.
    pub policy_reports: bool,
    /// 0: no bound.
    pub collection_max_objects: usize,
    /// The interval of each collector, in `Collector::ALL` order.
    pub collection_intervals: [Duration; 5],
    pub collection_retention: usize,
    pub metrics_interval: Duration,
    pub max_insights: usize,
    pub obfuscation_key_secret: String,
    pub pod_name: Option<String>,
    /// The leader Lease's name; None: no election, this process always leads.
    pub leader_lease: Option<String>,
    /// This process in the election: the Pod name, else host name and process id.
    pub identity: String,
    /// The embedded store; None without --data-dir.
    pub store: Option<StoreConfig>,
    /// The AI Conformance self-check's schedule; None: only on request.
    pub ai_conformance_interval: Option<Duration>,
    /// Where argocd-server is looked for (None: every namespace).
    pub argocd_namespace: Option<String>,
    /// Most Argo CD Applications followed.
    pub argocd_max_applications: usize,
}

/// Where the store lives and how much it keeps.
#[derive(Clone, Debug, PartialEq)]
pub struct StoreConfig {
    pub dir: PathBuf,
    pub limits: kube9_store::Limits,
}

impl Config {
    /// Validates flags; `env_key` is the value of KUBE9_API_KEY, if set.
    pub fn from_flags(flags: Flags, env_key: Option<String>) -> Result<Config, ConfigError> {
        if !is_dns_label(&flags.namespace) {
            return Err(ConfigError::Namespace(flags.namespace));
        }
        let server_url = parse_server_url(&flags.server_url)?;
        let server_ca_pem = flags.server_ca_file.as_ref().map(read_ca).transpose()?;
        let api_key = match (flags.api_key_file, env_key.filter(|k| !k.is_empty())) {
            (Some(_), Some(_)) => return Err(ConfigError::ApiKeyTwice),
            (Some(path), None) => read_key_file(&path)?,
            (None, Some(text)) => Some(ApiKey::parse(&text).map_err(|why| ConfigError::ApiKeyEnv(why.into()))?),
            (None, None) => None,
        };
        check_duration("status-interval", flags.status_interval, Duration::from_secs(1), MAX_STATUS_INTERVAL)?;
        check_duration(
            "reregistration-interval",
            flags.reregistration_interval,
            Duration::from_secs(1),
            Duration::from_secs(7 * 24 * 3600),
        )?;
        check_duration("retry-initial", flags.retry_initial, Duration::from_millis(100), flags.retry_max)?;
        check_duration("retry-max", flags.retry_max, flags.retry_initial, Duration::from_secs(24 * 3600))?;
        check_duration("request-timeout", flags.request_timeout, Duration::from_millis(100), Duration::from_secs(300))?;
        if tracing_subscriber::EnvFilter::try_new(&flags.log_level).is_err() {
            return Err(ConfigError::LogLevel(flags.log_level));
        }
        let collection_intervals = parse_intervals(&flags.collection_intervals)?;
        if !(1..=100).contains(&flags.collection_retention) {
            return Err(ConfigError::Setting { name: "collection-retention", why: "must be 1 to 100".into() });
        }
        check_duration(
            "metrics-interval",
            flags.metrics_interval,
            Duration::from_secs(1),
            Duration::from_secs(7 * 86400),
        )?;
        if !(1..=500).contains(&flags.max_insights) {
            return Err(ConfigError::Setting { name: "max-insights", why: "must be 1 to 500".into() });
        }
        if !is_dns_subdomain(&flags.obfuscation_key_secret) {
            return Err(ConfigError::Setting {
                name: "obfuscation-key-secret",
                why: format!("{:?} is not a valid Secret name", flags.obfuscation_key_secret),
            });
        }
        let ai_conformance_interval =
            (!flags.ai_conformance_interval.is_zero()).then_some(flags.ai_conformance_interval);
        if let Some(interval) = ai_conformance_interval {
            check_duration(
                "ai-conformance-interval",
                interval,
                Duration::from_secs(60),
                Duration::from_secs(30 * 86400),
            )?;
        }
        if !is_dns_subdomain(&flags.leader_election_lease) {
            return Err(ConfigError::Setting {
                name: "leader-election-lease",
                why: format!("{:?} is not a valid Lease name", flags.leader_election_lease),
            });
        }
        let pod_name = flags.pod_name.filter(|p| !p.is_empty());
        let identity = pod_name.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
            format!("{}-{}", host.trim(), std::process::id())
        });
        if !flags.argocd_namespace.is_empty() && !is_dns_label(&flags.argocd_namespace) {
            return Err(ConfigError::Setting {
                name: "argocd-namespace",
                why: format!("{:?} is not a valid namespace name", flags.argocd_namespace),
            });
        }
        if !(1..=1_000_000).contains(&flags.argocd_max_applications) {
            return Err(ConfigError::Setting { name: "argocd-max-applications", why: "must be 1 to 1000000".into() });
        }
        let store = flags
            .data_dir
            .filter(|d| !d.as_os_str().is_empty())
            .map(|dir| {
                store_config(
                    dir,
                    &flags.store_max_size,
                    flags.events_retention,
                    flags.events_max_rows,
                    flags.assessment_history_retention,
                )
            })
            .transpose()?;
        Ok(Config {
            store,
            ai_conformance_interval,
            namespace: flags.namespace,
            api_key,
            server_url,
            server_ca_pem,
            status_interval: flags.status_interval,
            reregistration_interval: flags.reregistration_interval,
            retry_initial: flags.retry_initial,
            retry_max: flags.retry_max,
            request_timeout: flags.request_timeout,
            log_level: flags.log_level,
            log_format: flags.log_format,
            health_addr: flags.health_addr,
            assessment_max_objects: flags.assessment_max_objects,
            policy_reports: flags.policy_reports,
            collection_max_objects: flags.collection_max_objects,
            collection_intervals,
            collection_retention: flags.collection_retention,
            metrics_interval: flags.metrics_interval,
            max_insights: flags.max_insights,
            obfuscation_key_secret: flags.obfuscation_key_secret,
            pod_name,
            leader_lease: flags.leader_election.then_some(flags.leader_election_lease),
            identity,
            argocd_namespace: Some(flags.argocd_namespace).filter(|n| !n.is_empty()),
            argocd_max_applications: flags.argocd_max_applications,
        })
    }
}

fn store_config(
    dir: PathBuf,
    max_size: &str,
    retention: Duration,
    max_rows: u64,
    history_retention: Duration,
) -> Result<StoreConfig, ConfigError> {
    let fail = |why: &str| ConfigError::DataDir { path: dir.display().to_string(), why: why.to_owned() };
    if !dir.is_absolute() {
        return Err(fail("must be an absolute path"));
    }
    if dir.exists() && !dir.is_dir() {
        return Err(fail("exists and is not a directory"));
    }
    let max_bytes = parse_size(max_size).ok_or_else(|| ConfigError::Setting {
        name: "store-max-size",
        why: format!("{max_size:?} is not a size (bytes, or a number with Ki, Mi or Gi)"),
    })?;
    if max_bytes < kube9_store::MIN_BYTES {
        return Err(ConfigError::Setting { name: "store-max-size", why: "must be at least 1Mi".into() });
    }
    check_duration("events-retention", retention, Duration::from_secs(3600), Duration::from_secs(365 * 86400))?;
    if !(1000..=10_000_000).contains(&max_rows) {
        return Err(ConfigError::Setting { name: "events-max-rows", why: "must be 1000 to 10000000".into() });
    }
    check_duration(
        "assessment-history-retention",
        history_retention,
        Duration::from_secs(3600),
        Duration::from_secs(3650 * 86400),
    )?;
    let limits = kube9_store::Limits {
        max_bytes,
        event_max_age: retention,
        event_max_rows: max_rows,
        history_max_age: history_retention,
        ..kube9_store::Limits::default()
    };
    Ok(StoreConfig { dir, limits })
}

/// `1048576`, `512Ki`, `192Mi`, `1Gi`.
fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, ""),
    };
    let unit = match unit {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        _ => return None,
    };
    number.parse::<u64>().ok()?.checked_mul(unit)
}

fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

fn is_dns_subdomain(name: &str) -> bool {
    name.len() <= 253 && name.split('.').all(is_dns_label)
}

/// `name=duration,...` over the defaults of `Collector::ALL`.
fn parse_intervals(text: &str) -> Result<[Duration; 5], ConfigError> {
    use kube9_collect::Collector;
    let mut intervals = Collector::ALL.map(Collector::default_interval);
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let fail = |why: String| ConfigError::CollectionIntervals(format!("{pair:?}: {why}"));
        let (name, value) = pair.split_once('=').ok_or_else(|| fail("expected name=duration".into()))?;
        let index = Collector::ALL.iter().position(|c| c.name() == name.trim()).ok_or_else(|| {
            let names: Vec<&str> = Collector::ALL.iter().map(|c| c.name()).collect();
            fail(format!("no collector of that name (one of {})", names.join(", ")))
        })?;
        let value = humantime::parse_duration(value.trim()).map_err(|e| fail(e.to_string()))?;
        if value < Duration::from_secs(1) || value > Duration::from_secs(7 * 86400) {
            return Err(fail("must be 1s to 7d".into()));
        }
        intervals[index] = value;
    }
    Ok(intervals)
}

fn parse_server_url(text: &str) -> Result<reqwest::Url, ConfigError> {
    let fail = |why: &str| ConfigError::ServerUrl { url: text.to_owned(), why: why.to_owned() };
    let url = reqwest::Url::parse(text).map_err(|e| fail(&e.to_string()))?;
    if url.scheme() != "https" {
        return Err(fail("kube9-server is reached over HTTPS only; use an https:// URL"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(fail("it has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(fail("credentials do not belong in the URL; the API key comes from a Secret"));
    }
    Ok(url)
}

fn read_ca(path: &PathBuf) -> Result<Vec<u8>, ConfigError> {
    let fail = |why: String| ConfigError::ServerCa { path: path.display().to_string(), why };
    let pem = std::fs::read(path).map_err(|e| fail(format!("cannot be read: {e}")))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| fail(format!("is not PEM: {e}")))?;
    if certs.is_empty() {
        return Err(fail("holds no PEM certificate".into()));
    }
    Ok(pem)
}

/// Reads the key file; an empty file means no key (an optional Secret mounted empty).
fn read_key_file(path: &PathBuf) -> Result<Option<ApiKey>, ConfigError> {
    let fail = |why: String| ConfigError::ApiKeyFile { path: path.display().to_string(), why };
    let text = std::fs::read_to_string(path).map_err(|e| fail(format!("cannot be read: {e}")))?;
    if text.trim().is_empty() {
        return Ok(None);
    }
    ApiKey::parse(&text).map(Some).map_err(|why| fail(why.into()))
}

fn check_duration(name: &'static str, value: Duration, min: Duration, max: Duration) -> Result<(), ConfigError> {
    if value < min || value > max {
        return Err(ConfigError::Duration {
            name,
            why: format!(
                "{} is outside {} to {}",
                humantime::format_duration(value),
                humantime::format_duration(min),
                humantime::format_duration(max)
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(args: &[&str]) -> Flags {
        let mut all = vec!["kube9-operator"];
        all.extend_from_slice(args);
        Flags::try_parse_from(all).unwrap()
    }

    fn temp_file(name: &str, text: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("kube9-config-{}-{name}", std::process::id()));
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn defaults_are_valid_and_mean_free_tier() {
        let config = Config::from_flags(flags(&["--namespace", "kube9-system"]), None).unwrap();
        assert!(config.api_key.is_none());
        assert_eq!(config.status_interval, Duration::from_secs(60));
        assert_eq!(config.server_url.as_str(), "https://api.kube9.io/");
        assert_eq!(config.assessment_max_objects, 200_000, "an emergency brake far above real clusters");
        assert_eq!(config.collection_max_objects, 5000, "the chart's default, sized for its 128Mi limit");
        assert!(Flags::try_parse_from(["kube9-operator", "--assessment-max-objects", "many"]).is_err());
        assert_eq!(config.collection_intervals[0], Duration::from_secs(24 * 3600));
        assert_eq!(config.collection_intervals[3], Duration::from_secs(15 * 60));
    }

    #[test]
    fn collection_intervals_override_the_named_collectors_only() {
        let config =
            Config::from_flags(flags(&["--collection-intervals", "performanceMetrics=5m, resourceInventory=1h"]), None)
                .unwrap();
        let hours = |h: u64| Duration::from_secs(h * 3600);
        assert_eq!(config.collection_intervals, [hours(24), hours(1), hours(12), Duration::from_secs(300), hours(24)]);
    }

    #[test]
    fn the_ai_conformance_self_check_runs_daily_unless_set_to_zero_or_another_interval() {
        let daily = Config::from_flags(flags(&[]), None).unwrap();
        assert_eq!(daily.ai_conformance_interval, Some(Duration::from_secs(86400)));
        let on_request = Config::from_flags(flags(&["--ai-conformance-interval", "0s"]), None).unwrap();
        assert_eq!(on_request.ai_conformance_interval, None);
        let hourly = Config::from_flags(flags(&["--ai-conformance-interval", "1h"]), None).unwrap();
        assert_eq!(hourly.ai_conformance_interval, Some(Duration::from_secs(3600)));
        let err = Config::from_flags(flags(&["--ai-conformance-interval", "10s"]), None).unwrap_err().to_string();
        assert!(err.contains("ai-conformance-interval") && err.contains("outside"), "{err}");
    }

    #[test]
    fn a_key_file_is_read_and_trimmed() {
        let path = temp_file("key", "  k9_secret_value\n");
        let config = Config::from_flags(flags(&["--api-key-file", path.to_str().unwrap()]), None).unwrap();
        assert_eq!(config.api_key.unwrap().expose(), "k9_secret_value");
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn an_empty_key_file_means_no_key() {
        let path = temp_file("empty", "\n");
        let config = Config::from_flags(flags(&["--api-key-file", path.to_str().unwrap()]), None).unwrap();
        assert!(config.api_key.is_none());
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn bad_settings_name_the_setting() {
        let cases: Vec<(Vec<&str>, Option<&str>, &str)> = vec![
            (vec!["--namespace", "Kube9"], None, "POD_NAMESPACE"),
            (vec!["--server-url", "http://api.kube9.io"], None, "HTTPS only"),
            (vec!["--server-url", "not a url"], None, "KUBE9_SERVER_URL"),
            (vec!["--server-url", "https://user:pw@api.kube9.io"], None, "credentials"),
            (vec!["--status-interval", "10m"], None, "--status-interval"),
            (vec!["--retry-initial", "2h"], None, "--retry-initial"),
            (vec!["--api-key-file", "/nonexistent/key"], None, "cannot be read"),
            (vec!["--server-ca-file", "/nonexistent/ca.pem"], None, "KUBE9_SERVER_CA_FILE"),
            (vec![], Some("has space"), "KUBE9_API_KEY"),
            (vec!["--log-level", "info,=[bad"], None, "--log-level"),
            (vec!["--collection-intervals", "inventory=1h"], None, "one of clusterMetadata"),
            (vec!["--collection-intervals", "resourceInventory=soon"], None, "KUBE9_COLLECTION_INTERVALS"),
            (vec!["--collection-intervals", "resourceInventory=10ms"], None, "1s to 7d"),
            (vec!["--collection-retention", "0"], None, "--collection-retention"),
            (vec!["--max-insights", "0"], None, "--max-insights"),
            (vec!["--obfuscation-key-secret", "Bad_Name"], None, "--obfuscation-key-secret"),
            (vec!["--data-dir", "relative/dir"], None, "KUBE9_DATA_DIR"),
            (vec!["--data-dir", "/etc/hostname"], None, "not a directory"),
            (vec!["--data-dir", "/data", "--store-max-size", "lots"], None, "--store-max-size"),
            (vec!["--data-dir", "/data", "--store-max-size", "512Ki"], None, "at least 1Mi"),
            (vec!["--data-dir", "/data", "--events-retention", "5m"], None, "--events-retention"),
            (vec!["--data-dir", "/data", "--events-max-rows", "10"], None, "--events-max-rows"),
            (
                vec!["--data-dir", "/data", "--assessment-history-retention", "5m"],
                None,
                "--assessment-history-retention",
            ),
        ];
        for (args, env_key, expected) in cases {
            let err = Config::from_flags(flags(&args), env_key.map(str::to_owned)).unwrap_err().to_string();
            assert!(err.contains(expected), "{args:?}: {err}");
        }
    }

    #[test]
    fn the_store_is_configured_only_with_a_data_dir() {
        assert_eq!(Config::from_flags(flags(&[]), None).unwrap().store, None);
        let config = Config::from_flags(
            flags(&[
                "--data-dir",
                "/var/lib/kube9",
                "--store-max-size",
                "64Mi",
                "--events-retention",
                "2d",
                "--assessment-history-retention",
                "30d",
            ]),
            None,
        )
        .unwrap();
        let store = config.store.unwrap();
        assert_eq!(store.limits.history_max_age, Duration::from_secs(30 * 86400));
        assert_eq!(store.dir, PathBuf::from("/var/lib/kube9"));
        assert_eq!(store.limits.max_bytes, 64 << 20);
        assert_eq!(store.limits.event_max_age, Duration::from_secs(2 * 86400));
        assert_eq!(store.limits.event_max_rows, 200_000);
        assert_eq!(parse_size("1048576"), Some(1 << 20));
        assert_eq!(parse_size("1Gi"), Some(1 << 30));
        assert_eq!(parse_size("1GB"), None);
    }

    #[test]
    fn a_key_given_twice_is_refused() {
        let path = temp_file("twice", "k9_a");
        let err =
            Config::from_flags(flags(&["--api-key-file", path.to_str().unwrap()]), Some("k9_b".into())).unwrap_err();
        assert!(matches!(err, ConfigError::ApiKeyTwice));
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn a_bad_key_is_reported_without_its_value() {
        let err = Config::from_flags(flags(&[]), Some("secret value".into())).unwrap_err().to_string();
        assert!(!err.contains("secret value"), "{err}");
    }

    #[test]
    fn a_file_that_is_not_pem_is_not_a_ca() {
        let path = temp_file("ca", "hello");
        let err = Config::from_flags(flags(&["--server-ca-file", path.to_str().unwrap()]), None).unwrap_err();
        assert!(err.to_string().contains("PEM"), "{err}");
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn debug_output_never_shows_the_key() {
        let key = ApiKey::parse("k9_live_abcdef").unwrap();
        assert_eq!(format!("{key:?}"), "ApiKey(<redacted>)");
        assert!(!format!("{:?}", Some(key)).contains("abcdef"));
    }

    #[test]
    fn keys_are_trimmed_and_checked() {
        assert_eq!(ApiKey::parse(" k9_x \n").unwrap().expose(), "k9_x");
        assert!(ApiKey::parse("   ").is_err());
        assert!(ApiKey::parse("two words").is_err());
        assert!(ApiKey::parse(&"x".repeat(5000)).is_err());
    }
}
