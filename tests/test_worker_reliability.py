"""The worker when things go wrong: duplicate deliveries, a flaky host, a crash mid-provision, a host
namespace deleted by hand, templates that can never render, poison messages, and the sweep.

The stack is test_worker.py's `rig`: tuned for speed (short backoff, visibility timeout and sweep
period), its host cluster an emulator outside the stack's process, so the stack can be killed and
restarted on the same state directory while the host cluster lives on. Faults are injected through
the emulator's HTTP API (/_emulator/faults) and cleared after every test.
"""
import json
import urllib.error
import urllib.request
import os
import signal
import time
import uuid

import pytest

from conftest import API, start_stack, stop_stack
from test_worker import (MERGE, VCI, conditions, create, delete, expected_names, get, kubeconfig, ok, patch, project, shared_rig,
                         wait_for, wait_gone, wait_phase)

TEMPLATE = {"helmRelease": {"values": "sync:\n  toHost:\n    pods:\n      enabled: true\n"}}


@pytest.fixture(scope="session")
def rig(request, tmp_path_factory):
    """test_worker.py's stack: one for both modules."""
    return shared_rig(request, tmp_path_factory)


@pytest.fixture(autouse=True)
def no_faults_after(rig):
    yield
    rig.emulator.clear_faults()


def fingerprint(host, instance_name, namespace):
    """The instance's host objects as one delivery leaves them, minus what the apiserver assigns."""
    shaped = {}
    for (plural, _, name), obj in host.owned(instance_name, namespace).items():
        meta = obj["metadata"]
        shaped[(plural, name.replace(instance_name, "NAME"))] = json.loads(json.dumps({
            "labels": meta.get("labels"), "annotations": meta.get("annotations"), "generation": meta.get("generation"),
            **{k: v for k, v in obj.items() if k in ("spec", "data", "rules", "roleRef", "subjects", "type")},
        }).replace(instance_name, "NAME"))
    for shape in shaped.values():
        for key in ("clusterIP", "clusterIPs"):
            (shape.get("spec") or {}).pop(key, None)
    return shaped


def resource_versions(host, instance_name, namespace):
    return {key: obj["metadata"]["resourceVersion"] for key, obj in host.owned(instance_name, namespace).items()}


# ---------------------------------------------------------------------------------------------------

def test_every_job_delivered_twice_converges_as_one_delivery(rig):
    stack, host = rig.stack, rig.host
    project_name, ns = project(stack)
    create(stack, ns, "once", template=TEMPLATE)
    create(stack, ns, "twice", template=TEMPLATE)
    rig.send_job(ns, "twice")  # the API sent one: now two race each other, and a third comes late
    rig.send_job(ns, "twice", delay=1)
    once, twice = wait_phase(stack, ns, "once", "Ready"), wait_phase(stack, ns, "twice", "Ready")
    assert fingerprint(host, "twice", ns) == fingerprint(host, "once", ns)
    assert {(p, n) for p, _, n in host.owned("twice", ns) if p != "namespaces"} == expected_names("twice")
    assert twice["status"]["observedGeneration"] == once["status"]["observedGeneration"] == 1
    assert twice["status"]["serviceUID"] == host.obj(f"loft-{project_name}-v-twice", "services", "twice")["metadata"]["uid"]

    # Converged: more deliveries change nothing, neither on the host nor on the object.
    rig.settle()
    versions, rv = resource_versions(host, "twice", ns), get(stack, ns, "twice")["metadata"]["resourceVersion"]
    host.stats(reset=True)
    for _ in range(3):
        rig.send_job(ns, "twice")
    wait_for(lambda: host.stats()["by_verb"]["get"] >= 9, 10, what="three no-op reconciles")
    time.sleep(0.3)
    assert rig.writes() == 0, host.stats()
    assert resource_versions(host, "twice", ns) == versions
    assert get(stack, ns, "twice")["metadata"]["resourceVersion"] == rv

    # An update and a delete, each delivered twice.
    patch(stack, ns, "twice", {"spec": {"template": {"helmRelease": {"values": "sync: {}"}}}})
    rig.send_job(ns, "twice")
    updated = wait_phase(stack, ns, "twice", "Ready", generation=2)
    assert updated["status"]["deployHash"] != twice["status"]["deployHash"]
    assert {(p, n) for p, _, n in host.owned("twice", ns) if p != "namespaces"} == expected_names("twice")
    for name in ("once", "twice"):
        delete(stack, ns, name)
        rig.send_job(ns, name)
    for name in ("once", "twice"):
        wait_gone(stack, ns, name)
        assert host.namespace(f"loft-{project_name}-v-{name}") is None


