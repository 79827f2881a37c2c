"""Template + parameters -> the vcluster's host-side objects, named and labelled as the platform does."""
import hashlib
import json

import yaml

from ..resources.templates import TemplateError, render_instance
from .errors import PermanentError

INSTANCE_NAME = "loft.sh/vcluster-instance-name"
INSTANCE_NAMESPACE = "loft.sh/vcluster-instance-namespace"
MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "loft-serverless"
VCLUSTER_IMAGE = "ghcr.io/loft-sh/vcluster-pro:0.20.0"

# kind -> (API path prefix, plural, namespaced); the only kinds the worker creates or prunes.
KINDS = {
    "Namespace": ("/api/v1", "namespaces", False),
    "ServiceAccount": ("/api/v1", "serviceaccounts", True),
    "Secret": ("/api/v1", "secrets", True),
    "ConfigMap": ("/api/v1", "configmaps", True),
    "Service": ("/api/v1", "services", True),
    "Role": ("/apis/rbac.authorization.k8s.io/v1", "roles", True),
    "RoleBinding": ("/apis/rbac.authorization.k8s.io/v1", "rolebindings", True),
    "StatefulSet": ("/apis/apps/v1", "statefulsets", True),
}


def collection_path(kind, namespace):
    prefix, plural, namespaced = KINDS[kind]
    return f"{prefix}/namespaces/{namespace}/{plural}" if namespaced else f"{prefix}/{plural}"


def object_path(obj):
    return collection_path(obj["kind"], obj["metadata"].get("namespace")) + "/" + obj["metadata"]["name"]


def instance_labels(instance):
    return {INSTANCE_NAME: instance["metadata"]["name"], INSTANCE_NAMESPACE: instance["metadata"]["namespace"],
            MANAGED_BY: MANAGER}


def _meta(name, namespace, labels, extra=None):
    meta = {"name": name, "labels": {**labels, **(extra or {})}}
    if namespace:
        meta["namespace"] = namespace
    return meta


def desired(instance, definition, values, replicas):
    """(host objects in apply order, the rendered template). Raises PermanentError for bad templates."""
    name = instance["metadata"]["name"]
    ref = instance["spec"]["clusterRef"]
    ns, release = ref["namespace"], ref.get("virtualCluster") or name
    labels = instance_labels(instance)
    try:
        rendered, chart_values, space_objects = render_instance(definition, values, instance)
    except TemplateError as e:
        raise PermanentError(e.reason, e.message) from e
    config_yaml = yaml.safe_dump(chart_values, sort_keys=True, default_flow_style=False)
    # Helm's checksum/config idiom: new values roll the vcluster's pod, which reads them only at start.
    checksum = hashlib.sha256(config_yaml.encode()).hexdigest()
    app = {**labels, "app": "vcluster", "release": release}
    selector = {"app": "vcluster", "release": release}
    objects = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(ns, None, labels)},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(f"vc-{release}", ns, labels)},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": _meta(release, ns, labels),
         "rules": [{"apiGroups": ["", "apps", "networking.k8s.io"], "resources": ["*"], "verbs": ["*"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": _meta(release, ns, labels),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": release},
         "subjects": [{"kind": "ServiceAccount", "name": f"vc-{release}", "namespace": ns}]},
        {"apiVersion": "v1", "kind": "Secret", "metadata": _meta(f"vc-config-{release}", ns, labels), "type": "Opaque",
         "stringData": {"config.yaml": config_yaml}},
        {"apiVersion": "v1", "kind": "Service", "metadata": _meta(release, ns, app, {"vcluster.loft.sh/service": "true"}),
         "spec": {"type": "ClusterIP", "selector": selector,
                  "ports": [{"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"}]}},
        {"apiVersion": "v1", "kind": "Service", "metadata": _meta(f"{release}-headless", ns, app),
         "spec": {"clusterIP": "None", "selector": selector, "publishNotReadyAddresses": True,
                  "ports": [{"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"}]}},
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": _meta(release, ns, app),
         "spec": {"replicas": replicas, "serviceName": f"{release}-headless", "selector": {"matchLabels": selector},
                  "template": {"metadata": {"labels": app, "annotations": {"checksum/config": checksum}},
                               "spec": {"serviceAccountName": f"vc-{release}",
                                        "containers": [{"name": "syncer", "image": VCLUSTER_IMAGE,
                                                        "args": ["--config=/var/lib/vcluster/config.yaml"],
                                                        "ports": [{"containerPort": 8443, "name": "https"}]}]}}}},
    ]
    for extra in space_objects:
        extra["metadata"] = {**extra["metadata"], "namespace": ns, "labels": {**(extra["metadata"].get("labels") or {}), **labels}}
        objects.append(extra)
    return objects, rendered


def deploy_hash(objects):
    return hashlib.sha256(json.dumps(objects, sort_keys=True).encode()).hexdigest()[:16]
