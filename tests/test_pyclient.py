"""The official kubernetes Python client (pinned 36.0.3) against the local stack, configured from the
kubeconfig `make run` writes: DynamicClient (discovery-driven) and CustomObjectsApi."""
import json
import threading
import time

import pytest
import urllib3
import yaml
from kubernetes import client, config, watch
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ConflictError, NotFoundError

from conftest import SPEC

GROUP, VERSION, PLURAL = "management.loft.sh", "v1", "virtualclusterinstances"
HOLD = "test.loft.sh/hold"
WATCH_MAX_SECONDS = 3  # what conftest starts the stack with

urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)  # the kubeconfig says insecure-skip-tls-verify


@pytest.fixture(scope="module")
def api_client(stack):
    return config.new_client_from_config(config_file=str(stack.kubeconfig))


@pytest.fixture(scope="module")
def dynamic(api_client, tmp_path_factory):
    return DynamicClient(api_client, cache_file=str(tmp_path_factory.mktemp("discovery") / "cache.json"))


@pytest.fixture(scope="module")
def custom(api_client):
    return client.CustomObjectsApi(api_client)




def manifest(name, labels=None, finalizers=None):
    obj = yaml.safe_load((SPEC / "object.yaml").read_text())
    obj["metadata"] = {"name": name, **({"labels": labels} if labels else {}), **({"finalizers": finalizers} if finalizers else {})}
    return obj


def test_dynamic_client_discovers_the_kind(dynamic):
    vci = dynamic.resources.get(api_version=f"{GROUP}/{VERSION}", kind="VirtualClusterInstance")
    assert (vci.name, vci.namespaced, vci.short_names) == (PLURAL, True, ["vci"])
    assert set(vci.verbs) >= {"create", "delete", "get", "list", "patch", "update", "watch"}
    assert dynamic.resources.get(short_names=["vci"]).kind == "VirtualClusterInstance"
    assert dynamic.version["kubernetes"]["minor"]


def test_dynamic_client_lifecycle(stack, dynamic, ns):
    vci = dynamic.resources.get(api_version=f"{GROUP}/{VERSION}", kind="VirtualClusterInstance")
    created = vci.create(body=manifest("dyn", {"app": "py"}, [HOLD]), namespace=ns)
    assert created.metadata.uid and created.metadata.namespace == ns
    assert set(created.metadata.finalizers) == {"loft.sh/cleanup", HOLD}

    got = vci.get(name="dyn", namespace=ns)
    assert got.spec.templateRef.name == "my-virtual-cluster-template" and got.metadata.uid == created.metadata.uid
    listed = vci.get(namespace=ns, label_selector="app=py")
    assert listed.kind == "VirtualClusterInstanceList" and [i.metadata.name for i in listed.items] == ["dyn"]
    assert vci.get(namespace=ns, label_selector="app=other").items == []

    merged = vci.patch(name="dyn", namespace=ns, body={"spec": {"description": "merged"}},
                       content_type="application/merge-patch+json")
    assert merged.spec.description == "merged"
    patched = vci.patch(name="dyn", namespace=ns, content_type="application/json-patch+json",
                        body=[{"op": "add", "path": "/metadata/annotations/my-annotation", "value": "my-value"}])
    assert patched.metadata.annotations["my-annotation"] == "my-value"

    stale = got.to_dict()
    stale["spec"]["description"] = "stale"
    with pytest.raises(ConflictError) as conflict:
        vci.replace(body=stale, namespace=ns)
    assert json.loads(conflict.value.body)["reason"] == "Conflict"

    deleting = vci.delete(name="dyn", namespace=ns)
    assert deleting.metadata.deletionTimestamp
    assert vci.get(name="dyn", namespace=ns).metadata.deletionTimestamp  # still there: finalizers pending
    vci.patch(name="dyn", namespace=ns, body={"metadata": {"finalizers": None}}, content_type="application/merge-patch+json")
    with pytest.raises(NotFoundError) as missing:
        vci.get(name="dyn", namespace=ns)
    status = json.loads(missing.value.body)
    assert (status["reason"], status["message"]) == ("NotFound", f'{PLURAL}.{GROUP} "dyn" not found')


