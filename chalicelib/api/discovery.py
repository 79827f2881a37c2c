"""What clients discover before they talk: /version, API groups and resources, project namespaces."""
from .. import config
from ..resources.kinds import REGISTRY

KUBERNETES_MINOR = "32"


def version():
    """kube-apiserver's /version; /usr/bin/kubectl picks its binary by `minor`."""
    return {"major": "1", "minor": KUBERNETES_MINOR, "gitVersion": f"v1.{KUBERNETES_MINOR}.0",
            "gitCommit": "serverless-loft", "gitTreeState": "clean", "buildDate": "2026-11-26T00:00:00Z",
            "goVersion": "go1.23.0", "compiler": "gc", "platform": "linux/amd64"}


def core_versions():
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}]}


def core_resources():
    """Only namespaces: kubectl looks a project namespace up to word its NotFound errors."""
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "v1", "resources": [
        {"name": "namespaces", "singularName": "namespace", "namespaced": False, "kind": "Namespace",
         "verbs": ["get", "list"], "shortNames": ["ns"]}]}


def _group_version():
    return {"groupVersion": f"{config.GROUP}/{config.VERSION}", "version": config.VERSION}


def group():
    return {"kind": "APIGroup", "apiVersion": "v1", "name": config.GROUP,
            "versions": [_group_version()], "preferredVersion": _group_version()}


def groups():
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [group()]}


def resources():
    entries = []
    for kind in REGISTRY:
        entries.append({"name": kind.plural, "singularName": kind.singular, "namespaced": kind.namespaced,
                        "kind": kind.kind, "verbs": list(kind.verbs), "shortNames": list(kind.short_names),
                        "categories": list(kind.categories)})
        for sub in kind.subresources:
            entries.append({"name": f"{kind.plural}/{sub}", "singularName": "", "namespaced": kind.namespaced,
                            "kind": kind.kind, "verbs": ["create"]})
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{config.GROUP}/{config.VERSION}",
            "resources": entries}


def namespace(name):
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}
