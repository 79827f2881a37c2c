"""The worker end to end: the API over HTTPS -> SQS -> the real worker -> the host cluster over HTTP.

The host cluster is an emulator (local/hostemu.py) reached through a kubeconfig, as a real cluster
is (HOST_KUBECONFIG); every host-side assertion reads it back through its Kubernetes API, as kubectl
would. Names, labels and shapes are the platform's (NOTES.md, "Provisioning on the host cluster").
Fault injection, crashes and the sweep are in test_worker_reliability.py, on the same stack.
"""
import base64
import json
import os
import signal
import threading
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime

import boto3
import pytest
import yaml

from conftest import API, start_stack
from local.hostemu import HostEmulator

VCI = "virtualclusterinstances"
MERGE = "application/merge-patch+json"
INSTANCE_NAME, INSTANCE_NAMESPACE = "loft.sh/vcluster-instance-name", "loft.sh/vcluster-instance-namespace"
CONDITIONS = ["TemplateResolved", "VirtualClusterDeployed", "VirtualClusterReady", "VirtualClusterOnline"]
# The stack's knobs for speed (backoff, visibility timeout, sweep period, stuck threshold) and a small
# retry budget, so giving up is quick to reach in test_worker_reliability.py. The periodic host check
# is off here (its own stack tests it), so host request counts depend only on what a test does.
FAST = {"WORKER_BACKOFF_BASE_SECONDS": "0.2", "WORKER_BACKOFF_CAP_SECONDS": "1", "LOCAL_VISIBILITY_SECONDS": "2",
        "SWEEP_SECONDS": "1", "STUCK_SECONDS": "2", "WORKER_THREADS": "4", "WORKER_MAX_ATTEMPTS": "3",
        "RESYNC_MINUTES": "0"}
WRITES = ("create", "update", "patch", "delete", "deletecollection")


# ---------------------------------------------------------------------------------------------------
# Helpers (test_worker_reliability.py imports them).

def ok(answer, code=None):
    assert (answer.status == code) if code else (200 <= answer.status < 300), (answer.status, answer.body[:2000])
    return answer.json()


def wait_for(predicate, timeout=20.0, interval=0.1, what="condition"):
    """Poll until predicate() is truthy; returns its value."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")


class Host:
    """The host cluster as kubectl sees it: raw Kubernetes API calls to the emulator's URL."""

    def __init__(self, url):
        self.url = url.rstrip("/")

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def get(self, path):
        code, body = self.call("GET", path)
        if code == 404:
            return None
        assert code == 200, (path, code, body)
        return body

    def namespace(self, name):
        return self.get(f"/api/v1/namespaces/{name}")

    def obj(self, ns, plural, name):
        prefix = {"statefulsets": "/apis/apps/v1", "roles": "/apis/rbac.authorization.k8s.io/v1",
                  "rolebindings": "/apis/rbac.authorization.k8s.io/v1"}.get(plural, "/api/v1")
        return self.get(f"{prefix}/namespaces/{ns}/{plural}/{name}")

    def owned(self, instance_name, instance_namespace):
        """Every object in the host cluster labelled as this instance's, as (plural, namespace, name) -> object."""
        selector = f"{INSTANCE_NAME}={instance_name},{INSTANCE_NAMESPACE}={instance_namespace}"
        found = {}
        for prefix, plural in (("/api/v1", "namespaces"), ("/api/v1", "serviceaccounts"), ("/api/v1", "secrets"),
                               ("/api/v1", "configmaps"), ("/api/v1", "services"), ("/apis/apps/v1", "statefulsets"),
                               ("/apis/rbac.authorization.k8s.io/v1", "roles"),
                               ("/apis/rbac.authorization.k8s.io/v1", "rolebindings")):
            listed = self.get(f"{prefix}/{plural}?labelSelector={urllib.request.quote(selector)}")
            for item in listed["items"]:
                key = (plural, item["metadata"].get("namespace", ""), item["metadata"]["name"])
                assert key not in found, f"duplicate host object {key}"
                found[key] = item
        return found

    def stats(self, reset=False):
        code, body = self.call("POST" if reset else "GET", "/_emulator/stats")
        assert code == 200
        return body

    def faults(self, **settings):
        code, body = self.call("POST", "/_emulator/faults", settings)
        assert code == 200, body
        return body