def test_host_failing_30_percent_of_calls(rig):
    """5 instances provisioned and deleted while 30% of host calls fail and 10% lose their answer."""
    stack, host = rig.stack, rig.host
    project_name, ns = project(stack)
    names = [f"flaky-{i}" for i in range(5)]
    host.faults(error_rate=0.3, error_codes=[500, 503], drop_after_rate=0.1)
    for name in names:
        create(stack, ns, name, template=TEMPLATE)
    ready = {name: wait_phase(stack, ns, name, "Ready", timeout=45) for name in names}
    faults = rig.emulator.stats()["faults"]
    assert faults["errors"] > 10 and faults["drops_after"] > 0, faults  # the faults did happen
    rig.emulator.clear_faults()  # (for our own reads)
    for name in names:
        host_ns = f"loft-{project_name}-v-{name}"
        assert {(p, n) for p, _, n in host.owned(name, ns) if p != "namespaces"} == expected_names(name)
        assert ready[name]["status"]["serviceUID"] == host.obj(host_ns, "services", name)["metadata"]["uid"]
        assert all(c["status"] == "True" for c in conditions(ready[name]).values())

    host.faults(error_rate=0.3, error_codes=[500, 503], drop_after_rate=0.1)
    for name in names:
        delete(stack, ns, name)
    for name in names:
        wait_gone(stack, ns, name, timeout=45)
    rig.emulator.clear_faults()
    for name in names:
        assert host.namespace(f"loft-{project_name}-v-{name}") is None and host.owned(name, ns) == {}


def test_worker_killed_mid_provision_finishes_after_restart(rig):
    """kill -9 of the whole stack after half of the host objects exist; SQS messages are lost with it
    (moto keeps none), the objects are restored from the snapshot, and the sweep re-enqueues the
    instance whose status lags its generation: the next delivery finishes the job."""
    stack, host = rig.stack, rig.host
    project_name, ns = project(stack)
    host_ns = f"loft-{project_name}-v-crash"
    host.faults(latency_ms=400, verbs=["create"])  # slow creates: a wide window to crash in
    created = create(stack, ns, "crash", template=TEMPLATE)
    snapshot = rig.state_dir / "dynamodb.json"
    wait_for(lambda: snapshot.exists() and created["metadata"]["uid"] in snapshot.read_text()
             and 3 <= len(host.owned("crash", ns)) < 6, 15, 0.05, "a persisted instance, half provisioned")
    os.killpg(stack.process.pid, signal.SIGKILL)
    stack.process.wait()
    rig.emulator.clear_faults()
    before = host.owned("crash", ns)
    assert ("statefulsets", host_ns, "crash") not in before

    rig.start()
    ready = wait_phase(rig.stack, ns, "crash", "Ready", timeout=20)
    assert ready["metadata"]["uid"] == created["metadata"]["uid"]
    after = host.owned("crash", ns)
    assert {(p, n) for p, _, n in after if p != "namespaces"} == expected_names("crash")
    for key, obj in before.items():  # what existed was adopted, not recreated
        assert after[key]["metadata"]["uid"] == obj["metadata"]["uid"], key