def test_custom_objects_api(custom, ns):
    created = custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, manifest("co", finalizers=[HOLD]))
    assert created["metadata"]["name"] == "co" and created["kind"] == "VirtualClusterInstance"
    with pytest.raises(client.ApiException) as duplicate:
        custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, manifest("co"))
    assert duplicate.value.status == 409 and json.loads(duplicate.value.body)["reason"] == "AlreadyExists"

    assert custom.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "co")["metadata"]["uid"] == created["metadata"]["uid"]
    for name in ("co2", "co3"):
        custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, manifest(name))
    first = custom.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, limit=2)
    assert [i["metadata"]["name"] for i in first["items"]] == ["co", "co2"] and first["metadata"]["continue"]
    rest = custom.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, limit=2, _continue=first["metadata"]["continue"])
    assert [i["metadata"]["name"] for i in rest["items"]] == ["co3"] and not rest["metadata"].get("continue")
    everywhere = custom.list_cluster_custom_object(GROUP, VERSION, PLURAL, field_selector=f"metadata.namespace={ns}")
    assert sorted(i["metadata"]["name"] for i in everywhere["items"]) == ["co", "co2", "co3"]

    merged = custom.patch_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "co", {"metadata": {"labels": {"a": "b"}}})
    assert merged["metadata"]["labels"] == {"a": "b"}
    json_patched = custom.patch_namespaced_custom_object(  # the client sends merge patches unless told
        GROUP, VERSION, ns, PLURAL, "co", [{"op": "replace", "path": "/spec/displayName", "value": "json"}],
        _content_type="application/json-patch+json")
    assert json_patched["spec"]["displayName"] == "json"

    with pytest.raises(client.ApiException) as missing:
        custom.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "nope")
    assert missing.value.status == 404
    assert json.loads(missing.value.body)["message"] == f'{PLURAL}.{GROUP} "nope" not found'

    deleting = custom.delete_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "co")
    assert deleting["metadata"]["deletionTimestamp"]
    custom.patch_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "co", {"metadata": {"finalizers": None}})
    with pytest.raises(client.ApiException) as gone:
        custom.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "co")
    assert gone.value.status == 404


def test_watch_resumes_after_the_server_ends_it(custom, ns):
    """kubernetes.watch re-watches from the last resourceVersion when our bounded watch ends."""
    custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, manifest("watched"))
    start = custom.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)["metadata"]["resourceVersion"]

    def later():
        time.sleep(WATCH_MAX_SECONDS + 1)  # after the first watch request ended empty-handed... or with worker events
        custom.patch_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "watched", {"metadata": {"labels": {"late": "yes"}}})

    changer = threading.Thread(target=later)
    changer.start()
    w = watch.Watch()
    guard = threading.Timer(30, w.stop)
    guard.start()
    seen = []
    try:
        for event in w.stream(custom.list_namespaced_custom_object, GROUP, VERSION, ns, PLURAL, resource_version=start):
            seen.append(event["type"])
            if (event["object"]["metadata"].get("labels") or {}).get("late") == "yes":
                w.stop()
    finally:
        guard.cancel()
        changer.join()
    assert seen and seen[-1] == "MODIFIED", seen


def test_bad_token_is_unauthorized(stack):
    configuration = client.Configuration()
    configuration.host = stack.url + "/kubernetes/management"
    configuration.verify_ssl = False
    configuration.api_key = {"authorization": "Bearer not-a-key"}
    with client.ApiClient(configuration) as bad:
        with pytest.raises(client.ApiException) as refused:
            client.CustomObjectsApi(bad).list_namespaced_custom_object(GROUP, VERSION, "loft-p-my-project", PLURAL)
    assert refused.value.status == 401 and json.loads(refused.value.body)["reason"] == "Unauthorized"
