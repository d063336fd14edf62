//! Regression tests for the defects found running the CLI over real manifests (issue 17), each
//! through the command as a user runs it: files in, JSON out.

use std::path::PathBuf;

use clap::Parser;
use kube9_assess::{Args, run};
use serde_json::Value;

/// A directory of manifest files, removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str, files: &[(&str, &str)]) -> Dir {
        let dir = std::env::temp_dir().join(format!("kube9-defects-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (file, text) in files {
            let path = dir.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        Dir(dir)
    }

    /// The JSON report, the exit code and stderr.
    fn assess(&self, extra: &[&str]) -> (Value, u8, String) {
        let mut argv = vec!["assess", "-f", self.0.to_str().unwrap(), "-o", "json"];
        argv.extend_from_slice(extra);
        let out = run(&Args::try_parse_from(argv).unwrap());
        (serde_json::from_str(&out.stdout).unwrap(), out.code, out.stderr)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Findings of one check: (kind, name, file name, line).
fn found(report: &Value, check: &str) -> Vec<(String, String, String, u64)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["checkId"] == check)
        .map(|f| {
            let file = f["source"]["path"].as_str().unwrap_or_default();
            (
                f["object"]["kind"].as_str().unwrap().to_owned(),
                f["object"]["name"].as_str().unwrap().to_owned(),
                file.rsplit('/').next().unwrap().to_owned(),
                f["source"]["line"].as_u64().unwrap_or_default(),
            )
        })
        .collect()
}

fn names(report: &Value, check: &str) -> Vec<String> {
    let mut names: Vec<String> = found(report, check).into_iter().map(|f| f.1).collect();
    names.dedup();
    names
}

const POD: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: NAME\n  namespace: shop\nspec:\n";

