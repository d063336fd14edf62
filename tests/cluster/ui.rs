//! kube9-ui in real Chromium against the real API server, the real operator (as a process,
//! with its store) and the kube9-server simulator: every page shows the cluster's values
//! (checked against the CRDs and `query`), Acknowledge patches the CRD under the user's identity
//! and reaches the simulator, a status change reaches an open page without a reload, a user
//! without `patch` sees the API server's refusal, markup from the cluster and from kube9-server
//! runs nothing, and axe-core finds no serious or critical violation. Screenshots of every page
//! go to target/ui-screenshots.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::{Event, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube9_api::assessment::{Assessment, RUN_REQUESTED_ANNOTATION};
use kube9_api::operator_status::{OperatorStatus, OperatorStatusStatus, SINGLETON_NAME, Tier};
use kube9_server_sim::{Options, Simulator};
use kube9_tests::browser::{self, Browser, Ui};
use kube9_tests::operator::{DataDir, operator_status, singleton_lock};
use kube9_tests::{Ctx, kubeconfig_path, root, scenario, unique_name, wait_for};
use serde_json::{Value, json};

use crate::events::query;
use crate::findings::{assessment, careless_deployments, finished};
use crate::operator::{KEY, restricted_account, rule, start_with_key};
use crate::pro::{FAST, distinctive_deployment};

/// Markup and script as kube9-server or an Event might carry them; any of it running sets
/// `window.__pwned`.
const HOSTILE: &str = r#" <img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script><b>bold</b>"#;

const WAIT: Duration = Duration::from_secs(90);

fn screenshot_dir() -> std::path::PathBuf {
    root().join("target/ui-screenshots")
}

/// Visits `path`, saves a screenshot, runs axe-core, and checks that nothing from the cluster
/// ran as script.
async fn visit(b: &Browser, base: &str, path: &str, shot: &str, axe: &str) -> Result<()> {
    b.goto(&format!("{base}{path}")).await?;
    let title = b.text("main h1").await?.with_context(|| format!("{path}: no heading"))?;
    assert!(!title.is_empty());
    b.screenshot(&screenshot_dir().join(format!("{shot}.png"))).await?;
    let violations = b.axe(axe).await?;
    assert!(violations.is_empty(), "{path}: axe-core found serious or critical violations: {violations:#?}");
    no_script_ran(b, path).await
}

async fn no_script_ran(b: &Browser, path: &str) -> Result<()> {
    let pwned = b.eval("return window.__pwned === undefined ? null : window.__pwned;", json!([])).await?;
    assert_eq!(pwned, Value::Null, "{path}: markup from the cluster ran as script");
    let injected =
        b.eval("return document.querySelectorAll('main script, main img, main b').length;", json!([])).await?;
    assert_eq!(injected, json!(0), "{path}: markup from the cluster became elements");
    Ok(())
}

async fn field(b: &Browser, css: &str) -> Result<String> {
    b.text(css).await?.with_context(|| format!("no {css} on the page"))
}

fn name_of<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

async fn simulator() -> Result<(Simulator, std::path::PathBuf)> {
    let sim = Simulator::start(Options {
        tls: true,
        api_keys: vec![KEY.into()],
        metrics_interval_seconds: 2,
        insight_text_suffix: HOSTILE.into(),
        ..Default::default()
    })
    .await?;
    let ca = std::env::temp_dir().join(unique_name("sim-ca"));
    std::fs::write(&ca, sim.ca_pem().unwrap_or_default())?;
    Ok((sim, ca))
}

/// A Warning Event whose message holds markup, about the Deployment `object`.
async fn hostile_event(ctx: &Ctx, ns: &str, object: &str) -> Result<()> {
    let now = Timestamp::now();
    let event = Event {
        metadata: ObjectMeta { name: Some(unique_name("hostile")), namespace: Some(ns.into()), ..Default::default() },
        involved_object: ObjectReference {
            kind: Some("Deployment".into()),
            namespace: Some(ns.into()),
            name: Some(object.into()),
            api_version: Some("apps/v1".into()),
            ..Default::default()
        },
        type_: Some("Warning".into()),
        reason: Some("Hostile".into()),
        message: Some(format!("a message with markup:{HOSTILE}")),
        count: Some(1),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        source: Some(Default::default()),
        ..Default::default()
    };
    Api::<Event>::namespaced(ctx.client.clone(), ns).create(&PostParams::default(), &event).await?;
    Ok(())
}