def test_host_namespace_deleted_by_hand_comes_back_on_the_next_reconcile(rig):
    """The next reconcile brings it back: here an annotation change through the API. (This stack turns the
    sweep's periodic host check off; test_the_sweeps_host_check_recreates_a_deleted_namespace covers it.)"""
    stack, host = rig.stack, rig.host
    project_name, ns = project(stack)
    host_ns = f"loft-{project_name}-v-phoenix"
    create(stack, ns, "phoenix", template=TEMPLATE)
    ready = wait_phase(stack, ns, "phoenix", "Ready")
    old_uid = host.namespace(host_ns)["metadata"]["uid"]
    old_config = kubeconfig(stack, ns, "phoenix").json()["status"]["kubeConfig"]

    code, _ = host.call("DELETE", f"/api/v1/namespaces/{host_ns}")
    assert code == 200
    wait_for(lambda: host.namespace(host_ns) is None, 5, what="namespace purged")
    time.sleep(1.5)  # sweeps later: still gone, and the instance still says Ready
    assert host.namespace(host_ns) is None and get(stack, ns, "phoenix")["status"]["phase"] == "Ready"

    patch(stack, ns, "phoenix", {"metadata": {"annotations": {"example.com/poke": "1"}}})
    wait_for(lambda: host.obj(host_ns, "statefulsets", "phoenix"), 10, what="StatefulSet recreated")
    again = wait_for(lambda: (lambda o: o["status"]["phase"] == "Ready" and
                              o["status"]["serviceUID"] != ready["status"]["serviceUID"] and o)(get(stack, ns, "phoenix")),
                     15, what="Ready on the recreated namespace")
    assert host.namespace(host_ns)["metadata"]["uid"] != old_uid
    assert {(p, n) for p, _, n in host.owned("phoenix", ns) if p != "namespaces"} == expected_names("phoenix")
    assert again["status"]["serviceUID"] == host.obj(host_ns, "services", "phoenix")["metadata"]["uid"]
    new_config = kubeconfig(stack, ns, "phoenix").json()["status"]["kubeConfig"]
    assert new_config != old_config  # the new vcluster's credentials, not the dead one's


