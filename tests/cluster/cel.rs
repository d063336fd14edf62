//! The CRDs' CEL rules (`x-kubernetes-validations`, Kubernetes 1.25 and later): the API
//! server itself refuses a bad Assessment with the rule's message, as `kubectl apply` shows
//! it. Servers before 1.25 ignore the rules, so there the test only checks that the CRDs with
//! them are accepted as Helm and `kubectl replace` send them (server-side apply is refused
//! there: `ensure_crds` applies them without the rules) and says it skipped the rest.

use kube::api::{Api, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube9_api::Assessment;
use kube9_tests::{Ctx, kubectl, scenario, unique_name};
use serde_json::{Value, json};

use crate::versions::server_minor;

fn assessments(ctx: &Ctx) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk(kube9_api::GROUP, kube9_api::VERSION, "Assessment");
    Api::all_with(ctx.client.clone(), &ApiResource::from_gvk_with_plural(&gvk, "assessments"))
}

fn assessment(name: &str, spec: Value) -> anyhow::Result<DynamicObject> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "kube9.io/v1alpha1", "kind": "Assessment", "metadata": {"name": name}, "spec": spec,
    }))?)
}

/// What the API server answers to creating an Assessment with `spec`: the message of a 422.
async fn refusal(ctx: &Ctx, spec: Value) -> anyhow::Result<String> {
    let name = unique_name("cel");
    ctx.cleanup::<Assessment>(None, &name);
    match assessments(ctx).create(&PostParams::default(), &assessment(&name, spec.clone())?).await {
        Ok(_) => anyhow::bail!("the API server accepted an Assessment with spec {spec}"),
        Err(kube::Error::Api(status)) if status.code == 422 => Ok(status.message),
        Err(other) => Err(other.into()),
    }
}

#[tokio::test]
async fn cel_rules_refuse_each_bad_assessment_field_with_their_message() {
    scenario(|ctx| async move {
        let minor = server_minor(&ctx).await?;
        if minor < 25 {
            // Helm creates CRDs, and `kubectl replace` updates them, with the rules in: such a
            // server drops what it does not know (only server-side apply refuses it).
            for file in ["assessments.kube9.io.yaml", "operatorstatuses.kube9.io.yaml"] {
                let path = kube9_tests::root().join("crds").join(file);
                // --validate=false: as Helm, no client-side check against the server's schema.
                kubectl(&["replace", "--dry-run=server", "--validate=false", "-f", &path.display().to_string()])?;
            }
            eprintln!("skipped: CEL validation rules need Kubernetes 1.25 or later; this server is 1.{minor}");
            return Ok(());
        }
        let checks = "each entry is a check id (pillar.name, such as security.privileged), a pillar (such as reliability) or *";
        let namespaces = "each entry is a namespace name (lower-case letters, digits and '-', at most 63)";
        let cases = [
            (json!({"pillars": ["security", "reliability", "security"]}), "spec.pillars", "pillars: name each pillar at most once".to_owned()),
            (json!({"checks": {"include": ["security.Privileged"]}}), "spec.checks", format!("checks.include: {checks}")),
            (json!({"checks": {"include": ["secrity"]}}), "spec.checks", format!("checks.include: {checks}")),
            (json!({"checks": {"exclude": ["reliability.replicas", "vibes.good"]}}), "spec.checks", format!("checks.exclude: {checks}")),
            (json!({"namespaces": {"include": ["Payments"]}}), "spec.namespaces", format!("namespaces.include: {namespaces}")),
            (json!({"namespaces": {"exclude": ["a".repeat(64)]}}), "spec.namespaces", format!("namespaces.exclude: {namespaces}")),
            (json!({"schedule": {"intervalSeconds": 5}}), "spec.schedule",
                "schedule.intervalSeconds must be from 10 (ten seconds) to 2592000 (30 days)".to_owned()),
            (json!({"schedule": {"intervalSeconds": 2_592_001}}), "spec.schedule",
                "schedule.intervalSeconds must be from 10 (ten seconds) to 2592000 (30 days)".to_owned()),
        ];
        for (spec, field, message) in cases {
            let refused = refusal(&ctx, spec.clone()).await?;
            assert!(refused.contains(&format!("{field}: Invalid value: {message}")), "{spec}: {refused}");
        }

        // Every accepted form still is.
        let name = unique_name("cel-ok");
        ctx.cleanup::<Assessment>(None, &name);
        let good = json!({
            "pillars": ["security", "reliability"],
            "checks": {"include": ["*", "reliability", "security.run-as-non-root"], "exclude": ["cost-optimization.load-balancers"]},
            "namespaces": {"include": ["payments", "kube9-demo-shop"], "exclude": ["kube-system"]},
            "schedule": {"intervalSeconds": 3600},
        });
        assessments(&ctx).create(&PostParams::default(), &assessment(&name, good)?).await?;

        // What a person sees from `kubectl apply`.
        let dir = std::env::temp_dir().join(unique_name("cel-apply"));
        std::fs::create_dir_all(&dir)?;
        let file = dir.join("bad.yaml");
        let bad_name = unique_name("cel-kubectl");
        ctx.cleanup::<Assessment>(None, &bad_name);
        std::fs::write(
            &file,
            format!(
                "apiVersion: kube9.io/v1alpha1\nkind: Assessment\nmetadata:\n  name: {bad_name}\nspec:\n  checks:\n    include: [security.Privileged]\n"
            ),
        )?;
        let error = kubectl(&["apply", "-f", &file.display().to_string()]).expect_err("kubectl apply refused it");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(format!("{error:#}").contains(&format!("spec.checks: Invalid value: checks.include: {checks}")), "{error:#}");
        Ok(())
    })
    .await;
}
