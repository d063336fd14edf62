//! Real Chromium driven over WebDriver (Debian's `chromium` and `chromium-driver`, installed by
//! `cargo xtask browser`), with plain WebDriver HTTP; and `kube9-operator ui` as a process.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use serde_json::{Value, json};

use crate::operator::{binary, free_port};

/// WebDriver's key for an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Whether the browser tests can run here; `Err` when CI requires them and they cannot.
pub fn available() -> Result<bool> {
    let present = Path::new("/usr/bin/chromium").exists() && Path::new("/usr/bin/chromedriver").exists();
    if !present && std::env::var_os("KUBE9_REQUIRE_BROWSER").is_some() {
        bail!("chromium and chromedriver are missing: run `cargo xtask browser`");
    }
    Ok(present)
}

/// axe-core's script: `KUBE9_AXE_JS`, or where `cargo xtask browser` caches it.
pub fn axe_script() -> Result<String> {
    let path = match std::env::var_os("KUBE9_AXE_JS") {
        Some(p) => PathBuf::from(p),
        None => {
            let cache = std::env::var_os("KUBE9_CACHE_DIR").map(PathBuf::from).unwrap_or_else(|| {
                PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/kube9-operator")
            });
            cache.join("npm/axe-core-4.14.1/node_modules/axe-core/axe.min.js")
        }
    };
    std::fs::read_to_string(&path)
        .with_context(|| format!("reading axe-core at {} (run `cargo xtask browser`)", path.display()))
}

/// One headless Chromium session; the driver is stopped when dropped.
pub struct Browser {
    driver: Child,
    url: String,
    http: reqwest::Client,
    profile: PathBuf,
}