def test_templates_that_cannot_be_deployed_fail_once(rig):
    """A template that cannot render is refused when an instance is created (422). One edited into
    that state later fails its instances: phase Failed with a reason and message, and no retry loop:
    no host write afterwards, and the status is not rewritten by later sweeps."""
    stack, host = rig.stack, rig.host
    project_name, ns = project(stack)
    suffix = uuid.uuid4().hex[:6]
    bad = {
        "list-values": {"helmRelease": {"values": "- not\n- a mapping\n"}},
        "bad-kind": {"spaceTemplate": {"objects": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n"}},
        "bad-yaml": {"helmRelease": {"values": "sync: [unclosed\n"}},
    }
    for name, definition in bad.items():
        template = f"{API}/virtualclustertemplates/{name}-{suffix}"
        ok(stack.request("POST", API + "/virtualclustertemplates", {
            "metadata": {"name": f"{name}-{suffix}"}, "spec": {"template": TEMPLATE}}), 201)
        create(stack, ns, name, templateRef={"name": f"{name}-{suffix}"})
        wait_phase(stack, ns, name, "Ready")
        ok(stack.request("PATCH", template, json.dumps({"spec": {"template": definition}}), content_type=MERGE), 200)
        refused = stack.request("POST", f"{API}/namespaces/{ns}/{VCI}", {"metadata": {"name": f"{name}-new"},
                                                                         "spec": {"templateRef": {"name": f"{name}-{suffix}"}}})
        assert refused.status == 422 and b"ErrorRenderingTemplate" in refused.body, refused.body
        patch(stack, ns, name, {"metadata": {"annotations": {"touch": "1"}}})  # the next reconcile meets the edit
    # The host refuses an object (422 Invalid): a permanent error too, after a partial apply.
    create(stack, ns, "rejected", template={"spaceTemplate": {"objects": "apiVersion: v1\nkind: ConfigMap\n"
                                                                     "metadata:\n  name: cfg\ndata:\n  'bad key!': x\n"}})
    failed = {name: wait_phase(stack, ns, name, "Failed") for name in [*bad, "rejected"]}
    for name in bad:
        status = failed[name]["status"]
        assert status["reason"] == "ErrorRenderingTemplate" and status["message"], status
        condition = conditions(failed[name])["TemplateResolved"]
        assert (condition["status"], condition["reason"], condition["severity"]) == ("False", "ErrorRenderingTemplate", "Error")
        assert status["observedGeneration"] == 1
    assert "YAML mapping" in failed["list-values"]["status"]["message"]
    assert "spaceTemplate.objects" in failed["bad-kind"]["status"]["message"]
    assert "valid YAML" in failed["bad-yaml"]["status"]["message"]
    rejected = failed["rejected"]["status"]
    assert rejected["reason"] == "HostRejected" and "bad key!" in rejected["message"], rejected
    assert conditions(failed["rejected"])["VirtualClusterDeployed"]["status"] == "False"

    rig.settle()
    host.stats(reset=True)
    versions = {name: obj["metadata"]["resourceVersion"] for name, obj in failed.items()}
    time.sleep(2.5)  # sweeps, past STUCK_SECONDS
    assert rig.writes() == 0, host.stats()
    assert {name: get(stack, ns, name)["metadata"]["resourceVersion"] for name in failed} == versions
    assert kubeconfig(stack, ns, "list-values").status == 409

    # Fixing the spec is what retries: a new generation.
    patch(stack, ns, "rejected", {"spec": {"template": {**TEMPLATE, "spaceTemplate": None}}})
    wait_phase(stack, ns, "rejected", "Ready", generation=2)
    assert conditions(get(stack, ns, "rejected"))["VirtualClusterDeployed"]["status"] == "True"


def test_gives_up_dead_letters_and_the_sweep_retries_later(rig):
    """A host that keeps failing: WORKER_MAX_ATTEMPTS (3 here) temporary failures -> phase Failed and
    the job on the DLQ; once the host is back the sweep retries it (a temporary reason) to Ready."""
    stack, host = rig.stack, rig.host
    project_name, ns = project(stack)
    host_ns = f"loft-{project_name}-v-outage"
    host.faults(error_rate=1.0, error_codes=[503], path_contains=host_ns)
    create(stack, ns, "outage", template=TEMPLATE)
    failed = wait_phase(stack, ns, "outage", "Failed", timeout=20)
    assert failed["status"]["reason"] == "HostError"
    assert failed["status"]["message"].startswith("gave up after 3 attempts"), failed["status"]
    dlq_url = rig.sqs.get_queue_url(QueueName=rig.info["dlq"])["QueueUrl"]

    def dead_letter():
        for message in rig.sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10,
                                               VisibilityTimeout=0).get("Messages", []):
            body = json.loads(message["Body"])
            if (body["namespace"], body["name"]) == (ns, "outage"):
                return body
    parked = wait_for(dead_letter, 5, what="the job on the DLQ")
    assert parked["failures"] == 2 and "503" in parked["error"]

    rig.emulator.clear_faults()
    ready = wait_phase(stack, ns, "outage", "Ready", timeout=20, fail_fast=False)
    assert conditions(ready)["VirtualClusterDeployed"]["status"] == "True"
    assert {(p, n) for p, _, n in host.owned("outage", ns) if p != "namespaces"} == expected_names("outage")


def test_sleep_after_and_delete_after_are_enforced_by_the_sweep(rig):
    stack, host = rig.stack, rig.host
    project_name, ns = project(stack)
    create(stack, ns, "idle", template=TEMPLATE, annotations={"sleepmode.loft.sh/sleep-after": "2"})
    create(stack, ns, "ephemeral", template=TEMPLATE, annotations={"sleepmode.loft.sh/delete-after": "2"})
    wait_phase(stack, ns, "idle", "Ready")

    asleep = wait_phase(stack, ns, "idle", "Sleeping", timeout=10)
    annotations = asleep["metadata"]["annotations"]
    assert annotations["sleepmode.loft.sh/sleep-type"] == "inactivity" and annotations["sleepmode.loft.sh/sleeping-since"]
    assert host.obj(f"loft-{project_name}-v-idle", "statefulsets", "idle")["spec"]["replicas"] == 0

    # Asking for the kubeconfig is activity: it is refused while asleep (409) but wakes the vcluster.
    assert kubeconfig(stack, ns, "idle").status == 409
    woken = wait_phase(stack, ns, "idle", "Ready", timeout=10)
    assert "sleepmode.loft.sh/sleeping-since" not in woken["metadata"]["annotations"]
    assert float(woken["metadata"]["annotations"]["sleepmode.loft.sh/last-activity"]) > time.time() - 10

    wait_gone(stack, ns, "ephemeral", timeout=10)
    assert host.namespace(f"loft-{project_name}-v-ephemeral") is None
    delete(stack, ns, "idle")
    wait_gone(stack, ns, "idle")


# ---------------------------------------------------------------------------------------------------
# The SQS handler itself, in this process, on real SQS messages from the stack's moto.

@pytest.fixture
def in_process(rig, monkeypatch):
    """chalicelib pointed at the rig's AWS and host cluster, with no cached clients from elsewhere."""
    import importlib
    import threading

    from chalicelib import config
    from chalicelib.worker import hosts

    for key, value in {"AWS_ENDPOINT_URL": rig.info["aws_endpoint"], "AWS_DEFAULT_REGION": "us-east-1",
                       "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}.items():
        monkeypatch.setenv(key, value)
    for key, value in {"TABLE_NAME": rig.info["table"], "JOBS_QUEUE_NAME": rig.info["queue"], "JOBS_QUEUE_URL": "",
                       "JOBS_DLQ_NAME": rig.info["dlq"], "HOST_CLUSTERS": {"loft-cluster": {"kubeconfig": rig.kubeconfig}},
                       "DEFAULT_CLUSTER": "loft-cluster"}.items():
        monkeypatch.setattr(config, key, value)
    for module, cache, empty in (("chalicelib.aws", "_clients", dict), ("chalicelib.store", "_clients", dict),
                                 ("chalicelib.jobs", "_local", threading.local), ("chalicelib.jobs", "_queue_urls", dict)):
        monkeypatch.setattr(importlib.import_module(module), cache, empty(), raising=False)
    monkeypatch.setattr(hosts, "_clients", {})
    queue = f"batch-{uuid.uuid4().hex[:8]}"
    url = rig.sqs.create_queue(QueueName=queue, Attributes={"VisibilityTimeout": "1"})["QueueUrl"]
    yield queue, url
    rig.sqs.delete_queue(QueueUrl=url)


def _receive_all(rig, url, count):
    messages = []
    deadline = time.monotonic() + 10
    while len(messages) < count and time.monotonic() < deadline:
        messages += rig.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"],
                                            WaitTimeSeconds=1).get("Messages", [])
    assert len(messages) == count, messages
    return messages


def test_partial_batch_response_reports_only_the_failed_record(rig, in_process):
    from chalicelib import jobs
    from chalicelib.worker import consumer

    queue, url = in_process
    stack, host = rig.stack, rig.host
    project_name, ns = project(stack)
    create(stack, ns, "live", template=TEMPLATE)
    create(stack, ns, "gone", template=TEMPLATE)
    delete(stack, ns, "gone")
    wait_gone(stack, ns, "gone")
    live = wait_phase(stack, ns, "live", "Ready")
    rig.settle()
    # A poison record: an instance item whose body is not JSON (the worker raises reading it).
    poison_ns = f"loft-p-poison-{uuid.uuid4().hex[:6]}"
    rig.dynamodb.put_item(TableName=rig.info["table"], Item={
        "pk": {"S": f"virtualclusterinstances#{poison_ns}"}, "sk": {"S": "broken"}, "body": {"S": '{"metadata": '}})
    bodies = {
        "live": jobs.encode("virtualclusterinstances", ns, "live", "test"),
        "gone": jobs.encode("virtualclusterinstances", ns, "gone", "test"),
        "poison": jobs.encode("virtualclusterinstances", poison_ns, "broken", "test"),
        "not-json": "hello from another producer",
        "not-a-job": json.dumps({"kind": 3, "name": ["x"]}),
    }
    try:
        for body in bodies.values():
            rig.sqs.send_message(QueueUrl=url, MessageBody=body)
        messages = _receive_all(rig, url, len(bodies))
        ids = {next(k for k, v in bodies.items() if v == m["Body"]): m["MessageId"] for m in messages}
        host.stats(reset=True)
        result = consumer.consume((m["MessageId"], m["Body"]) for m in messages)
        assert result == {"batchItemFailures": [{"itemIdentifier": ids["poison"]}]}
        assert rig.writes() == 0 and host.stats()["by_verb"]["get"] >= 3  # the live one: a no-op reconcile
        assert get(stack, ns, "live")["metadata"]["resourceVersion"] == live["metadata"]["resourceVersion"]
        assert host.namespace(f"loft-{project_name}-v-gone") is None  # the deleted one was not resurrected

        # The same batch through the Lambda handler (app.worker) with a real SQS event payload, as the
        # local poller delivers it: the succeeded messages are deleted, only the poison comes back.
        import app
        from local.worker import WorkerLoop

        rig.sqs.change_message_visibility_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0} for i, m in enumerate(messages)])
        messages = _receive_all(rig, url, len(bodies))
        WorkerLoop(app, queue).deliver(messages)
        again = rig.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=3).get("Messages", [])
        assert [m["Body"] for m in again] == [bodies["poison"]]  # back after its visibility timeout
        assert rig.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []) == []
    finally:
        rig.dynamodb.delete_item(TableName=rig.info["table"], Key={
            "pk": {"S": f"virtualclusterinstances#{poison_ns}"}, "sk": {"S": "broken"}})


