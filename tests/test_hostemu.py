"""The host-cluster emulator, driven by the real kubernetes client (36.0.3) through a kubeconfig."""
import base64
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import urllib3
import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from local.hostemu import HostEmulator  # noqa: E402

STS_BODY = {"metadata": {"name": "vc", "labels": {"app": "vcluster"}},
            "spec": {"serviceName": "vc-headless", "selector": {"matchLabels": {"app": "vcluster", "release": "vc"}},
                     "template": {"metadata": {"labels": {"app": "vcluster", "release": "vc"}},
                                  "spec": {"containers": [{"name": "syncer", "image": "vcluster:0.20"}]}}}}


@pytest.fixture(scope="module")
def emu(tmp_path_factory):
    emu = HostEmulator(ready_delay=0.1, terminate_delay=0.1, seed=7).start()
    emu.kubeconfig_path = emu.write_kubeconfig(tmp_path_factory.mktemp("hostemu") / "kubeconfig")
    yield emu
    emu.stop()


@pytest.fixture(autouse=True)
def no_faults(emu):
    emu.clear_faults()
    yield
    emu.clear_faults()
    emu.configure(ready_delay=0.1, terminate_delay=0.1)


@pytest.fixture(scope="module")
def api(emu):
    return config.new_client_from_config(config_file=emu.kubeconfig_path)


@pytest.fixture(scope="module")
def core(api):
    return client.CoreV1Api(api)


@pytest.fixture(scope="module")
def apps(api):
    return client.AppsV1Api(api)


@pytest.fixture(scope="module")
def rbac(api):
    return client.RbacAuthorizationV1Api(api)


_ns_counter = iter(range(10**6))


@pytest.fixture
def ns(core):
    name = f"t{next(_ns_counter)}"
    core.create_namespace({"metadata": {"name": name}})
    return name


def eventually(check, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.02)


def raises(status, fn, *args, **kwargs):
    with pytest.raises(ApiException) as info:
        fn(*args, **kwargs)
    assert info.value.status == status, info.value.body
    body = json.loads(info.value.body)
    assert body["kind"] == "Status" and body["status"] == "Failure" and body["code"] == status
    return body


