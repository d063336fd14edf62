//! Where a replica serves its store, the token every request carries, and the state file
//! `query` reads beside the replica.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The Lease annotation in which the leader says where it serves its store: `<identity> <url>`
/// (the identity, so a standby never takes an old leader's address for the new one's).
pub const ANNOTATION: &str = "kube9.io/replication-url";
/// This replica's part, for `query` run beside it, in the data directory.
pub const STATE_FILE: &str = "replica.json";
/// The shortest token accepted.
const MIN_TOKEN: usize = 16;

/// Why replication cannot start, naming the setting.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("KUBE9_REPLICATION_ADDR {0:?} is not an address (host:port)")]
    Addr(String),
    #[error(
        "KUBE9_REPLICATION_ADDR is set but KUBE9_REPLICATION_TOKEN_FILE is not: the replication port never opens without a token"
    )]
    NoToken,
    #[error("cannot read the replication token KUBE9_REPLICATION_TOKEN_FILE={path}: {why}")]
    Token { path: String, why: String },
    #[error("the replication token in {0} is shorter than {MIN_TOKEN} characters")]
    ShortToken(String),
    #[error("replication keeps the store: it needs --data-dir")]
    NoStore,
    #[error("replication needs leader election (--leader-election)")]
    NoElection,
    #[error("the replicas cannot be told where this one listens: set KUBE9_REPLICATION_URL or POD_IP")]
    NoUrl,
}

/// The shared secret both replicas and the CLI in their Pods hold.
#[derive(Clone)]
pub struct Token {
    digest: [u8; 32],
    text: String,
}

impl Token {
    pub fn new(text: &str) -> Token {
        Token { digest: Sha256::digest(text.trim().as_bytes()).into(), text: text.trim().to_owned() }
    }

    /// Reads the token file.
    pub fn read(path: &Path) -> Result<Token, SettingsError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| SettingsError::Token { path: path.display().to_string(), why: e.to_string() })?;
        if text.trim().len() < MIN_TOKEN {
            return Err(SettingsError::ShortToken(path.display().to_string()));
        }
        Ok(Token::new(&text))
    }

    /// Whether an `Authorization` header carries this token. Digests are compared, so the time
    /// taken says nothing about how much of a guess was right.
    pub fn admits(&self, header: Option<&str>) -> bool {
        let Some(presented) = header.and_then(|h| h.strip_prefix("Bearer ")) else { return false };
        let digest: [u8; 32] = Sha256::digest(presented.trim().as_bytes()).into();
        digest == self.digest
    }

    pub fn header(&self) -> String {
        format!("Bearer {}", self.text)
    }
}

/// Where this replica serves its store and how the others reach it.
#[derive(Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub url: String,
    pub token: Token,
    pub token_file: PathBuf,
    pub data_dir: PathBuf,
}

impl Settings {
    /// From the environment; None when `KUBE9_REPLICATION_ADDR` is not set (replication off).
    pub fn from_env(data_dir: Option<&Path>, election: bool) -> Result<Option<Settings>, SettingsError> {
        Settings::from_vars(|k| std::env::var(k).ok().filter(|v| !v.is_empty()), data_dir, election)
    }

    fn from_vars(
        var: impl Fn(&str) -> Option<String>,
        data_dir: Option<&Path>,
        election: bool,
    ) -> Result<Option<Settings>, SettingsError> {
        let Some(addr) = var("KUBE9_REPLICATION_ADDR") else { return Ok(None) };
        let listen: SocketAddr = addr.parse().map_err(|_| SettingsError::Addr(addr.clone()))?;
        let token_file = PathBuf::from(var("KUBE9_REPLICATION_TOKEN_FILE").ok_or(SettingsError::NoToken)?);
        let token = Token::read(&token_file)?;
        let data_dir = data_dir.ok_or(SettingsError::NoStore)?.to_owned();
        if !election {
            return Err(SettingsError::NoElection);
        }
        let url = match (var("KUBE9_REPLICATION_URL"), var("POD_IP")) {
            (Some(url), _) => url.trim_end_matches('/').to_owned(),
            (None, Some(ip)) => match ip.parse::<std::net::IpAddr>() {
                Ok(ip) => format!("http://{}", SocketAddr::new(ip, listen.port())),
                Err(_) => return Err(SettingsError::NoUrl),
            },
            (None, None) if !listen.ip().is_unspecified() => format!("http://{listen}"),
            (None, None) => return Err(SettingsError::NoUrl),
        };
        Ok(Some(Settings { listen, url, token, token_file, data_dir }))
    }
}

/// This replica's part as `query` beside it reads it from [`STATE_FILE`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub identity: String,
    pub leading: bool,
    pub leader: Option<String>,
    pub leader_url: Option<String>,
    pub token_file: PathBuf,
}

impl State {
    pub fn read(dir: &Path) -> Option<State> {
        serde_json::from_slice(&std::fs::read(dir.join(STATE_FILE)).ok()?).ok()
    }

    /// Replaces the file whole (a reader never sees half of it).
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let tmp = dir.join(format!("{STATE_FILE}.tmp"));
        std::fs::write(&tmp, serde_json::to_vec(self)?)?;
        std::fs::rename(tmp, dir.join(STATE_FILE))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| pairs.iter().find(|(name, _)| *name == k).map(|(_, v)| v.to_string())
    }

    #[test]
    fn the_port_never_opens_without_a_token_and_the_url_comes_from_the_pod_ip() {
        let dir = tempfile_dir();
        let token = dir.join("token");
        std::fs::write(&token, "0123456789abcdef-token\n").unwrap();
        let token_path: &'static str = Box::leak(token.display().to_string().into_boxed_str());
        assert!(Settings::from_vars(vars(&[]), Some(&dir), true).unwrap().is_none());
        let no_token = Settings::from_vars(vars(&[("KUBE9_REPLICATION_ADDR", "0.0.0.0:8443")]), Some(&dir), true);
        assert!(matches!(no_token, Err(SettingsError::NoToken)));
        let pairs: &'static [(&str, &str)] = Box::leak(Box::new([
            ("KUBE9_REPLICATION_ADDR", "0.0.0.0:8443"),
            ("KUBE9_REPLICATION_TOKEN_FILE", token_path),
            ("POD_IP", "10.1.2.3"),
        ]));
        let settings = Settings::from_vars(vars(pairs), Some(&dir), true).unwrap().unwrap();
        assert_eq!(settings.url, "http://10.1.2.3:8443");
        assert!(settings.token.admits(Some("Bearer 0123456789abcdef-token")));
        assert!(!settings.token.admits(Some("Bearer 0123456789abcdef-tokem")));
        assert!(!settings.token.admits(None));
        assert!(matches!(Settings::from_vars(vars(pairs), None, true), Err(SettingsError::NoStore)));
        assert!(matches!(Settings::from_vars(vars(pairs), Some(&dir), false), Err(SettingsError::NoElection)));
        // Nowhere to be reached from another Pod: refused rather than advertised wrong.
        let unreachable: &'static [(&str, &str)] = Box::leak(Box::new([
            ("KUBE9_REPLICATION_ADDR", "0.0.0.0:8443"),
            ("KUBE9_REPLICATION_TOKEN_FILE", token_path),
        ]));
        assert!(matches!(Settings::from_vars(vars(unreachable), Some(&dir), true), Err(SettingsError::NoUrl)));
        std::fs::write(&token, "short").unwrap();
        assert!(matches!(Settings::from_vars(vars(pairs), Some(&dir), true), Err(SettingsError::ShortToken(_))));
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("kube9-replica-{}-{}", std::process::id(), rand::random::<u32>()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