/// The admin kubeconfig with a second context, `viewer`, for the token in `restricted`.
fn two_contexts(restricted: &std::path::Path) -> Result<std::path::PathBuf> {
    let mut admin: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(kubeconfig_path()?)?)?;
    let viewer: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(restricted)?)?;
    let current = admin["current-context"].as_str().unwrap_or_default().to_owned();
    let context = admin["contexts"]
        .as_sequence()
        .and_then(|cs| cs.iter().find(|c| c["name"].as_str() == Some(current.as_str())))
        .context("the admin kubeconfig's current context")?
        .clone();
    let viewer_user = viewer["users"]
        .as_sequence()
        .and_then(|us| us.iter().find(|u| u["name"] == context["context"]["user"]))
        .context("the viewer's user")?["user"]
        .clone();
    let mut users = admin["users"].as_sequence().cloned().unwrap_or_default();
    users.push(serde_yaml::to_value(json!({"name": "viewer", "user": {}}))?);
    if let Some(last) = users.last_mut() {
        last["user"] = viewer_user;
    }
    admin["users"] = serde_yaml::Value::Sequence(users);
    let mut contexts = admin["contexts"].as_sequence().cloned().unwrap_or_default();
    let mut second = context.clone();
    second["name"] = "viewer".into();
    second["context"]["user"] = "viewer".into();
    contexts.push(second);
    admin["contexts"] = serde_yaml::Value::Sequence(contexts);
    let path = std::env::temp_dir().join(unique_name("two-contexts"));
    std::fs::write(&path, serde_yaml::to_string(&admin)?)?;
    Ok(path)
}