#[test]
fn defect_1_yaml_1_1_scalars_merge_keys_and_flow_documents_are_read_as_kubectl_reads_them() {
    let octal = format!(
        "{}  containers: [{{name: app, image: 'a:1'}}]\n  volumes:\n  - name: key\n    secret:\n      secretName: key\n      defaultMode: 0400\n",
        POD.replace("NAME", "octal")
    );
    let boolean =
        format!("{}  hostNetwork: yes\n  containers: [{{name: app, image: 'a:1'}}]\n", POD.replace("NAME", "yes-no"));
    let merged = format!(
        "{}  containers:\n  - &base\n    name: base\n    image: 'a:1'\n    securityContext: {{privileged: true}}\n  - <<: *base\n    name: inherits\n",
        POD.replace("NAME", "merged")
    );
    let flow = "{apiVersion: v1, kind: Pod, metadata: {name: flow, namespace: shop}, spec: {hostPID: true, containers: [{name: app, image: 'a:1'}]}}\n";
    let dir = Dir::new(
        "yaml11",
        &[("octal.yaml", &octal), ("bool.yaml", &boolean), ("merged.yaml", &merged), ("flow.yaml", flow)],
    );
    let (report, code, stderr) = dir.assess(&[]);
    assert_eq!((code, report["errors"].as_array().unwrap().len()), (0, 0), "{stderr}");
    assert_eq!(names(&report, "security.host-network"), vec!["yes-no"]);
    let privileged: Vec<_> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["checkId"] == "security.privileged")
        .map(|f| f["object"]["container"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(privileged, vec!["base", "inherits"], "the merged container inherits privileged: true");
    assert_eq!(names(&report, "security.host-pid"), vec!["flow"]);
    let read: Vec<&str> = ["octal", "yes-no", "merged", "flow"].into();
    let bare = names(&report, "reliability.bare-pod");
    for name in read {
        assert!(bare.iter().any(|n| n == name), "{name} was not assessed: {bare:?}");
    }
}

#[test]
fn defect_1_an_unread_document_names_its_field_and_the_score_says_it_is_incomplete() {
    let text = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: odd\n  namespace: shop\nspec:\n  selector: {matchLabels: {app: a}}\n  replicas: many\n  template: {}\n";
    let dir = Dir::new("unread", &[("odd.yaml", text)]);
    let (report, code, stderr) = dir.assess(&[]);
    assert_eq!(code, 2);
    assert_eq!(report["errors"][0]["line"], 12, "the line of replicas: {stderr}");
    assert!(stderr.contains("odd.yaml:12:") && stderr.contains("spec.replicas"), "{stderr}");
    assert_eq!(report["complete"], false);
    let out = run(&Args::try_parse_from(["assess", "-f", dir.0.to_str().unwrap()]).unwrap());
    assert!(out.stdout.contains("score INCOMPLETE"), "{}", out.stdout);
    assert!(!out.stdout.contains("score 100/100"), "{}", out.stdout);
}

#[test]
fn defect_2_every_finding_names_the_file_of_its_own_object() {
    let web = |privileged: bool| {
        format!(
            "# {privileged}\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web, namespace: shop}}\nspec:\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    spec:\n      containers: [{{name: app, image: 'web:1', securityContext: {{privileged: {privileged}}}}}]\n"
        )
    };
    let dir = Dir::new("samename", &[("a/deploy.yaml", &web(false)), ("b/deploy.yaml", &web(true))]);
    let (report, _, _) = dir.assess(&[]);
    let hits = found(&report, "security.privileged");
    assert_eq!(hits.len(), 1);
    let source = report["findings"].as_array().unwrap().iter().find(|f| f["checkId"] == "security.privileged").unwrap()
        ["source"]["path"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(source.ends_with("b/deploy.yaml"), "{source}");
    assert_eq!(hits[0].3, 2);
}

#[test]
fn defect_3_replication_controllers_and_pod_templates_are_assessed_and_other_kinds_counted() {
    let rc = "apiVersion: v1\nkind: ReplicationController\nmetadata: {name: legacy, namespace: shop}\nspec:\n  replicas: 2\n  selector: {app: legacy}\n  template:\n    metadata: {labels: {app: legacy}}\n    spec:\n      containers: [{name: app, image: 'a:1', securityContext: {privileged: true}}]\n---\napiVersion: v1\nkind: PodTemplate\nmetadata: {name: tpl, namespace: shop}\ntemplate:\n  spec:\n    containers: [{name: app, image: 'a:1', securityContext: {privileged: true}}]\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: sa, namespace: shop}\n";
    let dir = Dir::new("kinds", &[("rc.yaml", rc)]);
    let (report, _, _) = dir.assess(&[]);
    let kinds: Vec<String> = found(&report, "security.privileged").into_iter().map(|f| f.0).collect();
    assert_eq!(kinds, vec!["ReplicationController", "PodTemplate"]);
    assert_eq!(report["notAssessed"]["ServiceAccount"], 1);
}

#[test]
fn defect_4_services_selecting_controller_added_labels_or_replication_controllers_select_pods() {
    let text = "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: db, namespace: shop}\nspec:\n  serviceName: db\n  selector: {matchLabels: {app: db}}\n  template:\n    metadata: {labels: {app: db}}\n    spec:\n      containers: [{name: db, image: 'db:1'}]\n---\napiVersion: v1\nkind: Service\nmetadata: {name: db-0, namespace: shop}\nspec:\n  selector: {app: db, statefulset.kubernetes.io/pod-name: db-0}\n  ports: [{port: 5432}]\n---\napiVersion: v1\nkind: ReplicationController\nmetadata: {name: legacy, namespace: shop}\nspec:\n  selector: {app: legacy}\n  template:\n    metadata: {labels: {app: legacy}}\n    spec:\n      containers: [{name: app, image: 'a:1'}]\n---\napiVersion: v1\nkind: Service\nmetadata: {name: legacy, namespace: shop}\nspec:\n  selector: {app: legacy}\n  ports: [{port: 80}]\n---\napiVersion: v1\nkind: Service\nmetadata: {name: nothing, namespace: shop}\nspec:\n  selector: {app: gone}\n  ports: [{port: 80}]\n";
    let dir = Dir::new("selectors", &[("svc.yaml", text)]);
    let (report, _, _) = dir.assess(&[]);
    assert_eq!(names(&report, "reliability.service-endpoints"), vec!["nothing"]);
}

#[test]
fn defect_5_rbac_named_system_is_checked_unless_kubernetes_made_it() {
    let text = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: 'system:my-operator'}\nrules: [{apiGroups: ['*'], resources: ['*'], verbs: ['*']}]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: 'system:innocent-looking'}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\nsubjects: [{kind: ServiceAccount, name: helper, namespace: shop}]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: everyone}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\nsubjects: [{kind: Group, name: 'system:authenticated', apiGroup: rbac.authorization.k8s.io}]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: ns-admin, namespace: shop}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\nsubjects: [{kind: ServiceAccount, name: helper, namespace: shop}]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: all-verbs, namespace: shop}\nrules: [{apiGroups: [''], resources: [secrets], verbs: ['*']}]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: 'system:aggregate-to-view'\n  labels: {kubernetes.io/bootstrapping: rbac-defaults}\nrules: [{apiGroups: ['*'], resources: ['*'], verbs: ['*']}]\n";
    let dir = Dir::new("rbac", &[("rbac.yaml", text)]);
    let (report, _, _) = dir.assess(&[]);
    assert!(names(&report, "security.rbac-wildcards").contains(&"system:my-operator".to_owned()));
    assert!(!names(&report, "security.rbac-wildcards").contains(&"system:aggregate-to-view".to_owned()));
    let mut admin = names(&report, "security.cluster-admin-binding");
    admin.sort();
    assert_eq!(admin, vec!["everyone", "ns-admin", "system:innocent-looking"]);
    assert!(names(&report, "security.rbac-secret-readers").contains(&"all-verbs".to_owned()));
    let everyone = report["findings"].as_array().unwrap().iter().find(|f| f["object"]["name"] == "everyone").unwrap();
    assert_eq!(everyone["severity"], "critical");
}

