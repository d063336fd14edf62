//! The generated CRDs, as a real API server sees them.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube9_api::assessment::{Finding, ObjectReference, Phase, Schedule};
use kube9_api::operator_status::{AcknowledgementState, Health, Mode, Tier};
use kube9_api::{Assessment, AssessmentSpec, AssessmentStatus, OperatorStatus, OperatorStatusStatus, Pillar, Severity};
use kube9_tests::{Ctx, kubectl, scenario, unique_name};
use serde_json::{Value, json};

fn dynamic(ctx: &Ctx, kind: &str, plural: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk(kube9_api::GROUP, kube9_api::VERSION, kind);
    Api::all_with(ctx.client.clone(), &ApiResource::from_gvk_with_plural(&gvk, plural))
}

/// Creates an object from raw JSON and returns the API server's status code when it refuses.
async fn refused_code(api: &Api<DynamicObject>, object: Value) -> anyhow::Result<(u16, String)> {
    let object: DynamicObject = serde_json::from_value(object)?;
    match api.create(&PostParams::default(), &object).await {
        Ok(_) => anyhow::bail!("the API server accepted {object:?}"),
        Err(kube::Error::Api(status)) => Ok((status.code, status.message)),
        Err(other) => Err(other.into()),
    }
}

fn healthy_free_status() -> OperatorStatusStatus {
    OperatorStatusStatus {
        mode: Some(Mode::Operated),
        tier: Some(Tier::Free),
        version: Some("0.1.0".into()),
        health: Some(Health::Healthy),
        registered: Some(false),
        last_update: Some(Time(Timestamp::now())),
        namespace: Some("kube9-system".into()),
        ..Default::default()
    }
}

