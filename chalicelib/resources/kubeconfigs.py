"""VirtualClusterInstanceKubeConfig: a ready instance's kubeconfig, for those allowed to use it.

The worker copies the vcluster's kubeconfig (Secret vc-<name>) into a DynamoDB item when the
instance becomes Ready, so the API never talks to a host cluster (nor imports its client).
"""
import time

from .. import config, objects, safeyaml, store
from ..errors import BadRequest, Conflict, Forbidden

PK = "kubeconfig#"
USE_VERBS = ("use", "*")


def _key(instance):
    return f'{instance["metadata"]["namespace"]}/{instance["metadata"]["name"]}'


def save(instance, text):
    store.put_raw({"pk": {"S": PK}, "sk": {"S": _key(instance)}, "uid": {"S": instance["metadata"]["uid"]}, "config": {"S": text}})


def forget(instance):
    store.delete_raw(PK, _key(instance))


def may_use(principal, instance):
    """Platform admins, project admins, the owner, and whoever spec.access grants `use`."""
    from .. import authz
    from .instances import INSTANCES
    from .projects import PROJECT_ADMIN

    if principal.admin or authz.owns(INSTANCES, principal, instance):
        return True
    if authz.project_role(principal, instance["metadata"]["namespace"]) == PROJECT_ADMIN:
        return True
    for rule in instance["spec"].get("access") or []:
        if any(v in USE_VERBS for v in rule.get("verbs") or []) and (
                principal.user in (rule.get("users") or []) or set(principal.teams) & set(rule.get("teams") or [])):
            return True
    return False


def _rewrite(text, instance, server):
    """Name things after the instance and point the server where the caller can reach it."""
    document = safeyaml.load(text) or {}
    name = f'vcluster_{instance["metadata"]["name"]}_{instance["metadata"]["namespace"]}'
    ref = instance["spec"].get("clusterRef") or {}
    server = server or (config.VCLUSTER_SERVER_URL.format(name=ref.get("virtualCluster") or instance["metadata"]["name"],
                                                          namespace=ref.get("namespace", ""), cluster=ref.get("cluster", ""))
                        if config.VCLUSTER_SERVER_URL else None)
    clusters, users = document.get("clusters") or [{}], document.get("users") or [{}]
    cluster = dict(clusters[0].get("cluster") or {})
    if server:
        cluster["server"] = server
    return {"apiVersion": "v1", "kind": "Config", "current-context": name,
            "clusters": [{"name": name, "cluster": cluster}],
            "users": [{"name": name, "user": users[0].get("user") or {}}],
            "contexts": [{"name": name, "context": {"cluster": name, "user": name}}]}


def issue(principal, instance, body):
    """Answer a POSTed VirtualClusterInstanceKubeConfig; 409 while the instance is not ready."""
    import yaml

    from .instances import INSTANCES

    meta = instance["metadata"]
    if body is not None and not isinstance(body, dict):
        raise BadRequest("the body must be a VirtualClusterInstanceKubeConfig object")
    spec = (body or {}).get("spec") or {}
    if not isinstance(spec, dict) or not isinstance(spec.get("server", ""), str):
        raise BadRequest("spec.server must be a string")
    if not may_use(principal, instance):
        raise Forbidden(f'virtualclusterinstances.management.loft.sh "{meta["name"]}" is forbidden: User "{principal.user}" '
                        f'cannot use virtual cluster "{meta["name"]}" in the namespace "{meta["namespace"]}"')
    _record_activity(instance)
    phase = (instance.get("status") or {}).get("phase")
    item = store.get_raw(PK, _key(instance))
    if phase != "Ready" or item is None or item["uid"]["S"] != meta["uid"]:
        raise Conflict(f'virtual cluster "{meta["name"]}" is not ready (phase "{phase or "Pending"}"); retry when it is Ready',
                       {"name": meta["name"], "group": config.GROUP, "kind": INSTANCES.plural})
    kubeconfig = _rewrite(item["config"]["S"], instance, spec.get("server"))
    return {"apiVersion": INSTANCES.api_version, "kind": "VirtualClusterInstanceKubeConfig",
            "metadata": {"name": meta["name"], "namespace": meta["namespace"], "creationTimestamp": None},
            "spec": spec, "status": {"kubeConfig": yaml.safe_dump(kubeconfig, sort_keys=False)}}


def _record_activity(instance):
    """Using a vcluster is activity: stamp it, and wake it if it sleeps for inactivity."""
    from ..auth import Principal
    from .instances import INSTANCES

    def touch(current):
        annotations = current["metadata"].setdefault("annotations", {})
        annotations["sleepmode.loft.sh/last-activity"] = str(int(time.time()))
        if annotations.get("sleepmode.loft.sh/sleep-type") == "inactivity":
            annotations.pop("sleepmode.loft.sh/sleeping-since", None)
            annotations.pop("sleepmode.loft.sh/sleep-type", None)
        return current

    if (instance["metadata"].get("annotations") or {}).get("sleepmode.loft.sh/sleep-after"):
        objects.update(INSTANCES, instance["metadata"]["namespace"], instance["metadata"]["name"], touch,
                       Principal(user="system:activity", admin=True), objects.Options())