class Rig:
    """One local stack (`python -m local`, as `make run` starts it) whose host cluster is an emulator
    in this process, outside the stack's: the stack can be killed and restarted on the same state
    directory while the host cluster lives on, as a real one would. Plus AWS clients on its moto."""

    def __init__(self, state_dir):
        self.state_dir = state_dir
        self.emulator = HostEmulator(ready_delay=0.1, seed=5).start()
        self.host = Host(self.emulator.url)
        self.kubeconfig = self.emulator.write_kubeconfig(state_dir / "external-host-kubeconfig")
        self.stack = None

    def start(self):
        info = self.state_dir / "stack.json"  # written once the worker runs, a moment after /readyz answers
        info.unlink(missing_ok=True)
        self.stack = start_stack(self.state_dir, env={**FAST, "HOST_KUBECONFIG": self.kubeconfig})
        wait_for(info.exists, 30, 0.05, "stack.json")
        self.info = json.loads(info.read_text())
        session = boto3.session.Session(aws_access_key_id="local", aws_secret_access_key="local", region_name="us-east-1")
        self.sqs = session.client("sqs", endpoint_url=self.info["aws_endpoint"])
        self.dynamodb = session.client("dynamodb", endpoint_url=self.info["aws_endpoint"])
        self.queue_url = self.sqs.get_queue_url(QueueName=self.info["queue"])["QueueUrl"]
        return self

    def stop(self):
        """At the end of the session: killed, not stopped (its state is thrown away; a graceful stop
        costs seconds, and test_worker_killed_mid_provision shows a kill loses nothing that matters)."""
        if self.stack and self.stack.process.poll() is None:
            os.killpg(self.stack.process.pid, signal.SIGKILL)
            self.stack.process.wait()
        self.emulator.stop()

    def send_job(self, namespace, name, delay=0, reason="duplicate"):
        """A job message straight onto the stack's queue, as the API sends them."""
        from chalicelib import jobs

        self.sqs.send_message(QueueUrl=self.queue_url, DelaySeconds=delay,
                              MessageBody=jobs.encode("virtualclusterinstances", namespace, name, reason))

    def writes(self):
        by_verb = self.host.stats()["by_verb"]
        return sum(by_verb.get(v, 0) for v in WRITES)

    def settle(self, quiet=0.5, timeout=10):
        """Wait until the host has seen no write for `quiet` seconds (the worker is done for now)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            before = self.writes()
            time.sleep(quiet)
            if self.writes() == before:
                return
        raise AssertionError("the host never went quiet")


_rig, _rig_lock = None, threading.Lock()


def shared_rig(request, tmp_path_factory):
    """The one Rig of the session, for this module's and test_worker_reliability.py's `rig` fixtures."""
    global _rig
    with _rig_lock:
        if _rig is None:
            _rig = Rig(tmp_path_factory.mktemp("worker-stack")).start()
            request.config.add_cleanup(_rig.stop)
        return _rig


@pytest.fixture(scope="session")
def rig(request, tmp_path_factory):
    return shared_rig(request, tmp_path_factory)


def project(stack, name=None, **spec):
    name = name or f"w-{uuid.uuid4().hex[:8]}"
    ok(stack.request("POST", API + "/projects", {"metadata": {"name": name}, "spec": spec}), 201)
    return name, f"loft-p-{name}"


def create(stack, namespace, name, code=201, annotations=None, **spec):
    body = {"apiVersion": "management.loft.sh/v1", "kind": "VirtualClusterInstance",
            "metadata": {"name": name, **({"annotations": annotations} if annotations else {})}, "spec": spec}
    return ok(stack.request("POST", f"{API}/namespaces/{namespace}/{VCI}", body), code)


def get(stack, namespace, name):
    answer = stack.request("GET", f"{API}/namespaces/{namespace}/{VCI}/{name}")
    if answer.status == 404:
        return None
    return ok(answer, 200)


def patch(stack, namespace, name, body, key=None):
    return ok(stack.request("PATCH", f"{API}/namespaces/{namespace}/{VCI}/{name}", json.dumps(body),
                            content_type=MERGE, key=key), 200)


def delete(stack, namespace, name):
    return ok(stack.request("DELETE", f"{API}/namespaces/{namespace}/{VCI}/{name}"))


def kubeconfig(stack, namespace, name, spec=None, key=None):
    return stack.request("POST", f"{API}/namespaces/{namespace}/{VCI}/{name}/kubeconfig",
                         {"apiVersion": "management.loft.sh/v1", "kind": "VirtualClusterInstanceKubeConfig",
                          "spec": spec or {}}, key=key)


def wait_phase(stack, namespace, name, phase, timeout=20.0, generation=None, fail_fast=True):
    """The instance once status.phase == phase (and, if given, status.observedGeneration == generation);
    fails at once on phase Failed for that generation unless fail_fast is False."""
    def reached():
        obj = get(stack, namespace, name)
        status = (obj or {}).get("status") or {}
        current = generation is None or status.get("observedGeneration") == generation
        assert not fail_fast or status.get("phase") != "Failed" or phase == "Failed" or not current, status
        if status.get("phase") == phase and (generation is None or status.get("observedGeneration") == generation):
            return obj
        return None
    return wait_for(reached, timeout, what=f"{namespace}/{name} phase {phase}")


def wait_gone(stack, namespace, name, timeout=20.0):
    wait_for(lambda: get(stack, namespace, name) is None, timeout, what=f"{namespace}/{name} deleted")


def conditions(obj):
    return {c["type"]: c for c in obj["status"].get("conditions") or []}


def b64(data, key):
    return base64.b64decode(data["data"][key]).decode()


def expected_names(name):
    """The host objects the platform creates for vcluster <name> (plus the namespace itself)."""
    return {("serviceaccounts", f"vc-{name}"), ("roles", name), ("rolebindings", name), ("secrets", f"vc-config-{name}"),
            ("services", name), ("services", f"{name}-headless"), ("statefulsets", name)}


# ---------------------------------------------------------------------------------------------------

TEMPLATE_VALUES = """controlPlane:
  distro:
    k8s:
      enabled: true
  statefulSet:
    resources:
      limits:
        memory: {{ .Values.memory }}
