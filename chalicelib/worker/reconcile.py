"""One job -> the instance's desired host state -> apply what drifted -> honest status.

Level-triggered like controller-runtime: every job re-reads the instance, so duplicate, late and
reordered deliveries converge to the same result; a converged instance costs three reads, no writes.
"""
import base64
import logging
import math

from .. import config, jobs, objects, store
from ..auth import Principal
from ..errors import NotFound
from ..resources import kubeconfigs
from ..resources.instances import INSTANCES, resolve_template
from ..resources.meta import now_iso
from ..resources.templates import TemplateError, check_parameters
from . import hostobjects
from .errors import AlreadyExists, PermanentError, TemporaryError
from .hosts import Host

log = logging.getLogger(__name__)
WORKER = Principal(user="system:worker", admin=True)
FINALIZER = "loft.sh/cleanup"
SLEEP_FORCE = "sleepmode.loft.sh/force"
SLEEPING_SINCE = "sleepmode.loft.sh/sleeping-since"
# PermanentError reasons that belong to TemplateResolved (NOTES.md), not to VirtualClusterDeployed.
TEMPLATE_REASONS = ("TemplateNotFound", "VersionError", "VersionNotFound", "ErrorSyncingParameters", "ErrorRenderingTemplate")


def backoff(attempt):
    """Seconds before the next look: 1, 2, 4 ... capped (SQS DelaySeconds allows up to 900)."""
    return min(config.WORKER_BACKOFF_CAP_SECONDS, config.WORKER_BACKOFF_BASE_SECONDS * (2 ** min(attempt, 10)))


def set_condition(conditions, type_, status, reason="", message="", severity=None):
    """Upsert a condition; lastTransitionTime moves only when its status flips."""
    for condition in conditions:
        if condition["type"] == type_:
            if condition["status"] != status:
                condition["lastTransitionTime"] = now_iso()
            break
    else:
        condition = {"type": type_, "lastTransitionTime": now_iso()}
        conditions.append(condition)
    condition.update(status=status, reason=reason or None, message=message or None,
                     severity=severity if status == "False" else None)
    for key in [k for k, v in condition.items() if v is None]:
        del condition[key]


def write_status(instance, change):
    """Apply change(status) to the latest stored status; no write when nothing changed."""
    meta = instance["metadata"]

    def mutate(current):
        status = dict(current.get("status") or {})
        status["conditions"] = [dict(c) for c in status.get("conditions") or []]
        change(status)
        current["status"] = status
        return current

    try:
        return objects.update(INSTANCES, meta["namespace"], meta["name"], mutate, WORKER, objects.Options(), status_only=True)
    except NotFound:
        return None


def fail(instance, reason, message, condition="VirtualClusterDeployed"):
    def change(status):
        status.update(phase="Failed", reason=reason, message=message,
                      observedGeneration=instance["metadata"].get("generation"))
        set_condition(status["conditions"], condition, "False", reason, message, "Error")
    write_status(instance, change)


def _subset(want, have):
    if isinstance(want, dict):
        return isinstance(have, dict) and all(_subset(v, have.get(k)) for k, v in want.items())
    if isinstance(want, list):
        return isinstance(have, list) and len(want) == len(have) and all(_subset(w, h) for w, h in zip(want, have))
    return want == have


def _as_stored(obj):
    """Secrets come back with base64 `data`, not `stringData`: compare like with like."""
    if obj["kind"] == "Secret" and "stringData" in obj:
        obj = dict(obj)
        obj["data"] = {k: base64.b64encode(v.encode()).decode() for k, v in obj.pop("stringData").items()}
    return obj


def apply(host, obj, absent=False):
    """Create, or merge-patch only what drifted. Returns (the live object, whether this call created it).
    absent: the object cannot exist (its namespace was just created), so create without a read first."""
    path = hostobjects.object_path(obj)
    live = None if absent else host.request("GET", path)
    if live is None:
        try:
            return host.request("POST", hostobjects.collection_path(obj["kind"], obj["metadata"].get("namespace")), obj), True
        except AlreadyExists:  # a concurrent delivery, or our own create whose answer was lost
            live = host.request("GET", path)
            if live is None:
                raise
    if obj["kind"] == "Namespace" and (live.get("status") or {}).get("phase") == "Terminating":
        raise TemporaryError("NamespaceTerminating", f'host namespace {obj["metadata"]["name"]} is still terminating')
    wanted = _as_stored(obj)
    fields = {k: v for k, v in wanted.items() if k not in ("apiVersion", "kind", "metadata")}
    labels = wanted["metadata"].get("labels") or {}
    if _subset(fields, live) and _subset(labels, live["metadata"].get("labels") or {}):
        return live, False
    return host.request("PATCH", path, {"metadata": {"labels": labels}, **fields}, "application/merge-patch+json"), False


