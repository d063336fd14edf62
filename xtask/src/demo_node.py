# `cargo xtask demo --node`: installs (or upgrades) the chart on the testenv node with the
# real Helm SDK, the way test_node.py does, with the chart's defaults (two replicas on the Pod
# network). Arguments: kubeconfig chart namespace apiserver-port health-port image-repository
# image-tag pod-gateway.
import sys

import helm_python as helm

kubeconfig, chart, namespace, port, health, repository, tag, gateway = sys.argv[1:9]
values = {
    "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
    # The Pods reach the API server through the Pod bridge's own address (the node's), so the
    # two replicas run side by side on the one node, each on its own Pod address.
    "healthPort": int(health),
    "statusIntervalSeconds": 10,
    "extraEnv": [
        {"name": "KUBERNETES_SERVICE_HOST", "value": gateway},
        {"name": "KUBERNETES_SERVICE_PORT", "value": port},
    ],
}
with helm.Config(kubeconfig_path=kubeconfig, namespace=namespace) as config:
    if any(r["name"] == "kube9" for r in config.list()):
        release = config.upgrade(chart, "kube9", values, namespace=namespace, timeout=120)
    else:
        release = config.install(chart, "kube9", values, namespace=namespace, create_namespace=True, timeout=120)
    print(f"$ helm install kube9 charts/kube9-operator -n {namespace}   (revision {release['revision']})")
    print(release["notes"])