sync:
  toHost:
    ingresses:
      enabled: {{ .Values.ingresses }}
exportKubeConfig:
  context: {{ .Values.loft.name }}-in-{{ .Values.loft.project }}
"""
SPACE_OBJECTS = """apiVersion: v1
kind: ConfigMap
metadata:
  name: team-settings
  labels:
    team: {{ .Values.team }}
data:
  owner: "{{ .Values.loft.user.name }}"
  memory: "{{ .Values.memory }}"
"""


@pytest.fixture(scope="module")
def template(rig):
    """A cluster-scoped VirtualClusterTemplate with typed parameters, created through the API."""
    stack = rig.stack
    name = f"tmpl-{uuid.uuid4().hex[:8]}"
    ok(stack.request("POST", API + "/virtualclustertemplates", {
        "apiVersion": "management.loft.sh/v1", "kind": "VirtualClusterTemplate", "metadata": {"name": name},
        "spec": {"displayName": "Worker test template",
                 "parameters": [
                     {"variable": "memory", "type": "string", "defaultValue": "2Gi", "validation": "^[0-9]+[MG]i$"},
                     {"variable": "ingresses", "type": "boolean", "defaultValue": "false"},
                     {"variable": "team", "type": "string", "options": ["blue", "green"], "defaultValue": "blue"}],
                 "template": {"helmRelease": {"chart": {"name": "vcluster", "version": "0.20.0"}, "values": TEMPLATE_VALUES},
                              "spaceTemplate": {"objects": SPACE_OBJECTS}}}}), 201)
    return name


def test_lifecycle_through_the_api(rig, template):
    """create -> Ready with the platform's status -> host objects -> kubeconfig -> update -> delete."""
    stack, host = rig.stack, rig.host
    project_name, ns = project(stack)
    name = "dev"
    host_ns = f"loft-{project_name}-v-{name}"
    created = create(stack, ns, name, templateRef={"name": template}, parameters="memory: 3Gi\nteam: green\n")
    assert created["spec"]["clusterRef"] == {"cluster": "loft-cluster", "namespace": host_ns, "virtualCluster": name}
    assert (created.get("status") or {}).get("phase") in (None, "")

    # Not ready yet: the kubeconfig subresource answers 409 Conflict (a Status), not a half-made config.
    early = kubeconfig(stack, ns, name)
    assert early.status == 409, early.body
    assert early.json()["kind"] == "Status" and early.json()["reason"] == "Conflict"

    ready = wait_phase(stack, ns, name, "Ready")
    status = ready["status"]
    assert status["observedGeneration"] == ready["metadata"]["generation"] == 1
    assert len(status["deployHash"]) == 16 and int(status["deployHash"], 16) >= 0
    assert "reason" not in status and "message" not in status
    conds = conditions(ready)
    assert set(CONDITIONS) <= set(conds)
    for kind in CONDITIONS:
        condition = conds[kind]
        assert condition["status"] == "True", condition
        assert "reason" not in condition and "severity" not in condition, condition  # only False ones carry them
        datetime.strptime(condition["lastTransitionTime"], "%Y-%m-%dT%H:%M:%SZ")
    # The fully rendered template that was deployed.
    rendered = status["virtualCluster"]["helmRelease"]["values"]
    assert "memory: 3Gi" in rendered and "enabled: false" in rendered and f"context: {name}-in-{project_name}" in rendered

    # The host side, named and labelled as the platform does.
    namespace = host.namespace(host_ns)
    assert namespace["status"]["phase"] == "Active"
    assert namespace["metadata"]["labels"][INSTANCE_NAME] == name
    assert namespace["metadata"]["labels"][INSTANCE_NAMESPACE] == ns
    owned = host.owned(name, ns)
    assert {(plural, obj_name) for plural, obj_ns, obj_name in owned if plural != "namespaces"} == \
        expected_names(name) | {("configmaps", "team-settings")}
    assert all(obj_ns == host_ns for plural, obj_ns, _ in owned if plural != "namespaces")

    sts = host.obj(host_ns, "statefulsets", name)
    assert sts["metadata"]["labels"]["app"] == "vcluster" and sts["spec"]["replicas"] == 1
    assert [c["name"] for c in sts["spec"]["template"]["spec"]["containers"]] == ["syncer"]
    assert sts["spec"]["template"]["spec"]["serviceAccountName"] == f"vc-{name}"
    assert sts["spec"]["serviceName"] == f"{name}-headless"
    service = host.obj(host_ns, "services", name)
    assert service["metadata"]["labels"]["vcluster.loft.sh/service"] == "true"
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(443, 8443)]
    assert status["serviceUID"] == service["metadata"]["uid"]
    assert host.obj(host_ns, "services", f"{name}-headless")["spec"]["clusterIP"] == "None"
    binding = host.obj(host_ns, "rolebindings", name)
    assert binding["roleRef"]["name"] == name and binding["subjects"][0]["name"] == f"vc-{name}"
    assert host.obj(host_ns, "roles", name)["rules"]
    config_secret = host.obj(host_ns, "secrets", f"vc-config-{name}")
    values = yaml.safe_load(b64(config_secret, "config.yaml"))
    assert values["controlPlane"]["statefulSet"]["resources"]["limits"]["memory"] == "3Gi"
    assert values["sync"]["toHost"]["ingresses"]["enabled"] is False
    # spaceTemplate.objects, rendered with parameters and built-ins, in the host namespace.
    settings = host.obj(host_ns, "configmaps", "team-settings")
    assert settings["data"] == {"owner": "admin", "memory": "3Gi"}
    assert settings["metadata"]["labels"]["team"] == "green" and settings["metadata"]["labels"][INSTANCE_NAME] == name
    # What vcluster wrote when it came up: the kubeconfig the API hands out.
    vc_secret = host.obj(host_ns, "secrets", f"vc-{name}")
    vc_config = yaml.safe_load(b64(vc_secret, "config"))

    answer = kubeconfig(stack, ns, name)
    assert answer.status == 201, answer.body
    issued = answer.json()
    assert issued["kind"] == "VirtualClusterInstanceKubeConfig"
    config = yaml.safe_load(issued["status"]["kubeConfig"])
    context = f"vcluster_{name}_{ns}"
    assert config["current-context"] == context
    assert config["clusters"][0]["cluster"]["server"] == "https://localhost:8443"
    assert config["clusters"][0]["cluster"]["certificate-authority-data"] == \
        vc_config["clusters"][0]["cluster"]["certificate-authority-data"]
    assert config["users"][0]["user"]["client-key-data"] == vc_config["users"][0]["user"]["client-key-data"]
    override = kubeconfig(stack, ns, name, {"server": "https://dev.vcluster.example.com"})
    assert override.status == 201, override.body
    assert yaml.safe_load(override.json()["status"]["kubeConfig"])["clusters"][0]["cluster"]["server"] == \
        "https://dev.vcluster.example.com"

    # Update the parameters: the vcluster is re-applied with the new values and rolled.
    before_sts = sts
    patch(stack, ns, name, {"spec": {"parameters": "memory: 5Gi\nteam: blue\ningresses: true\n"}})
    updated = wait_phase(stack, ns, name, "Ready", generation=2)
    assert updated["status"]["deployHash"] != status["deployHash"]
    assert updated["status"]["serviceUID"] == status["serviceUID"]  # patched in place, never recreated
    values = yaml.safe_load(b64(host.obj(host_ns, "secrets", f"vc-config-{name}"), "config.yaml"))
    assert values["controlPlane"]["statefulSet"]["resources"]["limits"]["memory"] == "5Gi"
    assert values["sync"]["toHost"]["ingresses"]["enabled"] is True
    settings = host.obj(host_ns, "configmaps", "team-settings")
    assert settings["data"]["memory"] == "5Gi" and settings["metadata"]["labels"]["team"] == "blue"
    sts = host.obj(host_ns, "statefulsets", name)
    assert sts["metadata"]["uid"] == before_sts["metadata"]["uid"]
    assert sts["metadata"]["generation"] > before_sts["metadata"]["generation"]  # new config -> new pod
    assert sts["status"]["observedGeneration"] == sts["metadata"]["generation"] and sts["status"]["readyReplicas"] == 1
    assert conditions(updated)["VirtualClusterReady"]["status"] == "True"

    # Delete: the host namespace goes, then the finalizer is released and the object is gone.
    delete(stack, ns, name)
    wait_for(lambda: host.namespace(host_ns) is None, what="host namespace deleted")
    wait_gone(stack, ns, name)
    assert host.owned(name, ns) == {}
    assert kubeconfig(stack, ns, name).status == 404