async fn status_where(ctx: &Ctx, check: impl Fn(&OperatorStatusStatus) -> bool) -> Result<OperatorStatusStatus> {
    let mut last = None;
    let started = Instant::now();
    while started.elapsed() < WAIT {
        last = operator_status(&ctx.client).await?;
        if last.as_ref().is_some_and(&check) {
            return Ok(last.unwrap_or_default());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    bail!("the OperatorStatus never reached the expected state; last: {last:#?}")
}

/// True, and says so, when Chromium and chromedriver are not installed (`cargo xtask browser`).
fn no_browser() -> bool {
    let missing = !browser::available().expect("the browser");
    if missing {
        eprintln!("skipped: chromium and chromedriver are not installed (`cargo xtask browser`)");
    }
    missing
}

#[tokio::test]
async fn every_page_shows_the_clusters_values_and_writes_go_through_the_users_identity() {
    if no_browser() {
        return;
    }
    scenario(|ctx| async move {
        let axe = browser::axe_script()?;
        let _lock = singleton_lock(&ctx.client).await;
        let ns = ctx.namespace("ui").await?;
        distinctive_deployment(&ctx, &ns, "storefront").await?;
        careless_deployments(&ctx, &ns, 3).await?;
        let (sim, ca) = simulator().await?;
        let data = DataDir::new();
        let dir = data.0.to_str().unwrap_or_default().to_owned();
        let mut args = FAST.to_vec();
        args.extend(["--data-dir", dir.as_str()]);
        let op = start_with_key(&ns, &sim.url(), &ca, KEY, &args)?;
        let name = assessment(&ctx, &ns, None).await?;
        let mut run = finished(&ctx, &name, None).await?;
        hostile_event(&ctx, &ns, "storefront").await?;
        let status = status_where(&ctx, |s| {
            s.tier == Some(Tier::Pro) && s.insights.iter().any(|i| i.mapped && i.object.name == "storefront" && i.object.namespace.as_deref() == Some(ns.as_str()))
        })
        .await
        .map_err(|e| e.context(op.logs()))?;

        let ui = Ui::start(&["--data-dir", &dir], &kubeconfig_path()?)?;
        let b = Browser::start().await?;
        let base = format!("{}/c/0", ui.url);

        // Overview: the OperatorStatus, field by field.
        visit(&b, &base, "/", "overview", &axe).await?;
        let s = operator_status(&ctx.client).await?.unwrap_or_default();
        assert_eq!(field(&b, "[data-field=tier]").await?, name_of(&s.tier.unwrap()));
        assert_eq!(field(&b, "[data-field=mode]").await?, name_of(&s.mode.unwrap()));
        assert_eq!(field(&b, "[data-field=version]").await?, s.version.clone().unwrap_or_default());
        assert_eq!(field(&b, "[data-field=clusterId]").await?, s.cluster_id.clone().unwrap_or_default());
        assert_eq!(field(&b, "[data-field=namespace]").await?, ns);
        let conditions = b.eval("return document.querySelectorAll('tr[data-condition]').length;", json!([])).await?;
        assert_eq!(conditions, json!(s.conditions.len()));
        // Keyboard: the first Tab reaches the skip link, the next ones the navigation in order.
        assert_eq!(b.tab(1).await?, "Skip to content");
        assert_eq!(b.tab(1).await?, "Overview");
        assert_eq!(b.tab(1).await?, "Assessments");

        // Assessments: score, pillars, and the trend from the store's history.
        visit(&b, &base, "/assessments", "assessments", &axe).await?;
        let section = format!("section[data-assessment='{name}']");
        assert_eq!(field(&b, &format!("{section} [data-field=score]")).await?, run.score.unwrap_or_default().to_string());
        for p in &run.pillars {
            let shown = field(&b, &format!("{section} tr[data-pillar='{}'] [data-field=pillarScore]", p.pillar.as_str())).await?;
            assert_eq!(shown, p.score.to_string(), "{:?}", p.pillar);
        }
        let history = query(&data.0, &["assessments", "history", &name])?;
        let runs = history["runs"].as_array().map(Vec::len).unwrap_or(0);
        let source = field(&b, &format!("{section} [data-field=trendSource]")).await?;
        let unit = if runs == 1 { "run" } else { "runs" };
        assert!(source.contains(&format!("the operator's store: {runs} {unit}")), "{source}");
        let series = b.eval("return document.querySelectorAll(arguments[0]).length;", json!([format!("{section} svg .s-score")])).await?;
        assert_eq!(series, json!(1), "the score's series is drawn");

        // Run now: the button sets the run-request annotation under the user's identity, and
        // the operator runs the Assessment again.
        let annotated = |a: &Assessment| a.metadata.annotations.as_ref().and_then(|m| m.get(RUN_REQUESTED_ANNOTATION).cloned());
        let before = annotated(&Api::<Assessment>::all(ctx.client.clone()).get(&name).await?);
        b.click(&format!("{section} form[action$='/run'] button[type=submit]")).await?;
        wait_for(WAIT, || async {
            let now = annotated(&Api::<Assessment>::all(ctx.client.clone()).get(&name).await?);
            Ok(now.is_some() && now != before)
        })
        .await
        .context("Run now never set the run-request annotation")?;
        run = finished(&ctx, &name, run.run_id.as_deref()).await.context("no run after Run now")?;
        wait_for(Duration::from_secs(10), || async {
            Ok(b.text(&format!("{section} [data-field=lastRun]")).await?.unwrap_or_default()
                == run.completed_at.as_ref().map(|t| kube9_api::time::rfc3339(t.0)).unwrap_or_default())
        })
        .await
        .context("the page never showed the requested run")?;

        // Findings: counts and rows as `query findings` gives them, then one filter.
        visit(&b, &base, &format!("/findings?assessment={name}"), "findings", &axe).await?;
        let all = query(&data.0, &["findings", "--assessment", &name, "--limit", "50"])?;
        assert_eq!(field(&b, "[data-field=matching]").await?, all["matching"].to_string());
        assert_eq!(field(&b, "[data-field=total]").await?, all["total"].to_string());
        let shown: Vec<String> = serde_json::from_value(
            b.eval("return [...document.querySelectorAll('tr.finding')].map(r => r.dataset.check);", json!([])).await?,
        )?;
        let expected: Vec<String> =
            all["findings"].as_array().into_iter().flatten().map(|f| f["checkId"].as_str().unwrap_or_default().to_owned()).collect();
        assert_eq!(shown, expected);
        b.goto(&format!("{base}/findings?assessment={name}&pillar=reliability")).await?;
        let reliability = query(&data.0, &["findings", "--assessment", &name, "--pillar", "reliability", "--limit", "50"])?;
        assert_eq!(field(&b, "[data-field=matching]").await?, reliability["matching"].to_string());
        b.goto(&format!("{base}/findings?assessment={name}&text=CARELESS-0001")).await?;
        let text = query(&data.0, &["findings", "--assessment", &name, "--text", "CARELESS-0001", "--limit", "50"])?;
        assert!(text["matching"].as_u64().unwrap_or(0) > 0, "{text}");
        assert_eq!(field(&b, "[data-field=matching]").await?, text["matching"].to_string());

        // Checks: the whole catalogue.
        visit(&b, &base, "/checks", "checks", &axe).await?;
        let rows = b.eval("return document.querySelectorAll('tr[data-check]').length;", json!([])).await?;
        assert_eq!(rows, json!(kube9_checks::registry::registry().len()));

        // Insights: every one in the status (read before and after the page, so an insight that
        // came or went meanwhile cannot make it flaky), its markup shown as text.
        let ids = |s: &OperatorStatusStatus| s.insights.iter().map(|i| i.id.clone()).collect::<std::collections::BTreeSet<_>>();
        let before = ids(&operator_status(&ctx.client).await?.unwrap_or_default());
        visit(&b, &base, "/insights", "insights", &axe).await?;
        let after = ids(&operator_status(&ctx.client).await?.unwrap_or_default());
        let shown: std::collections::BTreeSet<String> = serde_json::from_value(
            b.eval("return [...document.querySelectorAll('article[data-insight]')].map(a => a.dataset.insight);", json!([])).await?,
        )?;
        if before == after {
            assert_eq!(shown, after, "the page shows exactly the status's insights");
        } else {
            assert!(shown.iter().all(|id| before.contains(id) || after.contains(id)), "{shown:?} against {before:?} / {after:?}");
        }
        let target = status.insights.iter().find(|i| i.mapped && i.object.name == "storefront" && i.object.namespace.as_deref() == Some(ns.as_str())).context("an insight")?;
        let article = format!("article[data-insight='{}']", target.id);
        let text = field(&b, &format!("{article} .text")).await?;
        assert!(text.contains("<script>window.__pwned=2</script>"), "the markup is shown as text: {text}");
        assert_eq!(field(&b, &format!("{article} [data-field=object]")).await?, format!("Deployment {ns}/storefront"));

        // Acknowledge with a note: the spec is patched, the simulator receives it, the page shows it synced.
        b.type_into(&format!("{article} textarea[name=note]"), "seen <b>by</b> the UI test").await?;
        b.click(&format!("{article} button[value=acknowledge]")).await?;
        b.screenshot(&screenshot_dir().join("acknowledged.png")).await?;
        wait_for(WAIT, || async {
            let o = Api::<OperatorStatus>::all(ctx.client.clone()).get(SINGLETON_NAME).await?;
            Ok(o.spec.acknowledgements.get(&target.id).is_some_and(|a| a.note.as_deref() == Some("seen <b>by</b> the UI test")))
        })
        .await
        .context("the spec never held the acknowledgement")?;
        wait_for(WAIT, || async { Ok(sim.acknowledgements().iter().any(|a| a.id == target.id && a.state == "acknowledged")) })
            .await
            .with_context(|| format!("the simulator never received the acknowledgement; it has {:?}", sim.acknowledgements()))?;
        let synced = Instant::now();
        loop {
            let sync = b.text(&format!("{article} [data-field=sync]")).await?.unwrap_or_default();
            if sync.contains("synced") {
                break;
            }
            if synced.elapsed() > WAIT {
                bail!("the page never showed the acknowledgement synced: {sync:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        no_script_ran(&b, "/insights after acknowledging").await?;

        // Events: the stored history, the hostile message as text.
        visit(&b, &base, "/events", "events", &axe).await?;
        let events = query(&data.0, &["events", "list", "--object-namespace", &ns, "--limit", "200"])?;
        let hostile = events["events"]
            .as_array()
            .and_then(|es| es.iter().find(|e| e["description"].as_str().is_some_and(|d| d.contains("<script>"))))
            .context("the store has the hostile event")?;
        b.goto(&format!("{base}/events?namespace={ns}")).await?;
        let row = field(&b, &format!("tr[data-event='{}']", hostile["id"].as_str().unwrap_or_default())).await?;
        assert!(row.contains("<script>window.__pwned=2</script>"), "{row}");
        no_script_ran(&b, "/events").await?;

        // Argo CD and AI Conformance: what the status says.
        visit(&b, &base, "/argocd", "argocd", &axe).await?;
        let s = operator_status(&ctx.client).await?.unwrap_or_default();
        match &s.argocd {
            Some(a) => assert_eq!(field(&b, "[data-field=argocdDetected]").await?, a.detected.to_string()),
            None => assert!(field(&b, "main .notice").await?.contains("not reported")),
        }
        visit(&b, &base, "/conformance", "conformance", &axe).await?;
        match &s.ai_conformance {
            Some(c) => {
                let rows = b.eval("return document.querySelectorAll('tr[data-requirement]').length;", json!([])).await?;
                assert_eq!(rows, json!(c.requirements.len()));
            }
            None => assert!(field(&b, "main .notice").await?.contains("not run")),
        }

        // Live: a run requested elsewhere shows on the open page within 2 s of its status, no reload.
        b.goto(&format!("{base}/assessments")).await?;
        wait_for(Duration::from_secs(10), || async {
            Ok(b.eval("return document.getElementById('main').dataset.liveState || '';", json!([])).await? == json!("open"))
        })
        .await?;
        b.eval("window.__notReloaded = true; return true;", json!([])).await?;
        let api: Api<Assessment> = Api::all(ctx.client.clone());
        let patch = json!({"metadata": {"annotations": {RUN_REQUESTED_ANNOTATION: Timestamp::now().to_string()}}});
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
        let (completed, seen) = loop {
            let now = api.get(&name).await?.status.unwrap_or_default();
            if now.run_id != run.run_id && now.completed_at.is_some() && now.completed_at != run.completed_at {
                break (now.completed_at.map(|t| kube9_api::time::rfc3339(t.0)).unwrap_or_default(), Instant::now());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let shown = loop {
            let text = b.text(&format!("{section} [data-field=lastRun]")).await?.unwrap_or_default();
            if text == completed {
                break seen.elapsed();
            }
            if seen.elapsed() > Duration::from_secs(10) {
                bail!("the open page still shows {text:?}, not the run completed at {completed}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        println!("ui: a completed run reached the open page {} ms after the test saw its status", shown.as_millis());
        assert!(shown <= Duration::from_secs(2), "the page updated {shown:?} after the status changed");
        assert_eq!(b.eval("return window.__notReloaded === true;", json!([])).await?, json!(true), "the page reloaded");

        // POSTs need the token and this origin.
        let http = reqwest::Client::new();
        let post = |origin: &str, token: &str| {
            http.post(format!("{base}/insights/{}", target.id))
                .header("origin", origin)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("token={token}&action=dismiss&note="))
                .send()
        };
        let token = b.eval("return document.querySelector('input[name=token]').value;", json!([])).await?;
        let token = token.as_str().unwrap_or_default().to_owned();
        assert_eq!(post(&ui.url, "forged").await?.status(), 403);
        assert_eq!(post("http://evil.example", &token).await?.status(), 403);
        // DNS rebinding: a page of evil.example whose name now points at the UI is same-origin
        // to the browser, so it could read the token and post with a matching Origin; the Host
        // it sends is its own, and the UI refuses it, page and POST alike.
        let port = reqwest::Url::parse(&ui.url)?.port().unwrap_or(80);
        let rebound = format!("evil.example:{port}");
        let page = http.get(format!("{base}/")).header("host", &rebound).send().await?;
        assert_eq!(page.status(), 421, "a page asked for by another host's name");
        let forged = http
            .post(format!("{base}/insights/{}", target.id))
            .header("host", &rebound)
            .header("origin", format!("http://{rebound}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={token}&action=dismiss&note="))
            .send()
            .await?;
        assert_eq!(forged.status(), 421, "a POST with the real token from a rebound name");

        // --read-only (the chart's default): the same pages without a form that writes, and every
        // POST refused, whatever it carries. Its store cannot be read (a directory the operator
        // never used): the trend falls back to the status and says why, the findings page says
        // what failed.
        let missing = data.0.join("not-a-store");
        let read_only = Ui::start(&["--read-only", "--data-dir", &missing.to_string_lossy()], &kubeconfig_path()?)?;
        let ro = format!("{}/c/0", read_only.url);
        for (page, shown) in [("/insights", article.clone()), ("/assessments", section.clone())] {
            b.goto(&format!("{ro}{page}")).await?;
            assert!(b.text(&shown).await?.is_some(), "{page} shows {shown}");
            let writes = b.eval("return document.querySelectorAll('form[method=post], textarea').length;", json!([])).await?;
            assert_eq!(writes, json!(0), "{page} offers a write");
        }
        // Still on the Assessments page.
        let source = field(&b, &format!("{section} [data-field=trendSource]")).await?;
        assert!(source.contains("the status: the last") && source.contains("could not be read") && source.contains("cannot be opened"), "{source}");
        b.goto(&format!("{ro}/findings?assessment={name}")).await?;
        let failed = field(&b, "main .refusal").await?;
        assert!(failed.contains("Reading the findings from the operator's store failed") && failed.contains("does not exist"), "{failed}");
        for path in [format!("/insights/{}", target.id), format!("/assessments/{name}/run")] {
            let refused = http
                .post(format!("{ro}{path}"))
                .header("origin", &read_only.url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body("token=any&action=dismiss&note=")
                .send()
                .await?;
            assert_eq!(refused.status(), 403, "{path}");
            let body = refused.text().await?;
            assert!(body.contains("read-only"), "{path}: {body}");
        }
        drop(read_only);

        // A user with only `get` on the kube9 CRDs: the fleet shows both clusters; the refusal
        // of what it may not do is the API server's own message.
        let viewer = unique_name("ui-viewer");
        let restricted = restricted_account(
            &ctx,
            &ns,
            &viewer,
            vec![rule(&["kube9.io"], &["operatorstatuses", "assessments"], &["get"])],
            vec![],
        )
        .await?;
        let fleet_config = two_contexts(&restricted)?;
        let fleet = Ui::start(&["--all-contexts", "--data-dir", &dir], &fleet_config)?;
        visit(&b, &fleet.url, "/", "fleet", &axe).await?;
        let admin_row = "tr[data-cluster='kube9-testenv']";
        let current = kube::config::Kubeconfig::read_from(kubeconfig_path()?)?.current_context.unwrap_or_default();
        let admin_row = if current == "kube9-testenv" { admin_row.to_owned() } else { format!("tr[data-cluster='{current}']") };
        let tier = name_of(&s.tier.unwrap());
        assert_eq!(field(&b, &format!("{admin_row} [data-field=tier]")).await?, tier);
        assert_eq!(field(&b, &format!("{admin_row} [data-field=problems]")).await?, "—");
        assert_eq!(field(&b, "tr[data-cluster='viewer'] [data-field=tier]").await?, tier);
        let problems = field(&b, "tr[data-cluster='viewer'] [data-field=problems]").await?;
        assert!(
            problems.contains("Assessments:") && problems.contains(&format!("system:serviceaccount:{ns}:{viewer}")) && problems.contains("cannot list"),
            "{problems}"
        );
        let viewer_index = b
            .eval("return [...document.querySelectorAll('tr[data-cluster]')].findIndex(r => r.dataset.cluster === 'viewer');", json!([]))
            .await?;
        // Another insight as the status holds it now (insights of other tests' namespaces come
        // and go), this test's own first.
        let now = operator_status(&ctx.client).await?.unwrap_or_default();
        let mine = |i: &&kube9_api::operator_status::Insight| i.object.namespace.as_deref() == Some(ns.as_str());
        let other = now
            .insights
            .iter()
            .filter(|i| i.id != target.id)
            .find(mine)
            .or_else(|| now.insights.iter().find(|i| i.id != target.id))
            .unwrap_or(target);
        b.goto(&format!("{}/c/{}/insights", fleet.url, viewer_index)).await?;
        let other_article = format!("article[data-insight='{}']", other.id);
        // Other tests change the status meanwhile, and a live update may replace the page under
        // the click: click again (on the page as it is now) until the answer is shown.
        let mut clicks = 0;
        let refusal = loop {
            clicks += 1;
            b.click(&format!("{other_article} button[value=dismiss]")).await?;
            let shown = Instant::now();
            while shown.elapsed() < Duration::from_secs(3) {
                if b.text("main .refusal").await.ok().flatten().is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            match b.text("main .refusal").await.ok().flatten() {
                Some(text) => break text,
                None if clicks < 3 => b.goto(&format!("{}/c/{}/insights", fleet.url, viewer_index)).await?,
                None => bail!("no refusal after {clicks} clicks: the page says {:?}", b.text("main").await?),
            }
        };
        assert!(
            refusal.contains(&format!("system:serviceaccount:{ns}:{viewer}")) && refusal.contains("cannot patch resource \"operatorstatuses\""),
            "{refusal}"
        );
        b.screenshot(&screenshot_dir().join("refusal.png")).await?;
        let o = Api::<OperatorStatus>::all(ctx.client.clone()).get(SINGLETON_NAME).await?;
        assert!(
            o.spec.acknowledgements.get(&other.id).is_none_or(|a| name_of(&a.state) != "dismissed" || other.id == target.id),
            "the refused write changed nothing"
        );
        drop(b);
        drop(fleet);
        drop(ui);
        let _ = std::fs::remove_file(&fleet_config);
        let _ = std::fs::remove_file(&restricted);
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn the_argo_cd_page_shows_the_applications_their_drift_and_a_resource_tree_as_query_gives_them() {
    if no_browser() {
        return;
    }
    scenario(|ctx| async move {
        use k8s_openapi::api::apps::v1::Deployment;
        use kube9_tests::argocd::{argocd_server, ensure_argo_crds};

        use crate::argocd::{app_status, create_app, ok_query, set_status, workload};

        let axe = browser::axe_script()?;
        let _lock = singleton_lock(&ctx.client).await;
        ensure_argo_crds(&ctx.client).await?;
        let argo = ctx.namespace("ui-argocd").await?;
        let shop = ctx.namespace("ui-shop").await?;
        let op_ns = ctx.namespace("ui-kube9").await?;
        Api::<Deployment>::namespaced(ctx.client.clone(), &argo)
            .create(&PostParams::default(), &argocd_server(&argo))
            .await?;
        let data = DataDir::new();
        let dir = data.0.to_string_lossy().into_owned();
        let op =
            kube9_tests::operator::Operator::start(&op_ns, &["--argocd-namespace", &argo, "--data-dir", &dir], &[])?;
        workload(&ctx, &shop, 2).await?;
        let apps = create_app(&ctx, &argo, "shop", &shop).await?;
        set_status(&apps, "shop", app_status(&shop, "Synced", "Healthy", "abc123")).await?;
        status_where(&ctx, |s| {
            s.argocd.as_ref().and_then(|a| a.applications.as_ref()).is_some_and(|a| a.stored_count == 1)
        })
        .await
        .map_err(|e| e.context(op.logs()))?;
        // Drift: the operator records it as an event about the Application.
        set_status(&apps, "shop", app_status(&shop, "OutOfSync", "Degraded", "def456")).await?;
        status_where(&ctx, |s| {
            s.argocd
                .as_ref()
                .and_then(|a| a.applications.as_ref())
                .is_some_and(|a| a.sync_status_counts.get("OutOfSync") == Some(&1))
        })
        .await?;
        wait_for(WAIT, || async {
            let drift = query(&data.0, &["events", "list", "--object-kind=Application", "--limit=50"])?;
            Ok(drift["events"].as_array().is_some_and(|e| !e.is_empty()))
        })
        .await
        .context("the drift event is stored")?;

        let ui = Ui::start(&["--data-dir", &dir], &kubeconfig_path()?)?;
        let b = Browser::start().await?;
        let base = format!("{}/c/0", ui.url);
        visit(&b, &base, "/argocd", "argocd-applications", &axe).await?;
        let listed = ok_query(None, &["argocd", "apps", "list", "--format", "json"])?;
        let app = listed["applications"]
            .as_array()
            .and_then(|a| a.iter().find(|a| a["name"] == "shop" && a["namespace"] == argo.as_str()))
            .context("query lists the Application")?;
        let row = field(&b, "tr[data-app='shop']").await?;
        for value in [app["sync"]["status"].as_str(), app["health"]["status"].as_str()] {
            assert!(row.contains(value.unwrap_or("?")), "{row} lacks {value:?}");
        }
        assert!(row.contains("OutOfSync") && row.contains("Degraded"), "{row}");
        let drift = query(&data.0, &["events", "list", "--object-kind=Application", "--limit=50"])?;
        let shown = b.eval("return document.querySelectorAll('table.events tr.event').length;", json!([])).await?;
        assert_eq!(shown, json!(drift["events"].as_array().map(Vec::len).unwrap_or(0)));

        // The resource tree, from `query argocd resource-tree get`.
        b.click("tr[data-app='shop'] a").await?;
        let tree =
            ok_query(None, &["argocd", "resource-tree", "get", "shop", "--namespace", &argo, "--format", "json"])?;
        let nodes = tree["nodes"].as_array().map(Vec::len).unwrap_or(0);
        assert!(nodes >= 2, "{tree}");
        let items = b.eval("return document.querySelectorAll('ul.tree li').length;", json!([])).await?;
        assert_eq!(items, json!(nodes), "every node of the tree is listed once");
        b.screenshot(&screenshot_dir().join("argocd-tree.png")).await?;
        let violations = b.axe(&axe).await?;
        assert!(violations.is_empty(), "{violations:#?}");
        Ok(())
    })
    .await;
}

#[test]
fn listening_beyond_loopback_needs_allow_remote_and_warns() -> Result<()> {
    use std::io::{BufRead, BufReader};
    let refused = std::process::Command::new(kube9_tests::operator::binary()?)
        .args(["ui", "--address", "0.0.0.0:0"])
        .env("KUBECONFIG", kubeconfig_path()?)
        .output()?;
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("not a loopback address") && stderr.contains("--allow-remote"), "{stderr}");

    let mut allowed = std::process::Command::new(kube9_tests::operator::binary()?)
        .args(["ui", "--address", "0.0.0.0:0", "--allow-remote", "--log-level", "warn"])
        .env("KUBECONFIG", kubeconfig_path()?)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let url = BufReader::new(allowed.stdout.take().context("stdout")?).lines().next().transpose()?.unwrap_or_default();
    let _ = allowed.kill();
    let out = allowed.wait_with_output()?;
    assert!(url.starts_with("kube9-ui: http://0.0.0.0:"), "{url}");
    let logs = String::from_utf8_lossy(&out.stderr);
    assert!(logs.contains("listening beyond loopback"), "{logs}");
    Ok(())
}