def emu_http(emu, method, path, body=None):
    req = urllib.request.Request(emu.url + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


@pytest.fixture
def global_kube_config(emu):
    """load_kube_config changes the process-wide default; put it back for other tests."""
    saved = client.Configuration.get_default_copy()
    config.load_kube_config(config_file=emu.kubeconfig_path)
    yield
    client.Configuration.set_default(saved)


def test_load_kube_config_and_discovery(emu, tmp_path, global_kube_config):
    assert client.VersionApi().get_code().git_version.startswith("v1.")
    names = [r.name for r in client.CoreV1Api().get_api_resources().resources]
    assert {"namespaces", "secrets", "configmaps", "serviceaccounts", "services"} <= set(names)
    assert "statefulsets/scale" in [r.name for r in client.AppsV1Api().get_api_resources().resources]
    assert {g.name for g in client.ApisApi().get_api_versions().groups} == {"apps", "rbac.authorization.k8s.io"}
    from kubernetes.dynamic import DynamicClient
    dyn = DynamicClient(config.new_client_from_config(config_file=emu.kubeconfig_path),
                        cache_file=str(tmp_path / "discovery.json"))
    roles = dyn.resources.get(api_version="rbac.authorization.k8s.io/v1", kind="Role")
    created = roles.create(namespace="default", body={"metadata": {"name": "dyn"}, "rules": []})
    assert roles.get(name="dyn", namespace="default").metadata.uid == created.metadata.uid
    sts = dyn.resources.get(api_version="apps/v1", kind="StatefulSet")
    assert sts.get(namespace="default").items == []
    roles.delete(name="dyn", namespace="default")


CRUD = [  # (kind prefix on the client, api fixture, body, change to patch in)
    ("config_map", "core", {"data": {"a": "1"}}, {"data": {"a": "2"}}),
    ("secret", "core", {"data": {"a": base64.b64encode(b"1").decode()}}, {"stringData": {"b": "2"}}),
    ("service_account", "core", {}, {"automountServiceAccountToken": False}),
    ("service", "core", {"spec": {"ports": [{"port": 443, "targetPort": 8443}]}}, {"spec": {"type": "NodePort"}}),
    ("role", "rbac", {"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}, {"rules": []}),
    ("role_binding", "rbac", {"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
                              "subjects": [{"kind": "ServiceAccount", "name": "vc-vc"}]}, {"subjects": []}),
    ("stateful_set", "apps", STS_BODY, {"spec": {"replicas": 2}}),
]


@pytest.mark.parametrize("kind,which,body,change", CRUD, ids=[c[0] for c in CRUD])
def test_crud_each_kind(request, ns, kind, which, body, change):
    api = request.getfixturevalue(which)
    call = lambda verb, *a, **kw: getattr(api, f"{verb}_namespaced_{kind}")(*a, **kw)  # noqa: E731
    body = {**json.loads(json.dumps(body)), "metadata": {"name": "obj", "labels": {"app": "vcluster"}}}
    created = call("create", ns, body)
    meta = created.metadata
    assert meta.uid and meta.creation_timestamp and int(meta.resource_version) > 0 and meta.namespace == ns
    assert call("read", "obj", ns).metadata.uid == meta.uid
    assert [o.metadata.name for o in call("list", ns, label_selector="app=vcluster").items] == ["obj"]
    patched = call("patch", "obj", ns, change)
    assert int(patched.metadata.resource_version) > int(meta.resource_version)
    patched.metadata.labels["x"] = "y"
    replaced = call("replace", "obj", ns, patched)
    assert replaced.metadata.labels == {"app": "vcluster", "x": "y"} and replaced.metadata.uid == meta.uid
    call("delete", "obj", ns)
    raises(404, call, "read", "obj", ns)
    assert call("list", ns).items == []


def test_cluster_scoped_namespace_and_rbac(core, rbac):
    ns = core.create_namespace({"metadata": {"name": "scoped", "labels": {"team": "a"}}})
    assert ns.status.phase == "Active" and ns.metadata.labels["kubernetes.io/metadata.name"] == "scoped"
    assert [n.metadata.name for n in core.list_namespace(label_selector="team=a").items] == ["scoped"]
    patched = core.patch_namespace("scoped", {"metadata": {"labels": {"team": "b"}}})
    assert patched.metadata.labels["team"] == "b" and patched.status.phase == "Active"
    role = rbac.create_cluster_role({"metadata": {"name": "loft:reader"}, "rules": []})
    assert rbac.read_cluster_role("loft:reader").metadata.uid == role.metadata.uid
    rbac.delete_cluster_role("loft:reader")
    core.delete_namespace("scoped")


def test_selectors_across_namespaces(core, ns):
    other = core.create_namespace({"metadata": {"name": ns + "-b"}}).metadata.name
    for space, name, labels in [(ns, "a", {"tier": "web", "env": "prod"}), (ns, "b", {"tier": "db"}),
                                (other, "c", {"tier": "web", "env": "dev"}), (other, "d", {})]:
        core.create_namespaced_config_map(space, {"metadata": {"name": name, "labels": labels}})

    def names(**kw):
        return sorted(o.metadata.name for o in core.list_config_map_for_all_namespaces(**kw).items
                      if o.metadata.namespace in (ns, other))
    assert names() == ["a", "b", "c", "d"]
    assert names(label_selector="tier=web") == ["a", "c"]
    assert names(label_selector="tier==web,env!=dev") == ["a"]
    assert names(label_selector="tier in (db, web),env notin (prod)") == ["b", "c"]
    assert names(label_selector="env") == ["a", "c"]
    assert names(label_selector="!tier") == ["d"]
    assert names(field_selector="metadata.name=c") == ["c"]
    assert names(field_selector=f"metadata.namespace={other},metadata.name!=c") == ["d"]
    page = core.list_namespaced_config_map(ns, limit=1)
    assert len(page.items) == 1 and page.metadata._continue
    rest = core.list_namespaced_config_map(ns, limit=1, _continue=page.metadata._continue)
    assert [page.items[0].metadata.name, rest.items[0].metadata.name] == ["a", "b"]
    raises(400, core.list_namespaced_config_map, ns, label_selector="in (x")
    raises(400, core.list_namespaced_config_map, ns, field_selector="spec.foo=x")
    assert core.list_namespaced_config_map("no-such-namespace").items == []


def test_errors_are_kubernetes_statuses(core, apps, ns):
    core.create_namespaced_secret(ns, {"metadata": {"name": "s"}, "stringData": {"k": "v"}})
    body = raises(409, core.create_namespaced_secret, ns, {"metadata": {"name": "s"}})
    assert body["reason"] == "AlreadyExists" and body["details"] == {"name": "s", "kind": "secrets"}
    current = core.read_namespaced_secret("s", ns)
    assert base64.b64decode(current.data["k"]) == b"v"
    stale = current.metadata.resource_version
    core.patch_namespaced_secret("s", ns, {"metadata": {"labels": {"a": "b"}}})
    current.metadata.resource_version = stale
    assert raises(409, core.replace_namespaced_secret, "s", ns, current)["reason"] == "Conflict"
    current.metadata.resource_version = None  # unconditional update is allowed
    core.replace_namespaced_secret("s", ns, current)
    body = raises(404, core.read_namespaced_secret, "missing", ns)
    assert body["reason"] == "NotFound" and body["message"] == 'secrets "missing" not found'
    body = raises(404, core.create_namespaced_config_map, "nowhere", {"metadata": {"name": "x"}})
    assert body["details"] == {"name": "nowhere", "kind": "namespaces"}
    body = raises(404, apps.read_namespaced_stateful_set, "missing", ns)
    assert body["details"]["group"] == "apps" and body["message"] == 'statefulsets.apps "missing" not found'
    assert raises(422, core.create_namespaced_config_map, ns, {"metadata": {"name": "Bad_Name"}})["reason"] == "Invalid"
    raises(422, core.create_namespaced_config_map, ns, {"metadata": {"name": "x", "labels": {"a": "not ok"}}})
    raises(400, core.create_namespaced_secret, ns, {"metadata": {"name": "x"}, "data": {"k": "not base64!"}})
    raises(400, core.replace_namespaced_config_map, "a", ns, {"metadata": {"name": "b"}})
    raises(404, core.replace_namespaced_config_map, "ghost", ns, {"metadata": {"name": "ghost"}})
    raises(403, core.delete_namespace, "default")
    core.delete_namespaced_secret("s", ns)
    raises(404, core.delete_namespaced_secret, "s", ns)


def test_namespace_deletion_cascades(emu, core, apps, ns):
    core.create_namespaced_config_map(ns, {"metadata": {"name": "c"}})
    apps.create_namespaced_stateful_set(ns, STS_BODY)
    emu.configure(terminate_delay=0.3)
    core.delete_namespace(ns)
    terminating = core.read_namespace(ns)
    assert terminating.status.phase == "Terminating" and terminating.metadata.deletion_timestamp
    body = raises(403, core.create_namespaced_config_map, ns, {"metadata": {"name": "late"}})
    assert body["reason"] == "Forbidden" and "because it is being terminated" in body["message"]
    core.patch_namespaced_config_map("c", ns, {"data": {"still": "writable"}})  # updates are still allowed
    assert eventually(lambda: ns not in [n.metadata.name for n in core.list_namespace().items])
    raises(404, core.read_namespace, ns)
    assert core.list_namespaced_config_map(ns).items == [] and emu.list_objects("statefulsets", ns) == []
    core.create_namespace({"metadata": {"name": ns}})  # the name can be reused
    assert core.list_namespaced_config_map(ns).items == []


def test_services_keep_their_cluster_ip(core, ns):
    svc = core.create_namespaced_service(ns, {"metadata": {"name": "vc", "labels": {"vcluster.loft.sh/service": "true"}},
                                              "spec": {"ports": [{"name": "https", "port": 443, "targetPort": 8443}]}})
    ip = svc.spec.cluster_ip
    assert ip.startswith("10.") and svc.spec.type == "ClusterIP" and svc.spec.ports[0].protocol == "TCP"
    svc.spec.cluster_ip = svc.spec.cluster_i_ps = None
    assert core.replace_namespaced_service("vc", ns, svc).spec.cluster_ip == ip
    assert core.patch_namespaced_service("vc", ns, {"spec": {"selector": {"app": "vcluster"}}}).spec.cluster_ip == ip
    raises(422, core.patch_namespaced_service, "vc", ns, {"spec": {"clusterIP": "10.1.2.3"}})
    headless = core.create_namespaced_service(ns, {"metadata": {"name": "vc-headless"},
                                                   "spec": {"clusterIP": "None", "ports": [{"port": 443}]}})
    assert headless.spec.cluster_ip == "None"
    other = core.create_namespaced_service(ns, {"metadata": {"name": "other"}, "spec": {"ports": [{"port": 80}]}})
    assert other.spec.cluster_ip not in (ip, "None")


def test_statefulset_becomes_ready_and_writes_vc_secret(emu, core, apps, ns):
    sts = apps.create_namespaced_stateful_set(ns, STS_BODY)
    assert sts.metadata.generation == 1 and not sts.status.ready_replicas

    def ready(replicas, generation):
        status = apps.read_namespaced_stateful_set("vc", ns).status
        return status.observed_generation == generation and (status.ready_replicas or 0) == replicas \
            and status.replicas == replicas and (status.available_replicas or 0) == replicas
    assert eventually(lambda: ready(1, 1))
    s = apps.read_namespaced_stateful_set_status("vc", ns).status
    assert s.current_replicas == s.updated_replicas == 1
    secret = core.read_namespaced_secret("vc-vc", ns)
    assert set(secret.data) == {"config", "certificate-authority", "client-certificate", "client-key", "token"}
    kubeconfig = yaml.safe_load(base64.b64decode(secret.data["config"]))
    assert kubeconfig["clusters"][0]["cluster"]["server"] == "https://localhost:8443"
    assert base64.b64decode(secret.data["certificate-authority"]).startswith(b"-----BEGIN CERTIFICATE-----")

    # sleep mode: scale to 0 through the scale subresource, then wake up with a patch
    scale = apps.patch_namespaced_stateful_set_scale("vc", ns, {"spec": {"replicas": 0}})
    assert scale.spec.replicas == 0
    assert eventually(lambda: ready(0, 2))
    apps.patch_namespaced_stateful_set("vc", ns, {"spec": {"replicas": 1}})
    assert eventually(lambda: ready(1, 3))
    assert apps.read_namespaced_stateful_set_scale("vc", ns).status.replicas == 1

    # a new spec goes ready again after the delay; metadata-only changes keep the generation
    emu.configure(ready_delay=0.3)
    sts = apps.patch_namespaced_stateful_set("vc", ns, {"spec": {"template": {"metadata": {"annotations": {"x": "1"}}}}})
    assert sts.metadata.generation == 4 and sts.status.observed_generation == 3
    assert eventually(lambda: ready(1, 4))
    sts = apps.patch_namespaced_stateful_set("vc", ns, {"metadata": {"annotations": {"y": "1"}}})
    assert sts.metadata.generation == 4
    body = raises(422, apps.patch_namespaced_stateful_set, "vc", ns, {"spec": {"serviceName": "other"}})
    assert "updates to statefulset spec" in body["message"]
    # status is a subresource: writes through the main endpoint leave it alone
    sts.status.ready_replicas = 99
    assert apps.replace_namespaced_stateful_set("vc", ns, sts).status.ready_replicas == 1
    assert core.read_namespaced_secret("vc-vc", ns).metadata.uid == secret.metadata.uid  # written once


def test_statefulset_never_ready_when_disabled(emu, apps, ns):
    emu.configure(ready_delay=None)
    apps.create_namespaced_stateful_set(ns, STS_BODY)
    time.sleep(0.2)
    assert not apps.read_namespaced_stateful_set("vc", ns).status.ready_replicas
    assert emu.get_object("secrets", "vc-vc", ns) is None


def test_patch_flavours_and_server_side_apply(core, ns):
    core.create_namespaced_config_map(ns, {"metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}})
    merged = core.patch_namespaced_config_map("c", ns, {"data": {"b": None, "c": "3"}},
                                              _content_type="application/merge-patch+json")
    assert merged.data == {"a": "1", "c": "3"}
    assert core.patch_namespaced_config_map("c", ns, {"data": {"d": "4"}}).data == {"a": "1", "c": "3", "d": "4"}
    ops = [{"op": "replace", "path": "/data/a", "value": "9"}, {"op": "remove", "path": "/data/d"}]
    assert core.patch_namespaced_config_map("c", ns, ops).data == {"a": "9", "c": "3"}
    raises(422, core.patch_namespaced_config_map, "c", ns, [{"op": "test", "path": "/data/a", "value": "0"}])
    rv = core.read_namespaced_config_map("c", ns).metadata.resource_version
    raises(409, core.patch_namespaced_config_map, "c", ns, {"metadata": {"resourceVersion": str(int(rv) - 1)}})
    raises(404, core.patch_namespaced_config_map, "ghost", ns, {"data": {}})

    applied = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa", "labels": {"by": "apply"}},
               "data": {"k": "v"}}
    first = core.patch_namespaced_config_map("ssa", ns, applied, field_manager="x", force=True,
                                             _content_type="application/apply-patch+yaml")
    assert first.data == {"k": "v"} and first.metadata.uid
    applied["data"] = {"k2": "v2"}
    second = core.patch_namespaced_config_map("ssa", ns, applied, field_manager="x", force=True,
                                              _content_type="application/apply-patch+yaml")
    assert second.data == {"k": "v", "k2": "v2"} and second.metadata.uid == first.metadata.uid
    raises(422, core.patch_namespaced_config_map, "ssa", ns, applied, _content_type="application/apply-patch+yaml")
    # a namespace applied into existence, as a worker creating the host namespace would
    applied_ns = core.patch_namespace(ns + "-applied", {"apiVersion": "v1", "kind": "Namespace",
                                                        "metadata": {"name": ns + "-applied"}},
                                      field_manager="x", _content_type="application/apply-patch+yaml")
    assert applied_ns.status.phase == "Active"


def test_delete_options_deletecollection_and_dry_run(core, ns):
    made = core.create_namespaced_config_map(ns, {"metadata": {"name": "c", "labels": {"g": "1"}}})
    core.create_namespaced_config_map(ns, {"metadata": {"name": "d", "labels": {"g": "1"}}})
    core.create_namespaced_config_map(ns, {"metadata": {"name": "e"}}, dry_run="All")
    raises(404, core.read_namespaced_config_map, "e", ns)
    raises(409, core.delete_namespaced_config_map, "c", ns,
           body=client.V1DeleteOptions(preconditions=client.V1Preconditions(uid="not-the-uid")))
    status = core.delete_namespaced_config_map("c", ns, body=client.V1DeleteOptions(
        preconditions=client.V1Preconditions(uid=made.metadata.uid)))
    assert status.status == "Success" and status.details.name == "c"
    core.delete_collection_namespaced_config_map(ns, label_selector="g=1")
    assert core.list_namespaced_config_map(ns).items == []


def test_fault_injection(emu, core, ns):
    emu.set_faults(error_rate=1.0, error_codes=[503])
    body = raises(503, core.read_namespace, ns)
    assert body["reason"] == "ServiceUnavailable"
    emu.set_faults(error_rate=1.0, error_codes=[429], retry_after=0)
    emu.reset_stats()
    with pytest.raises(ApiException) as info:
        core.list_namespace()
    assert info.value.status == 429 and info.value.headers["Retry-After"] == "0"
    assert emu.stats()["by_verb"]["list"] == 4  # urllib3 retried a 429 with Retry-After three times
    emu.set_faults(drop_rate=1.0)
    with pytest.raises(urllib3.exceptions.HTTPError):
        core.read_namespace(ns)
    with pytest.raises(urllib3.exceptions.HTTPError):
        core.create_namespaced_config_map(ns, {"metadata": {"name": "dropped"}})
    assert emu.get_object("configmaps", "dropped", ns) is None
    emu.set_faults(drop_after_rate=1.0, verbs=["create"])  # applied, but the answer is lost
    with pytest.raises(urllib3.exceptions.HTTPError):
        core.create_namespaced_config_map(ns, {"metadata": {"name": "lost-answer"}})
    assert core.read_namespaced_config_map("lost-answer", ns)  # reads are not affected
    emu.set_faults(error_rate=1.0, max_faults=2, path_contains="/configmaps")
    core.read_namespace(ns)
    for _ in range(2):
        raises(500, core.list_namespaced_config_map, ns)
    core.list_namespaced_config_map(ns)
    emu.set_faults(latency_ms=50)
    started = time.monotonic()
    core.read_namespace(ns)
    assert time.monotonic() - started >= 0.05
    assert emu.stats()["faults"]["drops"] >= 2

    # the same over HTTP; the control endpoints are never faulted
    emu_http(emu, "POST", "/_emulator/faults", {"error_rate": 1.0, "error_codes": [500, 503], "drop_rate": 0.0})
    assert emu_http(emu, "GET", "/_emulator/faults")["error_rate"] == 1.0
    with pytest.raises(ApiException) as info:
        core.read_namespace(ns)
    assert info.value.status in (500, 503)
    assert emu_http(emu, "GET", "/_emulator/stats")["requests"] > 0
    emu_http(emu, "POST", "/_emulator/faults", {})
    core.read_namespace(ns)
    with pytest.raises(urllib.error.HTTPError) as bad:
        emu_http(emu, "POST", "/_emulator/faults", {"no_such_fault": 1})
    assert bad.value.code == 400


def test_stats_and_reset_over_http(emu, core, apps):
    emu_http(emu, "POST", "/_emulator/stats/reset")
    core.create_namespace({"metadata": {"name": "stats"}})
    core.read_namespace("stats")
    core.list_namespace()
    core.patch_namespace("stats", {"metadata": {"labels": {"a": "b"}}})
    apps.list_stateful_set_for_all_namespaces()
    stats = emu_http(emu, "GET", "/_emulator/stats")
    assert stats["requests"] == 5
    assert {k: v for k, v in stats["by_verb"].items() if v} == {"create": 1, "get": 1, "list": 2, "patch": 1}
    assert stats["by_resource"]["statefulsets"] == {"list": 1}
    assert "stats" in [o["metadata"]["name"] for o in emu_http(emu, "GET", "/_emulator/objects")["namespaces"]]
    assert emu_http(emu, "POST", "/_emulator/config", {"ready_delay": 0.05}) == {"ready_delay": 0.05,
                                                                                 "terminate_delay": 0.1}
    emu_http(emu, "POST", "/_emulator/reset")
    assert emu_http(emu, "GET", "/_emulator/stats")["requests"] == 0
    assert sorted(n.metadata.name for n in core.list_namespace().items) == \
        ["default", "kube-node-lease", "kube-public", "kube-system"]


def test_concurrent_writers_get_conflicts_not_lost_updates(core, ns):
    core.create_namespaced_config_map(ns, {"metadata": {"name": "counter"}, "data": {"n": "0"}})
    errors = []

    def bump(times):
        try:
            for _ in range(times):
                while True:
                    cm = core.read_namespaced_config_map("counter", ns)
                    cm.data["n"] = str(int(cm.data["n"]) + 1)
                    try:
                        core.replace_namespaced_config_map("counter", ns, cm)
                        break
                    except ApiException as e:
                        assert e.status == 409
        except Exception as e:  # pragma: no cover - surfaced below
            errors.append(e)
    threads = [threading.Thread(target=bump, args=(10,)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and core.read_namespaced_config_map("counter", ns).data["n"] == "60"


def test_latency_does_not_grow_with_requests(core, ns):
    core.create_namespaced_config_map(ns, {"metadata": {"name": "c"}})

    def batch():
        started = time.perf_counter()
        for _ in range(100):
            core.read_namespaced_config_map("c", ns)
        return time.perf_counter() - started
    first = batch()
    for _ in range(3):
        batch()
    assert batch() < max(first * 3, 0.5)


def test_runs_as_a_module():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "local.hostemu", "--port", str(port)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert "host emulator on" in proc.stdout.readline()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/namespaces/default", timeout=5) as r:
            assert json.loads(r.read())["status"]["phase"] == "Active"
    finally:
        proc.terminate()
        proc.wait(5)