def test_kubeconfig_needs_the_use_verb(rig):
    """A project member may see an instance but not enter it, until spec.access grants `use`."""
    stack, host = rig.stack, rig.host
    suffix = uuid.uuid4().hex[:6]
    user = f"wk-user-{suffix}"
    ok(stack.request("POST", API + "/users", {"metadata": {"name": user}, "spec": {"username": user}}), 201)
    key = ok(stack.request("POST", API + "/ownedaccesskeys",
                           {"metadata": {"generateName": "k-"}, "spec": {"user": user}}), 201)["spec"]["key"]
    _, ns = project(stack, f"wk-{suffix}", members=[{"kind": "User", "name": user,
                                                     "clusterRole": "loft-management-project-user"}])
    create(stack, ns, "shared", template={"helmRelease": {"values": "sync: {}"}})
    ready = wait_phase(stack, ns, "shared", "Ready")

    assert get(stack, ns, "shared")["metadata"]["uid"] == ready["metadata"]["uid"]
    assert stack.request("GET", f"{API}/namespaces/{ns}/{VCI}/shared", key=key).status == 200
    refused = kubeconfig(stack, ns, "shared", key=key)
    assert refused.status == 403, refused.body
    assert refused.json()["reason"] == "Forbidden" and user in refused.json()["message"]

    # Granting `use` is a spec change the worker sees (a new generation) but that changes nothing on the
    # host: it is reconciled without a single write.
    owned = host.owned("shared", ns)
    patch(stack, ns, "shared", {"spec": {"access": [{"verbs": ["use"], "users": [user]}]}})
    wait_phase(stack, ns, "shared", "Ready", generation=2)
    assert {k: o["metadata"]["resourceVersion"] for k, o in host.owned("shared", ns).items()} == \
        {k: o["metadata"]["resourceVersion"] for k, o in owned.items()}
    allowed = kubeconfig(stack, ns, "shared", key=key)
    assert allowed.status == 201, allowed.body
    assert yaml.safe_load(allowed.json()["status"]["kubeConfig"])["clusters"][0]["cluster"]["server"]