def test_the_sweeps_host_check_recreates_a_deleted_namespace(tmp_path):
    """With RESYNC_MINUTES=1 every sweep checks converged instances against the host: a host namespace
    deleted by hand comes back with no API call at all."""
    stack = start_stack(tmp_path, env={"SWEEP_SECONDS": "1", "RESYNC_MINUTES": "1", "STUCK_SECONDS": "2",
                                       "WORKER_BACKOFF_BASE_SECONDS": "0.2", "WORKER_BACKOFF_CAP_SECONDS": "1"})
    try:
        emulator = json.loads((tmp_path / "stack.json").read_text())["host_emulator"]
        project_name, ns = project(stack)
        create(stack, ns, "lazarus", template=TEMPLATE)
        ready = wait_phase(stack, ns, "lazarus", "Ready")
        host_ns = f"/api/v1/namespaces/loft-{project_name}-v-lazarus"
        old_uid = json.load(urllib.request.urlopen(emulator + host_ns))["metadata"]["uid"]
        urllib.request.urlopen(urllib.request.Request(emulator + host_ns, method="DELETE"))

        def recreated():
            try:
                return json.load(urllib.request.urlopen(emulator + host_ns))["metadata"]["uid"] != old_uid
            except urllib.error.HTTPError:
                return False
        wait_for(recreated, 20, what="namespace recreated by the sweep")
        wait_for(lambda: get(stack, ns, "lazarus")["status"].get("serviceUID") != ready["status"]["serviceUID"]
                 and get(stack, ns, "lazarus")["status"]["phase"] == "Ready", 20, what="Ready again")
    finally:
        stop_stack(stack)