#[tokio::test]
async fn operator_status_round_trips_spec_and_status() {
    scenario(|ctx| async move {
        let api: Api<OperatorStatus> = Api::all(ctx.client.clone());
        let name = unique_name("opstatus");
        ctx.cleanup::<OperatorStatus>(None, &name);

        let mut object = OperatorStatus::new(&name, Default::default());
        object
            .spec
            .acknowledgements
            .insert("ins_1".into(), serde_json::from_value(json!({"state": "dismissed", "note": "accepted risk"}))?);
        api.create(&PostParams::default(), &object).await?;

        // Status goes through the status subresource, by server-side apply.
        let status = healthy_free_status();
        let patch = json!({
            "apiVersion": "kube9.io/v1alpha1", "kind": "OperatorStatus", "status": status,
        });
        api.patch_status(&name, &PatchParams::apply("kube9-tests").force(), &Patch::Apply(&patch)).await?;

        let back = api.get(&name).await?;
        assert_eq!(back.spec.acknowledgements["ins_1"].state, AcknowledgementState::Dismissed);
        assert_eq!(back.spec.acknowledgements["ins_1"].note.as_deref(), Some("accepted risk"));
        let back_status = back.status.expect("status was written");
        assert_eq!(back_status.mode, Some(Mode::Operated));
        assert_eq!(back_status.tier, Some(Tier::Free));
        assert_eq!(back_status.health, Some(Health::Healthy));
        assert_eq!(back_status.registered, Some(false));
        assert_eq!(back_status.namespace.as_deref(), Some("kube9-system"));
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn assessment_round_trips_spec_and_status() {
    scenario(|ctx| async move {
        // An operator running beside this test would run the Assessment and overwrite its status.
        let _lock = kube9_tests::operator::singleton_lock(&ctx.client).await;
        let api: Api<Assessment> = Api::all(ctx.client.clone());
        let name = unique_name("assessment");
        ctx.cleanup::<Assessment>(None, &name);

        let spec = AssessmentSpec {
            pillars: vec![Pillar::Security, Pillar::Reliability],
            schedule: Some(Schedule { interval_seconds: 3600 }),
            ..Default::default()
        };
        let created = api.create(&PostParams::default(), &Assessment::new(&name, spec.clone())).await?;
        assert_eq!(created.spec, spec);

        let finding = Finding {
            check_id: "security.privileged".into(),
            pillar: Pillar::Security,
            severity: Severity::Critical,
            object: ObjectReference {
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
                namespace: Some("shop".into()),
                name: "checkout".into(),
                container: Some("app".into()),
            },
            message: "container app runs privileged".into(),
            remediation: "set securityContext.privileged to false".into(),
            exempted: false,
        };
        let status = AssessmentStatus {
            phase: Some(Phase::Completed),
            run_id: Some("run-1".into()),
            score: Some(87),
            findings: vec![finding.clone()],
            truncated: Some(0),
            observed_generation: created.metadata.generation,
            ..Default::default()
        };
        let patch = json!({"apiVersion": "kube9.io/v1alpha1", "kind": "Assessment", "status": status});
        api.patch_status(&name, &PatchParams::apply("kube9-tests").force(), &Patch::Apply(&patch)).await?;

        let back = api.get(&name).await?.status.expect("status was written");
        assert_eq!(back.phase, Some(Phase::Completed));
        assert_eq!(back.score, Some(87));
        assert_eq!(back.findings, vec![finding]);
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn the_api_server_rejects_values_outside_an_enum_or_range() {
    scenario(|ctx| async move {
        let statuses = dynamic(&ctx, "OperatorStatus", "operatorstatuses");
        let assessments = dynamic(&ctx, "Assessment", "assessments");

        let name = unique_name("bad-ack");
        ctx.cleanup::<OperatorStatus>(None, &name);
        let (code, message) = refused_code(
            &statuses,
            json!({
                "apiVersion": "kube9.io/v1alpha1", "kind": "OperatorStatus",
                "metadata": {"name": name},
                "spec": {"acknowledgements": {"ins_1": {"state": "ignored"}}},
            }),
        )
        .await?;
        assert_eq!(code, 422, "{message}");
        assert!(message.contains("ignored"), "{message}");

        let name = unique_name("bad-pillar");
        ctx.cleanup::<Assessment>(None, &name);
        let (code, message) = refused_code(
            &assessments,
            json!({
                "apiVersion": "kube9.io/v1alpha1", "kind": "Assessment",
                "metadata": {"name": name},
                "spec": {"pillars": ["security", "vibes"]},
            }),
        )
        .await?;
        assert_eq!(code, 422, "{message}");
        assert!(message.contains("vibes"), "{message}");

        let name = unique_name("bad-interval");
        ctx.cleanup::<Assessment>(None, &name);
        let (code, message) = refused_code(
            &assessments,
            json!({
                "apiVersion": "kube9.io/v1alpha1", "kind": "Assessment",
                "metadata": {"name": name},
                "spec": {"schedule": {"intervalSeconds": 1}},
            }),
        )
        .await?;
        assert_eq!(code, 422, "{message}");

        // The status subresource validates too: a tier that does not exist is refused.
        let name = unique_name("bad-tier");
        ctx.cleanup::<OperatorStatus>(None, &name);
        let typed: Api<OperatorStatus> = Api::all(ctx.client.clone());
        typed.create(&PostParams::default(), &OperatorStatus::new(&name, Default::default())).await?;
        let patch = json!({"apiVersion": "kube9.io/v1alpha1", "kind": "OperatorStatus", "status": {"tier": "gold"}});
        match statuses.patch_status(&name, &PatchParams::apply("kube9-tests"), &Patch::Apply(&patch)).await {
            Err(kube::Error::Api(status)) => assert_eq!(status.code, 422, "{}", status.message),
            other => panic!("a status with tier gold was not refused: {other:?}"),
        }
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn kubectl_get_prints_the_printer_columns() {
    scenario(|ctx| async move {
        let api: Api<OperatorStatus> = Api::all(ctx.client.clone());
        let name = unique_name("columns");
        ctx.cleanup::<OperatorStatus>(None, &name);
        api.create(&PostParams::default(), &OperatorStatus::new(&name, Default::default())).await?;
        let patch =
            json!({"apiVersion": "kube9.io/v1alpha1", "kind": "OperatorStatus", "status": healthy_free_status()});
        api.patch_status(&name, &PatchParams::apply("kube9-tests").force(), &Patch::Apply(&patch)).await?;

        // The short name resolves through discovery, as it does for a person.
        let table = kubectl(&["get", "opstatus", &name])?;
        let mut lines = table.lines();
        let header: Vec<&str> = lines.next().unwrap_or_default().split_whitespace().collect();
        assert_eq!(header, ["NAME", "MODE", "TIER", "HEALTH", "REGISTERED", "LAST", "UPDATE", "LEADER"], "{table}");
        let row: Vec<&str> = lines.next().unwrap_or_default().split_whitespace().collect();
        assert_eq!(&row[..5], [name.as_str(), "operated", "free", "healthy", "false"], "{table}");
        assert!(row[5].ends_with('s') || row[5].ends_with('m'), "Last Update is shown as an age: {table}");

        let assessments = kubectl(&["get", "assessments"])?;
        assert!(assessments.is_empty() || assessments.starts_with("NAME"), "{assessments}");
        Ok(())
    })
    .await;
}