def test_sleep_mode_force_and_wake(rig):
    """sleepmode.loft.sh/force: "true" scales the StatefulSet to 0 (phase Sleeping); removing it wakes."""
    stack, host = rig.stack, rig.host
    project_name, ns = project(stack)
    host_ns = f"loft-{project_name}-v-sleepy"
    create(stack, ns, "sleepy", template={"helmRelease": {"values": "sync: {}"}})
    awake = wait_phase(stack, ns, "sleepy", "Ready")

    patch(stack, ns, "sleepy", {"metadata": {"annotations": {"sleepmode.loft.sh/force": "true"}}})
    asleep = wait_phase(stack, ns, "sleepy", "Sleeping")
    sts = host.obj(host_ns, "statefulsets", "sleepy")
    assert sts["spec"]["replicas"] == 0 and sts["status"]["readyReplicas"] == 0
    conds = conditions(asleep)
    for kind in ("VirtualClusterReady", "VirtualClusterOnline"):
        assert conds[kind]["status"] == "False" and conds[kind]["reason"] == "Sleeping", conds[kind]
        assert conds[kind]["severity"] == "Info" and conds[kind]["message"]
        assert conds[kind]["lastTransitionTime"] >= conds["VirtualClusterDeployed"]["lastTransitionTime"]
    assert asleep["status"]["deployHash"] != awake["status"]["deployHash"]
    assert asleep["status"]["serviceUID"] == awake["status"]["serviceUID"]
    assert kubeconfig(stack, ns, "sleepy").status == 409  # nothing to connect to while asleep
    assert host.namespace(host_ns)["status"]["phase"] == "Active"  # sleeping keeps everything but the pod

    patch(stack, ns, "sleepy", {"metadata": {"annotations": {"sleepmode.loft.sh/force": None}}})
    woken = wait_phase(stack, ns, "sleepy", "Ready")
    assert host.obj(host_ns, "statefulsets", "sleepy")["spec"]["replicas"] == 1
    assert woken["status"]["deployHash"] == awake["status"]["deployHash"]
    assert conditions(woken)["VirtualClusterReady"]["status"] == "True"
    assert kubeconfig(stack, ns, "sleepy").status == 201