def prune(host, instance, wanted):
    """Delete objects of this instance that the current render no longer contains."""
    ns = instance["spec"]["clusterRef"]["namespace"]
    keep = {(o["kind"], o["metadata"]["name"]) for o in wanted}
    selector = ",".join(f"{k}={v}" for k, v in hostobjects.instance_labels(instance).items())
    for kind, (_, _, namespaced) in hostobjects.KINDS.items():
        if not namespaced:
            continue
        listed = host.request("GET", hostobjects.collection_path(kind, ns), query={"labelSelector": selector}) or {}
        for item in listed.get("items") or []:
            if (kind, item["metadata"]["name"]) not in keep:
                host.request("DELETE", hostobjects.collection_path(kind, ns) + "/" + item["metadata"]["name"])


def _sleeping(instance):
    annotations = instance["metadata"].get("annotations") or {}
    return annotations.get(SLEEP_FORCE) == "true" or bool(annotations.get(SLEEPING_SINCE))


def _rolled_out(statefulset, replicas):
    """The controller has seen the latest spec and every replica runs it (0 ready when asleep)."""
    meta, status = statefulset["metadata"], statefulset.get("status") or {}
    if (status.get("observedGeneration") or 0) < (meta.get("generation") or 0):
        return False
    if replicas == 0:
        return (status.get("readyReplicas") or 0) == 0 and (status.get("replicas") or 0) == 0
    return (status.get("readyReplicas") or 0) >= replicas and (status.get("updatedReplicas") or 0) >= replicas


def _save_kubeconfig(instance, secret, status):
    """Copy the vcluster's kubeconfig for the API (only on the way to Ready: no write when converged)."""
    config_b64 = (secret.get("data") or {}).get("config")
    if config_b64 and status.get("phase") != "Ready":
        kubeconfigs.save(instance, base64.b64decode(config_b64).decode())


def provision(instance, attempt):
    """Returns the delay before the next look (None when converged)."""
    spec, meta = instance["spec"], instance["metadata"]
    try:
        version, definition, declared = resolve_template(spec)
        values = check_parameters(declared, spec.get("parameters"))
    except TemplateError as e:
        fail(instance, e.reason, e.message, condition="TemplateResolved")
        return None
    if spec.get("external"):
        return None
    sleeping = _sleeping(instance)
    wanted, rendered = hostobjects.desired(instance, definition, values, replicas=0 if sleeping else 1)
    digest = hostobjects.deploy_hash(wanted)
    status = instance.get("status") or {}
    host = Host(spec["clusterRef"]["cluster"])
    ns, release = spec["clusterRef"]["namespace"], spec["clusterRef"].get("virtualCluster") or meta["name"]
    converged = status.get("deployHash") == digest and status.get("observedGeneration") == meta.get("generation") \
        and status.get("phase") != "Failed"
    statefulset = None
    if converged:  # the no-op path: the namespace (deleted by hand?) and the StatefulSet, nothing else
        namespace = host.request("GET", f"/api/v1/namespaces/{ns}")
        if namespace is not None and (namespace.get("status") or {}).get("phase") != "Terminating":
            statefulset = host.request("GET", f"/apis/apps/v1/namespaces/{ns}/statefulsets/{release}")
    service_uid = status.get("serviceUID")
    if statefulset is None:
        fresh = False  # this pass created the namespace: it is empty, so no reads before creates, nothing to prune
        for obj in wanted:
            live, created = apply(host, obj, absent=fresh)
            fresh = fresh or (created and obj["kind"] == "Namespace")
            if obj["kind"] == "Service" and obj["metadata"]["name"] == release:
                service_uid = live["metadata"].get("uid")
            if obj["kind"] == "StatefulSet":
                statefulset = live
        if not fresh:
            prune(host, instance, wanted)
    rolled_out = _rolled_out(statefulset, 0 if sleeping else 1)
    secret = host.request("GET", f"/api/v1/namespaces/{ns}/secrets/vc-{release}") if rolled_out and not sleeping else None
    if sleeping:
        phase, reason, message = ("Sleeping", "Sleeping", "scaled to zero by sleep mode") if rolled_out \
            else ("Pending", "GoingToSleep", "waiting for the vcluster to scale down")
    elif rolled_out and secret is not None:
        phase, reason, message = "Ready", "", ""
        _save_kubeconfig(instance, secret, status)
    else:
        phase, reason, message = "Pending", "WaitingForVirtualCluster", "waiting for the vcluster to become ready"

    def change(new):
        new.update(phase=phase, reason=reason or None, message=message or None, deployHash=digest,
                   observedGeneration=meta.get("generation"), serviceUID=service_uid,
                   virtualCluster={**rendered, **({"version": version} if version else {})})
        for key in [k for k, v in new.items() if v is None]:
            del new[key]
        conditions = new["conditions"]
        set_condition(conditions, "TemplateResolved", "True", message=f"version {version}" if version else "")
        set_condition(conditions, "VirtualClusterDeployed", "True")
        up = phase == "Ready"
        set_condition(conditions, "VirtualClusterReady", "True" if up else "False",
                      "" if up else reason, "" if up else message, "Info")
        set_condition(conditions, "VirtualClusterOnline", "True" if up else "False",
                      "" if up else reason, "" if up else message, "Info")
    write_status(instance, change)
    return None if phase in ("Ready", "Sleeping") else backoff(attempt)