#[test]
fn defect_6_secrets_are_judged_by_value_as_well_as_name_in_env_and_config_maps() {
    let text = format!(
        "{}  containers:\n  - name: app\n    image: 'a:1'\n    env:\n    - {{name: DB_SECRET_NAME, value: db-credentials}}\n    - {{name: TOKEN_FILE, value: /var/run/secrets/token}}\n    - {{name: API_KEY_PATH, value: /etc/key}}\n    - {{name: CLIENT_SECRET_ID, value: abc}}\n    - {{name: ACCESS_KEY, value: AKIAZ7Q4TNH2WXKE6QNB}}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: settings, namespace: shop}}\ndata:\n  log_level: info\n  aws_key: AKIAZ7Q4TNH2WXKE6QNB\n",
        POD.replace("NAME", "env")
    );
    let dir = Dir::new("secrets", &[("s.yaml", &text)]);
    let (report, _, _) = dir.assess(&[]);
    let messages: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["checkId"] == "security.secret-in-env")
        .map(|f| f["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(messages[0].contains("ACCESS_KEY") && !messages[0].contains("_NAME"), "{messages:?}");
    assert_eq!(names(&report, "security.secret-in-configmap"), vec!["settings"]);
}

#[test]
fn defect_7_the_deprecated_service_account_field_and_generate_name_are_honoured() {
    let text = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  generateName: batch-\n  namespace: shop\nspec:\n  template:\n    spec:\n      serviceAccount: builder\n      restartPolicy: Never\n      containers: [{name: job, image: 'job:1', securityContext: {privileged: true}}]\n";
    let dir = Dir::new("generate", &[("job.yaml", text)]);
    let (report, _, _) = dir.assess(&[]);
    assert!(names(&report, "security.default-service-account").is_empty());
    assert_eq!(found(&report, "security.privileged"), vec![("Job".into(), "batch-*".into(), "job.yaml".into(), 1)]);
}