def test_pending_then_ready_is_reported_honestly(rig):
    """While the vcluster starts the instance is Pending with False conditions that say why."""
    stack, host = rig.stack, rig.host
    project_name, ns = project(stack)
    seen = []

    create(stack, ns, "slow", template={"helmRelease": {"values": "sync: {}"}})

    def ready():
        obj = get(stack, ns, "slow")
        phase = (obj.get("status") or {}).get("phase")
        if phase:
            seen.append(obj["status"])
        return phase == "Ready" and obj
    final = wait_for(ready, 20, interval=0.02, what="Ready")
    pending = [s for s in seen if s["phase"] == "Pending"]
    assert pending, seen  # the vcluster takes ready_delay to start, and the first poll comes later
    for status in pending:  # every Pending status the API showed explains itself
        conds = {c["type"]: c for c in status["conditions"]}
        assert status["reason"] == "WaitingForVirtualCluster" and status["message"]
        assert conds["VirtualClusterDeployed"]["status"] == "True"
        assert conds["VirtualClusterReady"]["status"] == "False"
        assert conds["VirtualClusterReady"]["reason"] == "WaitingForVirtualCluster"
    # Ready flipped VirtualClusterReady (its lastTransitionTime may move); Deployed stayed True and kept its time.
    assert conditions(final)["VirtualClusterDeployed"]["lastTransitionTime"] == \
        {c["type"]: c for c in pending[0]["conditions"]}["VirtualClusterDeployed"]["lastTransitionTime"]
    assert conditions(final)["VirtualClusterReady"]["lastTransitionTime"] >= \
        {c["type"]: c for c in pending[0]["conditions"]}["VirtualClusterReady"]["lastTransitionTime"]
    assert host.obj(f"loft-{project_name}-v-slow", "statefulsets", "slow")["status"]["readyReplicas"] == 1