def teardown(instance, attempt=0):
    """Delete what the worker created, wait until it is gone, then release the finalizer."""
    meta, spec = instance["metadata"], instance["spec"]
    ref = spec.get("clusterRef") or {}
    if ref.get("namespace") and ref.get("cluster") and not spec.get("external"):
        host = Host(ref["cluster"])
        namespace = host.request("GET", f'/api/v1/namespaces/{ref["namespace"]}')
        if namespace is not None:
            labels = namespace["metadata"].get("labels") or {}
            if labels.get(hostobjects.INSTANCE_NAME) == meta["name"] and labels.get(hostobjects.INSTANCE_NAMESPACE) == meta["namespace"]:
                if (namespace.get("status") or {}).get("phase") != "Terminating":
                    host.request("DELETE", f'/api/v1/namespaces/{ref["namespace"]}')
                return backoff(attempt)
            prune(host, instance, [])
    kubeconfigs.forget(instance)

    def release(current):
        current["metadata"]["finalizers"] = [f for f in current["metadata"].get("finalizers") or [] if f != FINALIZER]
        return current

    try:
        objects.update(INSTANCES, meta["namespace"], meta["name"], release, WORKER, objects.Options())
    except NotFound:
        pass
    return None


def handle(job):
    """Run one job. Returns the delay before the next look, or None when there is nothing left to do."""
    instance = store.get(job["kind"], job["namespace"], job["name"])
    if instance is None:
        log.info("dropping job for %s %s/%s: the object is gone", job["kind"], job["namespace"], job["name"])
        return None
    try:
        if instance["metadata"].get("deletionTimestamp"):
            return teardown(instance, job["attempt"])
        return provision(instance, job["attempt"])
    except PermanentError as e:
        fail(instance, e.reason, e.message,
             condition="TemplateResolved" if e.reason in TEMPLATE_REASONS else "VirtualClusterDeployed")
        return None


def process(job):
    """Handle a job with the retry policy: temporary errors back off, then fail and dead-letter."""
    try:
        delay = handle(job)
    except TemporaryError as e:
        failures = job["failures"] + 1
        if failures >= config.WORKER_MAX_ATTEMPTS:
            instance = store.get(job["kind"], job["namespace"], job["name"])
            if instance is not None and not instance["metadata"].get("deletionTimestamp"):
                fail(instance, e.reason, f"gave up after {failures} attempts: {e.message}")
            jobs.dead_letter(job, e.message)
            return
        log.warning("job %s/%s failed (%d): %s; retrying", job["namespace"], job["name"], failures, e.message)
        jobs.enqueue(job["kind"], job["namespace"], job["name"], job["reason"], delay_seconds=backoff(failures),
                     attempt=job["attempt"], failures=failures)
        return
    if delay is None:
        return
    if sum(math.ceil(backoff(a)) for a in range(job["attempt"] + 1)) >= config.STUCK_SECONDS:  # whole seconds, as SQS waits
        # Polled for STUCK_SECONDS: stop here and leave it to the sweep, which re-enqueues instances
        # stuck that long. Polling on forever, every sweep would add one more endless chain.
        log.info("%s/%s still not there after %d looks; the sweep takes over", job["namespace"], job["name"], job["attempt"] + 1)
        return
    jobs.enqueue(job["kind"], job["namespace"], job["name"], job["reason"], delay_seconds=delay, attempt=job["attempt"] + 1)