impl Browser {
    pub async fn start() -> Result<Browser> {
        let port = free_port()?;
        let driver = Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting chromedriver")?;
        let profile = std::env::temp_dir().join(crate::unique_name("chromium-profile"));
        let mut browser = Browser {
            driver,
            url: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
            profile: profile.clone(),
        };
        let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,1000", format!("--user-data-dir={}", profile.display())]
        }}}});
        let mut last = None;
        for _ in 0..50 {
            match browser.raw("POST", "/session", caps.clone()).await {
                Ok(v) => {
                    let id = v["sessionId"].as_str().context("no sessionId")?.to_owned();
                    browser.url = format!("{}/session/{id}", browser.url);
                    return Ok(browser);
                }
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        bail!("no WebDriver session: {last:?}")
    }

    async fn raw(&self, method: &str, path: &str, body: Value) -> Result<Value> {
        let url = format!("{}{path}", self.url);
        let request = match method {
            "GET" => self.http.get(&url),
            "DELETE" => self.http.delete(&url),
            _ => self.http.post(&url).header("content-type", "application/json").body(body.to_string()),
        };
        let response = request.send().await.with_context(|| format!("{method} {url}"))?;
        let status = response.status();
        let value: Value = serde_json::from_slice(&response.bytes().await?).unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("WebDriver {method} {path}: {status}: {}", value["value"]["message"]);
        }
        Ok(value["value"].clone())
    }

    async fn cmd(&self, method: &str, path: &str, body: Value) -> Result<Value> {
        self.raw(method, path, body).await
    }

    pub async fn goto(&self, url: &str) -> Result<()> {
        self.cmd("POST", "/url", json!({"url": url})).await.map(drop)
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page; its return value.
    pub async fn eval(&self, script: &str, args: Value) -> Result<Value> {
        self.cmd("POST", "/execute/sync", json!({"script": script, "args": args})).await
    }

    /// The text of the first element matching `css`, `None` when there is none.
    pub async fn text(&self, css: &str) -> Result<Option<String>> {
        let v = self
            .eval(
                "const e = document.querySelector(arguments[0]); return e ? e.textContent.trim() : null;",
                json!([css]),
            )
            .await?;
        Ok(v.as_str().map(str::to_owned))
    }

    /// Clicks the first element matching `css` as a person would (WebDriver's element click).
    pub async fn click(&self, css: &str) -> Result<()> {
        self.on_element(css, "click", json!({})).await
    }

    /// Types into the first element matching `css` until it holds `text` (a live update that
    /// replaced the field before the first key kept nothing typed: type again in the new one).
    pub async fn type_into(&self, css: &str, text: &str) -> Result<()> {
        let value = "const e = document.querySelector(arguments[0]); return e ? e.value : null;";
        for _ in 0..4 {
            self.on_element(css, "value", json!({"text": text})).await?;
            let now = self.eval(value, json!([css])).await?;
            if now == json!(text) {
                return Ok(());
            }
            if now != json!("") {
                self.on_element(css, "clear", json!({})).await?;
            }
        }
        bail!("{css} never held {text:?}")
    }

    /// An element command, found again when a live update replaced the element between the
    /// lookup and the command, as a person would try again: chromedriver says "stale element"
    /// when the element was gone before the command, "not interactable" when it went while the
    /// command focused it. An element that stays hidden fails after the last try.
    async fn on_element(&self, css: &str, command: &str, body: Value) -> Result<()> {
        let mut tries = 0;
        loop {
            let id = self.element(css).await?;
            match self.cmd("POST", &format!("/element/{id}/{command}"), body.clone()).await {
                Err(e)
                    if tries < 4 && ["stale element", "not interactable"].iter().any(|m| e.to_string().contains(m)) =>
                {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                other => return other.map(drop),
            }
        }
    }

    async fn element(&self, css: &str) -> Result<String> {
        let v = self.cmd("POST", "/element", json!({"using": "css selector", "value": css})).await?;
        Ok(v[ELEMENT].as_str().with_context(|| format!("no element {css}"))?.to_owned())
    }

    /// Presses Tab `n` times and returns the focused element's text (keyboard navigation).
    pub async fn tab(&self, n: usize) -> Result<String> {
        let mut actions = Vec::new();
        for _ in 0..n {
            actions.push(json!({"type": "keyDown", "value": "\u{E004}"}));
            actions.push(json!({"type": "keyUp", "value": "\u{E004}"}));
        }
        self.cmd("POST", "/actions", json!({"actions": [{"type": "key", "id": "kb", "actions": actions}]})).await?;
        let v = self
            .eval("return document.activeElement ? document.activeElement.textContent.trim() : '';", json!([]))
            .await?;
        Ok(v.as_str().unwrap_or_default().to_owned())
    }

    /// Writes a PNG of the viewport.
    pub async fn screenshot(&self, path: &Path) -> Result<()> {
        let v = self.cmd("GET", "/screenshot", Value::Null).await?;
        let png = base64::engine::general_purpose::STANDARD.decode(v.as_str().context("no screenshot")?)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, png).with_context(|| format!("writing {}", path.display()))
    }

    /// axe-core's serious and critical violations on the current page, as `id: help (n nodes)`.
    pub async fn axe(&self, axe: &str) -> Result<Vec<String>> {
        self.eval(&format!("{axe}\nreturn true;"), json!([])).await?;
        let v = self
            .cmd(
                "POST",
                "/execute/async",
                json!({"script": "const done = arguments[arguments.length - 1]; \
                    axe.run(document, {resultTypes: ['violations']}).then(r => done(r.violations.map(v => \
                    ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.length, target: v.nodes.map(n => n.target.join(' ')).slice(0, 3)})))) \
                    .catch(e => done([{id: 'axe-error', impact: 'critical', help: String(e), nodes: 0}]));", "args": []}),
            )
            .await?;
        Ok(v.as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter(|x| matches!(x["impact"].as_str(), Some("serious" | "critical")))
            .map(|x| format!("{}: {} ({} nodes: {})", x["id"], x["help"], x["nodes"], x["target"]))
            .collect())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// `kube9-operator ui` as a process, on a free loopback port; killed when dropped.
pub struct Ui {
    child: Child,
    pub url: String,
}

impl Ui {
    /// Starts the UI with `args` and `kubeconfig`; waits until it prints its URL.
    pub fn start(args: &[&str], kubeconfig: &Path) -> Result<Ui> {
        let mut child = Command::new(binary()?)
            .arg("ui")
            .args(["--address", "127.0.0.1:0"])
            .args(args)
            .env("KUBECONFIG", kubeconfig)
            .env("KUBE9_LOG_LEVEL", "kube9_ui=debug,warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting kube9-operator ui")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next().transpose()?.unwrap_or_default();
        let url = first.strip_prefix("kube9-ui: ").map(|u| u.trim_end_matches('/').to_owned());
        std::thread::spawn(move || for _ in lines {});
        match url {
            Some(url) => Ok(Ui { child, url }),
            None => {
                let _ = child.kill();
                bail!("kube9-operator ui printed {first:?} instead of its URL")
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Ui {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
