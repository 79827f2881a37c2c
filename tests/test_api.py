"""The VirtualClusterInstance API over HTTPS, as clients see it: lifecycle, metadata rules, patches,
lists, errors, hostile input, concurrency, the job queue and restarts. Every assertion goes through
a running local stack, started as `make run` starts it.

This module runs its own stack without the worker (WORKER_THREADS=0, SWEEP_SECONDS=0): the worker
writes status, which moves resourceVersions under the tests' feet, and consumes the job queue the
tests read. Each test gets a fresh project namespace (conftest's `namespace` fixture, which resolves
`stack` to this module's). The restart test starts and stops its own stack.
"""
import base64
import json
import re
import threading
import time
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml

from conftest import API, start_stack, stop_stack

GV = "management.loft.sh/v1"
KIND = "VirtualClusterInstance"
ALL_NAMESPACES = f"{API}/virtualclusterinstances"


NO_WORKER = {"WORKER_THREADS": "0", "SWEEP_SECONDS": "0"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    running = start_stack(tmp_path_factory.mktemp("api-stack"), env=NO_WORKER)
    yield running
    stop_stack(running)


# --- helpers -------------------------------------------------------------------------------------

def coll(namespace, query=""):
    return f"{API}/namespaces/{namespace}/virtualclusterinstances" + (f"?{query}" if query else "")


def item(namespace, name, query=""):
    return f"{coll(namespace)}/{name}" + (f"?{query}" if query else "")


def vci(name, spec=None, **metadata):
    return {"apiVersion": GV, "kind": KIND, "metadata": {"name": name, **metadata},
            "spec": {"displayName": f"display {name}"} if spec is None else spec}


def create(stack, namespace, name, spec=None, **metadata):
    answer = stack.request("POST", coll(namespace), vci(name, spec, **metadata))
    assert answer.status == 201, answer.body
    return answer.json()


def get(stack, namespace, name):
    answer = stack.request("GET", item(namespace, name))
    assert answer.status == 200, answer.body
    return answer.json()


def list_names(stack, path):
    answer = stack.request("GET", path)
    assert answer.status == 200, answer.body
    body = answer.json()
    assert body["kind"] == f"{KIND}List" and body["apiVersion"] == GV
    return [obj["metadata"]["name"] for obj in body["items"]]


def assert_status(answer, code, reason):
    """The answer is a Kubernetes Status of this code and reason; returns the Status."""
    assert answer.status == code, (answer.status, answer.body[:600])
    assert answer.headers.get("Content-Type", "").startswith("application/json"), answer.headers
    body = answer.json()
    assert body["kind"] == "Status" and body["apiVersion"] == "v1" and body["status"] == "Failure", body
    assert body["code"] == code and body["reason"] == reason, body
    assert isinstance(body["message"], str) and body["message"], body
    assert isinstance(body.get("details", {}), dict), body
    return body


def merge_patch(stack, namespace, name, patch, query=""):
    return stack.request("PATCH", item(namespace, name, query), patch, content_type="application/merge-patch+json")


def new_namespace(stack, label):
    """Another project (and so namespace) for tests that need two."""
    project = f"{label}-{uuid.uuid4().hex[:8]}"
    answer = stack.request("POST", f"{API}/projects", {"metadata": {"name": project}})
    assert answer.status == 201, answer.body
    return f"loft-p-{project}"


def token(data):
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


# --- create, read, formats -----------------------------------------------------------------------

def test_create_sets_server_metadata_and_get_returns_it(stack, namespace):
    created = create(stack, namespace, "alpha", labels={"app": "demo"})
    meta = created["metadata"]
    assert created["apiVersion"] == GV and created["kind"] == KIND
    assert meta["name"] == "alpha" and meta["namespace"] == namespace  # namespace filled in from the URL
    uuid.UUID(meta["uid"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", meta["creationTimestamp"])
    assert meta["resourceVersion"].isdigit() and meta["generation"] == 1
    assert meta["finalizers"] == ["loft.sh/cleanup"] and meta["labels"] == {"app": "demo"}
    assert "deletionTimestamp" not in meta and created["status"] == {}
    assert created["spec"]["displayName"] == "display alpha"
    assert get(stack, namespace, "alpha") == created


def test_client_values_for_server_fields_are_ignored_on_create(stack, namespace):
    body = vci("beta")
    body["metadata"].update(uid="11111111-1111-1111-1111-111111111111", creationTimestamp="2001-01-01T00:00:00Z",
                            resourceVersion="42", generation=99, deletionTimestamp="2001-01-01T00:00:00Z")
    body["status"] = {"phase": "Ready", "message": "forged"}
    answer = stack.request("POST", coll(namespace), body)
    assert answer.status == 201, answer.body
    meta = answer.json()["metadata"]
    assert meta["uid"] != "11111111-1111-1111-1111-111111111111"
    assert meta["creationTimestamp"] != "2001-01-01T00:00:00Z"
    assert meta["resourceVersion"] != "42" and meta["generation"] == 1
    assert "deletionTimestamp" not in meta
    assert answer.json()["status"] == {}
    assert get(stack, namespace, "beta") == answer.json()


def test_yaml_request_bodies_and_yaml_responses(stack, namespace):
    text = f"""\
apiVersion: {GV}
kind: {KIND}
metadata:
  name: from-yaml
  labels:
    source: yaml
spec:
  displayName: from yaml
"""
    created = stack.request("POST", coll(namespace), text, content_type="application/yaml")
    assert created.status == 201, created.body
    assert created.headers["Content-Type"].startswith("application/json")
    assert created.json()["metadata"]["labels"] == {"source": "yaml"}

    as_yaml = stack.request("GET", item(namespace, "from-yaml"), headers={"Accept": "application/yaml"})
    assert as_yaml.status == 200 and as_yaml.headers["Content-Type"].startswith("application/yaml")
    assert yaml.safe_load(as_yaml.body) == created.json()

    listed = stack.request("GET", coll(namespace), headers={"Accept": "application/yaml"})
    assert listed.status == 200 and listed.headers["Content-Type"].startswith("application/yaml")
    body = yaml.safe_load(listed.body)
    assert body["kind"] == f"{KIND}List" and body["apiVersion"] == GV
    assert [o["metadata"]["uid"] for o in body["items"]] == [created.json()["metadata"]["uid"]]

    # A YAML PUT of the retrieved YAML, edited.
    current = yaml.safe_load(as_yaml.body)
    current["spec"]["displayName"] = "edited in yaml"
    put = stack.request("PUT", item(namespace, "from-yaml"), yaml.safe_dump(current), content_type="application/yaml",
                        headers={"Accept": "application/yaml"})
    assert put.status == 200, put.body
    assert yaml.safe_load(put.body)["spec"]["displayName"] == "edited in yaml"

    # An unquoted YAML timestamp is text, as kube's YAML-to-JSON conversion makes it.
    stamped = text.replace("from-yaml", "stamped").replace("source: yaml", "source: yaml\n  annotations:\n    at: 2024-05-06T07:08:09Z")
    answer = stack.request("POST", coll(namespace), stamped, content_type="application/yaml")
    assert answer.status == 201, answer.body
    assert answer.json()["metadata"]["annotations"] == {"at": "2024-05-06T07:08:09Z"}


def test_list_is_a_virtual_cluster_instance_list(stack, namespace):
    empty = stack.request("GET", coll(namespace))
    assert empty.status == 200
    body = empty.json()
    assert body == {"apiVersion": GV, "kind": f"{KIND}List", "metadata": {"resourceVersion": body["metadata"]["resourceVersion"]}, "items": []}
    for name in ("b", "a", "c"):
        create(stack, namespace, name)
    assert list_names(stack, coll(namespace)) == ["a", "b", "c"]


# --- updates: resourceVersion, generation, conflicts ---------------------------------------------

def test_resource_version_changes_on_every_write_and_generation_only_on_spec(stack, namespace):
    created = create(stack, namespace, "gen")
    rv0, gen0 = created["metadata"]["resourceVersion"], created["metadata"]["generation"]

    labelled = merge_patch(stack, namespace, "gen", {"metadata": {"labels": {"a": "b"}}})
    assert labelled.status == 200, labelled.body
    rv1 = labelled.json()["metadata"]["resourceVersion"]
    assert rv1 != rv0 and int(rv1) > int(rv0)
    assert labelled.json()["metadata"]["generation"] == gen0

    specced = merge_patch(stack, namespace, "gen", {"spec": {"description": "now described"}})
    assert specced.status == 200
    rv2 = specced.json()["metadata"]["resourceVersion"]
    assert int(rv2) > int(rv1) and specced.json()["metadata"]["generation"] == gen0 + 1

    # A no-op patch writes nothing: same resourceVersion (kubectl prints "(no change)").
    same = merge_patch(stack, namespace, "gen", {"spec": {"description": "now described"}})
    assert same.status == 200 and same.json()["metadata"]["resourceVersion"] == rv2

    # A PUT changing the spec bumps generation again; one changing only annotations does not.
    current = get(stack, namespace, "gen")
    current["spec"]["displayName"] = "renamed"
    put = stack.request("PUT", item(namespace, "gen"), current)
    assert put.status == 200 and put.json()["metadata"]["generation"] == gen0 + 2
    current = put.json()
    current["metadata"]["annotations"] = {"note": "x"}
    put = stack.request("PUT", item(namespace, "gen"), current)
    assert put.status == 200 and put.json()["metadata"]["generation"] == gen0 + 2
    assert put.json()["metadata"]["resourceVersion"] != current["metadata"]["resourceVersion"]
    assert get(stack, namespace, "gen") == put.json()


def test_put_with_stale_resource_version_is_a_conflict(stack, namespace):
    created = create(stack, namespace, "stale")
    first = dict(created, spec={"displayName": "first"})
    assert stack.request("PUT", item(namespace, "stale"), first).status == 200
    after_first = get(stack, namespace, "stale")

    second = dict(created, spec={"displayName": "second"})  # still carries the creation's resourceVersion
    body = assert_status(stack.request("PUT", item(namespace, "stale"), second), 409, "Conflict")
    assert body["message"] == ('Operation cannot be fulfilled on virtualclusterinstances.management.loft.sh "stale": '
                               "the object has been modified; please apply your changes to the latest version and try again")
    assert body["details"]["name"] == "stale"
    assert get(stack, namespace, "stale") == after_first

    # Without a resourceVersion (or an empty one) the PUT is unconditional.
    for rv in (None, ""):
        body = dict(created, spec={"displayName": f"unconditional {rv!r}"}, metadata=dict(created["metadata"]))
        if rv is None:
            body["metadata"].pop("resourceVersion")
        else:
            body["metadata"]["resourceVersion"] = rv
        put = stack.request("PUT", item(namespace, "stale"), body)
        assert put.status == 200, put.body
        assert get(stack, namespace, "stale")["spec"]["displayName"] == f"unconditional {rv!r}"


def test_put_to_a_missing_object_is_not_found(stack, namespace):
    body = assert_status(stack.request("PUT", item(namespace, "ghost"), vci("ghost")), 404, "NotFound")
    assert body["details"]["name"] == "ghost"
    assert_status(stack.request("GET", item(namespace, "ghost")), 404, "NotFound")


def test_status_is_not_writable_through_the_main_resource(stack, namespace):
    created = create(stack, namespace, "stat")
    forged = dict(created, status={"phase": "Ready", "message": "forged"})
    put = stack.request("PUT", item(namespace, "stat"), forged)
    assert put.status == 200 and put.json()["status"] == {}
    patched = merge_patch(stack, namespace, "stat", {"status": {"phase": "Failed"}})
    assert patched.status == 200 and patched.json()["status"] == {}
    jp = stack.request("PATCH", item(namespace, "stat"), [{"op": "add", "path": "/status/phase", "value": "Ready"}],
                       content_type="application/json-patch+json")
    assert jp.status == 200 and jp.json()["status"] == {}
    assert get(stack, namespace, "stat") == created  # nothing was written at all


def test_server_fields_survive_put_and_patch(stack, namespace):
    created = create(stack, namespace, "keep")
    meta = created["metadata"]
    body = vci("keep", {"displayName": "changed"}, uid="forged", creationTimestamp="2001-01-01T00:00:00Z",
               generation=77, resourceVersion=meta["resourceVersion"])
    put = stack.request("PUT", item(namespace, "keep"), body)
    assert put.status == 200, put.body
    new = put.json()["metadata"]
    assert new["uid"] == meta["uid"] and new["creationTimestamp"] == meta["creationTimestamp"]
    assert new["generation"] == 2 and new["finalizers"] == ["loft.sh/cleanup"]
    patched = merge_patch(stack, namespace, "keep", {"metadata": {"uid": "x", "generation": 5, "deletionTimestamp": "2001-01-01T00:00:00Z"}})
    assert patched.status == 200, patched.body
    assert patched.json()["metadata"] == new  # nothing the client may change was changed


def test_namespace_name_api_version_and_kind_must_match(stack, namespace):
    other = assert_status(stack.request("POST", coll(namespace), vci("x", namespace="loft-p-elsewhere")), 400, "BadRequest")
    assert "namespace" in other["message"]
    assert_status(stack.request("POST", coll(namespace), dict(vci("x"), apiVersion="v1")), 400, "BadRequest")
    assert_status(stack.request("POST", coll(namespace), dict(vci("x"), apiVersion="management.loft.sh/v2")), 400, "BadRequest")
    assert_status(stack.request("POST", coll(namespace), dict(vci("x"), kind="Pod")), 400, "BadRequest")
    assert_status(stack.request("GET", item(namespace, "x")), 404, "NotFound")

    # Namespace and kind/apiVersion may be left out: filled in.
    created = stack.request("POST", coll(namespace), {"metadata": {"name": "x"}, "spec": {}})
    assert created.status == 201, created.body
    assert created.json()["metadata"]["namespace"] == namespace
    assert (created.json()["apiVersion"], created.json()["kind"]) == (GV, KIND)

    before = get(stack, namespace, "x")
    assert_status(stack.request("PUT", item(namespace, "x"), dict(before, metadata=dict(before["metadata"], name="y"))), 400, "BadRequest")
    assert_status(stack.request("PUT", item(namespace, "x"), dict(before, metadata=dict(before["metadata"], namespace="loft-p-other"))), 400, "BadRequest")
    assert_status(stack.request("PUT", item(namespace, "x"), dict(before, kind="Other")), 400, "BadRequest")
    assert_status(merge_patch(stack, namespace, "x", {"metadata": {"name": "renamed"}}), 400, "BadRequest")
    assert_status(merge_patch(stack, namespace, "x", {"apiVersion": "v1"}), 400, "BadRequest")
    assert get(stack, namespace, "x") == before


@pytest.mark.parametrize("name", ["Upper", "under_score", "-lead", "trail-", "dots.in.name", "a" * 64, "space name", "ünï"])
def test_names_must_be_dns_1123_labels(stack, namespace, name):
    body = assert_status(stack.request("POST", coll(namespace), vci(name)), 422, "Invalid")
    assert [c["field"] for c in body["details"]["causes"]] == ["metadata.name"]
    assert body["details"]["kind"] == KIND
    assert list_names(stack, coll(namespace)) == []


def test_missing_name_is_invalid_and_generate_name_works(stack, namespace):
    body = assert_status(stack.request("POST", coll(namespace), {"metadata": {}, "spec": {}}), 422, "Invalid")
    assert body["details"]["causes"][0]["field"] == "metadata.name"
    generated = stack.request("POST", coll(namespace), {"metadata": {"generateName": "gen-"}, "spec": {}})
    assert generated.status == 201, generated.body
    assert re.fullmatch(r"gen-[a-z0-9]{5}", generated.json()["metadata"]["name"])


def test_invalid_names_every_bad_field(stack, namespace):
    body = assert_status(stack.request("POST", coll(namespace), vci("Bad_Name", labels={"bad key!": "v", "ok": "bad value!"})), 422, "Invalid")
    fields = sorted(c["field"] for c in body["details"]["causes"])
    assert fields == ["metadata.labels", "metadata.labels.ok", "metadata.name"], body
    assert body["message"].startswith('VirtualClusterInstance.management.loft.sh "Bad_Name" is invalid: ')

    body = assert_status(stack.request("POST", coll(namespace), vci("typed", {"displayName": 5, "networkPeer": "yes", "owner": "me"})), 422, "Invalid")
    fields = sorted(c["field"] for c in body["details"]["causes"])
    assert fields == ["spec.displayName", "spec.networkPeer", "spec.owner"], body
    assert all(c["reason"] and c["message"] for c in body["details"]["causes"])
    assert list_names(stack, coll(namespace)) == []


# --- field validation and dry run ----------------------------------------------------------------

def test_unknown_fields_warn_by_default_and_fail_under_strict(stack, namespace):
    body = vci("fields", {"displayName": "d", "bogus": 1})
    body["extra"] = True
    strict = assert_status(stack.request("POST", coll(namespace, "fieldValidation=Strict"), body), 400, "BadRequest")
    assert 'unknown field "spec.bogus"' in strict["message"] and 'unknown field "extra"' in strict["message"]
    assert_status(stack.request("GET", item(namespace, "fields")), 404, "NotFound")

    warned = stack.request("POST", coll(namespace), body)
    assert warned.status == 201, warned.body
    warning = warned.headers.get("Warning", "")
    assert warning.startswith("299 - ") and 'unknown field \\"spec.bogus\\"' in warning, warned.headers
    assert "bogus" not in warned.json()["spec"] and "extra" not in warned.json()
    assert "bogus" not in get(stack, namespace, "fields")["spec"]

    ignored = stack.request("POST", coll(namespace, "fieldValidation=Ignore"), dict(body, metadata={"name": "fields2"}))
    assert ignored.status == 201 and "Warning" not in ignored.headers

    before = get(stack, namespace, "fields")
    assert_status(merge_patch(stack, namespace, "fields", {"spec": {"bogus": 2}}, "fieldValidation=Strict"), 400, "BadRequest")
    assert_status(stack.request("PUT", item(namespace, "fields", "fieldValidation=Strict"), dict(before, spec={"nope": 1})), 400, "BadRequest")
    assert get(stack, namespace, "fields") == before
    assert_status(stack.request("POST", coll(namespace, "fieldValidation=Sometimes"), vci("fv")), 400, "BadRequest")


def test_dry_run_validates_without_persisting(stack, namespace):
    dry = stack.request("POST", coll(namespace, "dryRun=All"), vci("dry"))
    assert dry.status == 201, dry.body
    assert dry.json()["metadata"]["uid"] and dry.json()["metadata"]["name"] == "dry"
    assert_status(stack.request("GET", item(namespace, "dry")), 404, "NotFound")
    assert list_names(stack, coll(namespace)) == []
    assert_status(stack.request("POST", coll(namespace, "dryRun=All"), vci("Bad")), 422, "Invalid")

    before = create(stack, namespace, "wet")
    patched = merge_patch(stack, namespace, "wet", {"spec": {"displayName": "dry"}}, "dryRun=All")
    assert patched.status == 200 and patched.json()["spec"]["displayName"] == "dry"
    put = stack.request("PUT", item(namespace, "wet", "dryRun=All"), dict(before, spec={"displayName": "dry put"}))
    assert put.status == 200 and put.json()["spec"]["displayName"] == "dry put"
    deleted = stack.request("DELETE", item(namespace, "wet", "dryRun=All"))
    assert deleted.status == 200 and deleted.json()["metadata"]["deletionTimestamp"]
    deleted = stack.request("DELETE", item(namespace, "wet"), {"dryRun": ["All"]})
    assert deleted.status == 200 and deleted.json()["metadata"]["deletionTimestamp"]
    assert get(stack, namespace, "wet") == before
    assert_status(stack.request("POST", coll(namespace, "dryRun=Some"), vci("dry2")), 400, "BadRequest")


# --- patches -------------------------------------------------------------------------------------

def test_json_patch_of_the_seed_on_a_fresh_object(stack, namespace):
    create(stack, namespace, "jp")
    seed_patch = '[{"op": "add", "path": "/metadata/annotations/my-annotation", "value": "my-value"}]'
    answer = stack.request("PATCH", item(namespace, "jp"), seed_patch, content_type="application/json-patch+json")
    assert answer.status == 200, answer.body
    assert answer.json()["metadata"]["annotations"] == {"my-annotation": "my-value"}
    # Labels likewise, and the other operations.
    ops = [{"op": "add", "path": "/metadata/labels/team", "value": "core"},
           {"op": "replace", "path": "/spec/displayName", "value": "patched"},
           {"op": "test", "path": "/metadata/annotations/my-annotation", "value": "my-value"},
           {"op": "copy", "from": "/spec/displayName", "path": "/spec/description"},
           {"op": "remove", "path": "/metadata/annotations/my-annotation"}]
    answer = stack.request("PATCH", item(namespace, "jp"), ops, content_type="application/json-patch+json")
    assert answer.status == 200, answer.body
    obj = answer.json()
    assert obj["metadata"]["labels"] == {"team": "core"} and "annotations" not in obj["metadata"]
    assert obj["spec"]["displayName"] == obj["spec"]["description"] == "patched"
    assert get(stack, namespace, "jp") == obj

    # A failing test op or a bad path changes nothing.
    for bad in ([{"op": "test", "path": "/spec/displayName", "value": "other"}, {"op": "replace", "path": "/spec/displayName", "value": "no"}],
                [{"op": "remove", "path": "/spec/nothing/here"}],
                [{"op": "replace", "path": "/metadata/labels/absent", "value": "x"}]):
        assert_status(stack.request("PATCH", item(namespace, "jp"), bad, content_type="application/json-patch+json"), 422, "Invalid")
    for malformed in ('[{"op": "jump", "path": "/spec"}]', '{"op": "add"}', '[{"path": "/spec"}]', "[", '[{"op": "add", "path": "nope", "value": 1}]',
                      '[{"op": "add", "path": "/a/~2", "value": 1}]', '[{"op": "move", "from": "x", "path": "/spec/a"}]',
                      '[{"op": "test", "path": "/spec"}]', '[{"op": "add", "path": 5, "value": 1}]', '[["add"]]'):
        answer = stack.request("PATCH", item(namespace, "jp"), malformed, content_type="application/json-patch+json")
        assert answer.status in (400, 422), (malformed, answer.status, answer.body)
        assert_status(answer, answer.status, "BadRequest" if answer.status == 400 else "Invalid")
    assert get(stack, namespace, "jp") == obj


@pytest.mark.parametrize("content_type", ["application/merge-patch+json", "application/strategic-merge-patch+json"])
def test_merge_patch_and_strategic_merge_patch(stack, namespace, content_type):
    create(stack, namespace, "mp", labels={"keep": "1", "drop": "2"}, spec={"displayName": "d", "owner": {"user": "u1"}, "description": "x"})
    patch = {"metadata": {"labels": {"drop": None, "add": "3"}}, "spec": {"description": None, "owner": {"team": "t1"}}}
    answer = stack.request("PATCH", item(namespace, "mp"), patch, content_type=content_type)
    assert answer.status == 200, answer.body
    obj = answer.json()
    assert obj["metadata"]["labels"] == {"keep": "1", "add": "3"}
    assert "description" not in obj["spec"] and obj["spec"]["owner"] == {"user": "u1", "team": "t1"}
    assert get(stack, namespace, "mp") == obj
    for bad in ("[1, 2]", '"text"', "{", ""):
        assert_status(stack.request("PATCH", item(namespace, "mp"), bad, content_type=content_type), 400, "BadRequest")
    assert get(stack, namespace, "mp") == obj


@pytest.mark.parametrize("content_type", ["application/json", "application/yaml", "text/plain", "application/apply-patch+yaml", None])
def test_other_patch_types_are_unsupported(stack, namespace, content_type):
    before = create(stack, namespace, "pt")
    headers = {"Content-Type": content_type} if content_type else {}
    answer = stack.request("PATCH", item(namespace, "pt"), b'{"spec": {"displayName": "x"}}', headers=headers)
    if content_type is None:  # urllib sends form encoding for a body without a type, as curl --data does
        assert answer.status == 415
    assert_status(answer, 415, "UnsupportedMediaType")
    assert get(stack, namespace, "pt") == before


# --- lists: pagination, selectors, all namespaces ------------------------------------------------

def _pages(stack, path, limit):
    """Every page of a list with ?limit; returns (pages of names, continue tokens)."""
    pages, tokens, token_ = [], [], None
    while True:
        query = f"limit={limit}" + (f"&continue={urllib.parse.quote(token_)}" if token_ else "")
        answer = stack.request("GET", path + ("&" if "?" in path else "?") + query)
        assert answer.status == 200, answer.body
        body = answer.json()
        pages.append([(o["metadata"].get("namespace"), o["metadata"]["name"]) for o in body["items"]])
        token_ = body["metadata"].get("continue")
        if not token_:
            return pages, tokens
        tokens.append(token_)
        assert len(pages) < 50


def test_pagination_with_limit_and_continue(stack, namespace):
    names = [f"p{i:02d}" for i in range(7)]
    for name in reversed(names):
        create(stack, namespace, name)
    pages, tokens = _pages(stack, coll(namespace), 3)
    assert [len(p) for p in pages][:3] == [3, 3, 1] and all(p == [] for p in pages[3:])
    assert [n for page in pages for _, n in page] == names
    assert tokens and all(re.fullmatch(r"[A-Za-z0-9_-]+", t) for t in tokens)  # opaque, URL-safe
    assert list_names(stack, coll(namespace, "limit=0")) == names
    assert list_names(stack, coll(namespace, "limit=100")) == names

    # The token is opaque but client-held: anything malformed is a 400, never a storage error.
    bad_tokens = ["not-a-token!", "e30", token({"k": "x", "rv": "1"}), token({"k": {}, "rv": "1"}),
                  token({"k": {"sk": {"S": ""}}, "rv": "1"}), token({"k": {"sk": {"S": "x" * 2000}}, "rv": "1"}),
                  token({"k": {"sk": {"N": "1"}}, "rv": "1"}), token({"k": {"sk": {"S": "p01"}}, "rv": "abc"}),
                  token([1, 2]), token({"k": {"sk": "p01"}, "rv": "1"}), base64.urlsafe_b64encode(b"\xff\xfe").decode()]
    for bad in bad_tokens:
        assert_status(stack.request("GET", coll(namespace, f"limit=2&continue={urllib.parse.quote(bad)}")), 400, "BadRequest")
    # A forged key only moves where the page starts (it is rebuilt within this list).
    forged = token({"k": {"pk": {"S": "virtualclusterinstances#elsewhere"}, "sk": {"S": "p04"}}, "rv": "5"})
    answer = stack.request("GET", coll(namespace, f"limit=10&continue={forged}"))
    assert answer.status == 200 and [o["metadata"]["name"] for o in answer.json()["items"]] == names[5:]

    for bad_limit in ("-1", "abc", "1.5"):
        assert_status(stack.request("GET", coll(namespace, f"limit={bad_limit}")), 400, "BadRequest")


def test_label_selectors(stack, namespace):
    create(stack, namespace, "a", labels={"env": "prod", "tier": "web"})
    create(stack, namespace, "b", labels={"env": "dev", "tier": "web"})
    create(stack, namespace, "c", labels={"env": "prod"})
    create(stack, namespace, "d")
    cases = {
        "env=prod": ["a", "c"], "env==prod": ["a", "c"], "env!=prod": ["b", "d"],
        "env in (prod,dev)": ["a", "b", "c"], "env in (dev)": ["b"], "env notin (prod)": ["b", "d"],
        "tier": ["a", "b"], "!tier": ["c", "d"], "env=prod,tier=web": ["a"], "env=prod,!tier": ["c"],
        "env notin (prod,dev),!tier": ["d"], "missing=x": [], "": ["a", "b", "c", "d"],
    }
    for selector, expected in cases.items():
        names = list_names(stack, coll(namespace, "labelSelector=" + urllib.parse.quote(selector)))
        assert names == expected, (selector, names)
    # Selectors combine with pagination: pages hold only matches.
    pages, _ = _pages(stack, coll(namespace, "labelSelector=env%3Dprod"), 1)
    assert [n for page in pages for _, n in page] == ["a", "c"]
    for bad in ("env in prod", "=x", "a b", "env in (a", "!env=x", "env=a=b"):
        assert_status(stack.request("GET", coll(namespace, "labelSelector=" + urllib.parse.quote(bad))), 400, "BadRequest")


def test_field_selectors(stack, namespace):
    for name in ("one", "two", "three"):
        create(stack, namespace, name)
    assert list_names(stack, coll(namespace, "fieldSelector=metadata.name%3Dtwo")) == ["two"]
    assert list_names(stack, coll(namespace, "fieldSelector=metadata.name%3D%3Dtwo")) == ["two"]
    assert list_names(stack, coll(namespace, "fieldSelector=metadata.name!%3Dtwo")) == ["one", "three"]
    assert list_names(stack, coll(namespace, f"fieldSelector=metadata.namespace%3D{namespace}")) == ["one", "three", "two"]
    assert list_names(stack, coll(namespace, "fieldSelector=metadata.name%3Dnone")) == []
    for bad in ("spec.displayName%3Dx", "metadata.name", "garbage"):
        assert_status(stack.request("GET", coll(namespace, f"fieldSelector={bad}")), 400, "BadRequest")


def test_list_across_all_namespaces(stack, namespace):
    second = new_namespace(stack, "second")
    run = uuid.uuid4().hex[:12]
    create(stack, namespace, "shared", labels={"run": run})
    create(stack, second, "shared", labels={"run": run})
    create(stack, second, "other", labels={"run": run})
    create(stack, namespace, "unlabelled")
    answer = stack.request("GET", f"{ALL_NAMESPACES}?labelSelector=run%3D{run}")
    assert answer.status == 200, answer.body
    body = answer.json()
    assert body["kind"] == f"{KIND}List"
    found = sorted((o["metadata"]["namespace"], o["metadata"]["name"]) for o in body["items"])
    assert found == sorted([(namespace, "shared"), (second, "shared"), (second, "other")])
    pages, _ = _pages(stack, f"{ALL_NAMESPACES}?labelSelector=run%3D{run}", 2)
    assert sorted(entry for page in pages for entry in page) == found
    by_name = stack.request("GET", f"{ALL_NAMESPACES}?fieldSelector=metadata.namespace%3D{second}")
    assert sorted(o["metadata"]["name"] for o in by_name.json()["items"]) == ["other", "shared"]
    # A namespaced kind has no items outside a namespace.
    assert_status(stack.request("GET", f"{ALL_NAMESPACES}/shared"), 404, "NotFound")
    assert_status(stack.request("POST", ALL_NAMESPACES, vci("nowhere")), 405, "MethodNotAllowed")


# --- delete --------------------------------------------------------------------------------------

def test_delete_marks_the_object_and_finalizers_keep_it(stack, namespace):
    # An extra finalizer of our own keeps the object regardless of how fast a worker cleans up.
    created = create(stack, namespace, "doomed", finalizers=["example.com/hold"])
    assert created["metadata"]["finalizers"] == ["example.com/hold", "loft.sh/cleanup"]
    deleted = stack.request("DELETE", item(namespace, "doomed"), {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"})
    assert deleted.status == 200, deleted.body
    meta = deleted.json()["metadata"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", meta["deletionTimestamp"])
    assert meta["uid"] == created["metadata"]["uid"] and meta["resourceVersion"] != created["metadata"]["resourceVersion"]
    still = get(stack, namespace, "doomed")
    assert still["metadata"]["deletionTimestamp"] == meta["deletionTimestamp"]
    assert "doomed" in list_names(stack, coll(namespace))
    # Deleting again is harmless; the deletion cannot be undone by a write.
    again = stack.request("DELETE", item(namespace, "doomed"))
    assert again.status == 200 and again.json()["metadata"]["deletionTimestamp"] == meta["deletionTimestamp"]
    undo = merge_patch(stack, namespace, "doomed", {"metadata": {"deletionTimestamp": None}})
    assert undo.status == 200 and undo.json()["metadata"]["deletionTimestamp"] == meta["deletionTimestamp"]
    # The last finalizer gone (what the worker does after cleanup), the object is gone.
    current = get(stack, namespace, "doomed")
    removed = merge_patch(stack, namespace, "doomed", {"metadata": {"finalizers": None}})
    assert removed.status == 200, removed.body
    assert_status(stack.request("GET", item(namespace, "doomed")), 404, "NotFound")
    assert "doomed" not in list_names(stack, coll(namespace))
    assert current["metadata"]["deletionTimestamp"]
    # The name is free again.
    assert create(stack, namespace, "doomed")["metadata"]["uid"] != created["metadata"]["uid"]


def test_delete_errors(stack, namespace):
    body = assert_status(stack.request("DELETE", item(namespace, "missing")), 404, "NotFound")
    assert body["details"]["name"] == "missing"
    before = create(stack, namespace, "guarded")
    assert_status(stack.request("DELETE", item(namespace, "guarded"), {"preconditions": {"uid": "not-the-uid"}}), 409, "Conflict")
    assert_status(stack.request("DELETE", item(namespace, "guarded"), {"preconditions": {"resourceVersion": "1"}}), 409, "Conflict")
    assert_status(stack.request("DELETE", item(namespace, "guarded"), {"preconditions": "x"}), 400, "BadRequest")
    assert_status(stack.request("DELETE", item(namespace, "guarded"), ["x"]), 400, "BadRequest")
    assert_status(stack.request("DELETE", item(namespace, "guarded"), "{", content_type="application/json"), 400, "BadRequest")
    assert get(stack, namespace, "guarded") == before
    ok = stack.request("DELETE", item(namespace, "guarded"), {"preconditions": {"uid": before["metadata"]["uid"]}})
    assert ok.status == 200 and ok.json()["metadata"]["deletionTimestamp"]


# --- errors --------------------------------------------------------------------------------------

def test_not_found_and_already_exists(stack, namespace):
    body = assert_status(stack.request("GET", item(namespace, "nope")), 404, "NotFound")
    assert body["message"] == 'virtualclusterinstances.management.loft.sh "nope" not found'
    assert body["details"]["name"] == "nope" and body["details"]["kind"] == "virtualclusterinstances"
    assert body["details"]["group"] == "management.loft.sh"
    first = create(stack, namespace, "twice")
    body = assert_status(stack.request("POST", coll(namespace), vci("twice", {"displayName": "second"})), 409, "AlreadyExists")
    assert body["message"] == 'virtualclusterinstances.management.loft.sh "twice" already exists'
    assert body["details"]["name"] == "twice"
    assert get(stack, namespace, "twice") == first
    assert_status(stack.request("GET", f"{API}/namespaces/{namespace}/nonsense"), 404, "NotFound")
    assert_status(stack.request("GET", "/kubernetes/management/apis/other.group/v1/things"), 404, "NotFound")


def test_malformed_bodies_are_bad_requests(stack, namespace):
    before = create(stack, namespace, "target")
    cases = [
        ("POST", coll(namespace), b'{"metadata": {"name": ', "application/json"),
        ("POST", coll(namespace), b"[1, 2, 3]", "application/json"),
        ("POST", coll(namespace), b'"just a string"', "application/json"),
        ("POST", coll(namespace), b"null", "application/json"),
        ("POST", coll(namespace), b"", "application/json"),
        ("POST", coll(namespace), b"\xff\xfe\x00garbage", "application/json"),
        ("POST", coll(namespace), b'{"a": NaN}', "application/json"),
        ("POST", coll(namespace), b"metadata: {name: [unclosed", "application/yaml"),
        ("POST", coll(namespace), b"key: value\n  bad indent: here\n", "application/yaml"),
        ("POST", coll(namespace), b"--- a\n--- b\n", "application/yaml"),
        ("POST", coll(namespace), b"- a list\n", "application/yaml"),
        ("POST", coll(namespace), b"metadata:\n  name: x\n  creationTimestamp: 2023-99-99\n", "application/yaml"),
        ("POST", coll(namespace), b"metadata: !!python/object/apply:os.system ['true']\n", "application/yaml"),
        ("POST", coll(namespace), b"spec:\n  template:\n    bin: !!binary aGVsbG8=\n", "application/yaml"),
        ("POST", coll(namespace), b"spec:\n  template:\n    n: .nan\n", "application/yaml"),
        ("PUT", item(namespace, "target"), b"{not json", "application/json"),
        ("PUT", item(namespace, "target"), b"metadata: [", "application/yaml"),
        ("PUT", item(namespace, "target"), b"[]", "application/json"),
    ]
    for method, path, raw, content_type in cases:
        assert_status(stack.request(method, path, raw, content_type=content_type), 400, "BadRequest")
    assert get(stack, namespace, "target") == before
    assert list_names(stack, coll(namespace)) == ["target"]


def test_wrong_types_in_the_body_are_invalid(stack, namespace):
    before = create(stack, namespace, "typed")
    for body in ({"metadata": "x"}, {"metadata": {"name": "typed", "labels": ["a"]}}, {"metadata": {"name": "typed", "labels": {"a": 1}}},
                 {"metadata": {"name": "typed"}, "spec": []}, {"metadata": {"name": "typed"}, "spec": {"access": {"verbs": "get"}}}):
        answer = stack.request("PUT", item(namespace, "typed"), body)
        assert answer.status == 422, (body, answer.body)
        assert assert_status(answer, 422, "Invalid")["details"]["causes"]
    assert get(stack, namespace, "typed") == before


def test_unauthorized_without_a_valid_key(stack, namespace):
    before = create(stack, namespace, "secured")
    for headers in ({}, {"Authorization": "Bearer wrong-key"}, {"Authorization": "Bearer "}, {"Authorization": f"Basic {stack.access_key}"},
                    {"Authorization": stack.access_key}, {"Authorization": f"Bearer {stack.access_key}x"}):
        for method, path, body in (("GET", item(namespace, "secured"), None), ("GET", coll(namespace), None),
                                   ("POST", coll(namespace), vci("intruder")), ("DELETE", item(namespace, "secured"), None),
                                   ("PATCH", item(namespace, "secured"), {"spec": {"displayName": "owned"}}),
                                   ("GET", ALL_NAMESPACES, None)):
            answer = stack.request(method, path, body, headers=headers, key=False,
                                   content_type="application/merge-patch+json" if method == "PATCH" else None)
            assert_status(answer, 401, "Unauthorized")
    assert get(stack, namespace, "secured") == before
    assert list_names(stack, coll(namespace)) == ["secured"]


def test_unsupported_media_types(stack, namespace):
    for content_type in ("text/plain", "application/xml", "application/x-www-form-urlencoded", "application/vnd.kubernetes.protobuf"):
        assert_status(stack.request("POST", coll(namespace), json.dumps(vci("media")), content_type=content_type), 415, "UnsupportedMediaType")
    assert list_names(stack, coll(namespace)) == []
    # JSON with parameters and YAML aliases are fine.
    answer = stack.request("POST", coll(namespace), json.dumps(vci("media")), content_type="application/json; charset=utf-8")
    assert answer.status == 201, answer.body


def test_request_bodies_over_one_mebibyte_are_refused(stack, namespace):
    before = create(stack, namespace, "small")
    big = "x" * (1024 * 1024 + 1)
    assert_status(stack.request("POST", coll(namespace), vci("big", {"description": big})), 413, "RequestEntityTooLarge")
    assert_status(stack.request("PUT", item(namespace, "small"), vci("small", {"description": big})), 413, "RequestEntityTooLarge")
    assert_status(merge_patch(stack, namespace, "small", {"spec": {"description": big}}), 413, "RequestEntityTooLarge")
    assert_status(stack.request("POST", coll(namespace), f"spec:\n  description: {big}\n", content_type="application/yaml"), 413, "RequestEntityTooLarge")
    # Under the request limit but over what one stored object may hold: refused too, not a storage error.
    large = "y" * 600_000
    assert_status(stack.request("POST", coll(namespace), vci("large", {"description": large})), 413, "RequestEntityTooLarge")
    assert_status(merge_patch(stack, namespace, "small", {"spec": {"description": large}}), 413, "RequestEntityTooLarge")
    assert get(stack, namespace, "small") == before
    assert list_names(stack, coll(namespace)) == ["small"]


def test_method_not_allowed(stack, namespace):
    before = create(stack, namespace, "fixed")
    assert_status(stack.request("POST", item(namespace, "fixed"), vci("fixed")), 405, "MethodNotAllowed")
    for method in ("PUT", "PATCH", "DELETE"):
        assert_status(stack.request(method, coll(namespace), vci("fixed"), content_type="application/merge-patch+json" if method == "PATCH" else None),
                      405, "MethodNotAllowed")
    assert get(stack, namespace, "fixed") == before


# --- hostile input: never a 5xx, nothing changes ------------------------------------------------

def test_billion_laughs_is_refused_quickly(stack, namespace):
    levels = ['    a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i, name in enumerate("bcdefghi"):
        prev = "abcdefghi"[i]
        levels.append(f"    {name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    document = f"apiVersion: {GV}\nkind: {KIND}\nmetadata:\n  name: lol\nspec:\n  template:\n" + "\n".join(levels) + "\n"
    started = time.monotonic()
    assert_status(stack.request("POST", coll(namespace), document, content_type="application/yaml"), 400, "BadRequest")
    assert time.monotonic() - started < 5
    # Many aliases, and a document that refers to itself.
    many = "spec:\n  template:\n    a: &x y\n    l: [" + ",".join(["*x"] * 500) + "]\n"
    assert_status(stack.request("POST", coll(namespace), many, content_type="application/yaml"), 400, "BadRequest")
    recursive = "metadata:\n  name: loop\nspec:\n  template: &t\n    self: *t\n"
    assert_status(stack.request("POST", coll(namespace), recursive, content_type="application/yaml"), 400, "BadRequest")
    assert list_names(stack, coll(namespace)) == []
    # The server is still fine.
    assert create(stack, namespace, "after")["metadata"]["name"] == "after"


def test_deeply_nested_bodies_are_refused(stack, namespace):
    before = create(stack, namespace, "deep")
    for depth in (150, 5000, 200_000):
        nested = "[" * depth + "]" * depth
        raw = '{"metadata": {"name": "deep2"}, "spec": {"template": {"x": ' + nested + "}}}"
        assert_status(stack.request("POST", coll(namespace), raw, content_type="application/json"), 400, "BadRequest")
        patch = '{"spec": {"template": {"x": ' + nested + "}}}"
        assert_status(stack.request("PATCH", item(namespace, "deep"), patch, content_type="application/merge-patch+json"), 400, "BadRequest")
        json_patch = '[{"op": "add", "path": "/spec/template", "value": ' + nested + "}]"
        assert_status(stack.request("PATCH", item(namespace, "deep"), json_patch, content_type="application/json-patch+json"), 400, "BadRequest")
    deep_yaml = "spec:\n  template:\n    x: " + "[" * 5000 + "]" * 5000 + "\n"
    assert_status(stack.request("POST", coll(namespace), deep_yaml, content_type="application/yaml"), 400, "BadRequest")
    # Moderate nesting is fine (here in an unknown field: pruned, with a warning).
    ok = '{"metadata": {"name": "nested"}, "spec": {"extra": {"x": ' + "[" * 30 + "]" * 30 + "}}}"
    answer = stack.request("POST", coll(namespace), ok, content_type="application/json")
    assert answer.status == 201 and "spec.extra" in answer.headers["Warning"]
    assert get(stack, namespace, "deep") == before


def test_odd_requests_never_produce_server_errors(stack, namespace):
    before = create(stack, namespace, "steady")
    weird_names = ["%C3%A9t%C3%A9", "x" * 300, "x" * 2000, "%ED%A0%80", "..", "a%2Fb", "%00", "UPPER"]
    requests = []
    for name in weird_names:
        requests += [("GET", item(namespace, name), None, None), ("DELETE", item(namespace, name), None, None),
                     ("PUT", item(namespace, name), vci("steady"), None),
                     ("PATCH", item(namespace, name), {"spec": {}}, "application/merge-patch+json")]
    for ns in ("loft-p-" + "n" * 2100, "UPPER", "n%C3%A9", "%ED%A0%80", "loft-p-" + "n" * 70):
        requests += [("GET", coll(ns), None, None), ("POST", coll(ns), vci("x"), None), ("GET", item(ns, "steady"), None, None)]
    requests += [
        ("GET", coll(namespace, "limit=99999999999999999999999"), None, None),
        ("GET", coll(namespace, "limit=1&continue="), None, None),
        ("GET", coll(namespace, "labelSelector=" + urllib.parse.quote("a in (" + ",".join("v" * 5 for _ in range(2000)) + ")")), None, None),
        ("GET", coll(namespace, "labelSelector=%00"), None, None),
        ("GET", coll(namespace, "watch=true&resourceVersion=abc&timeoutSeconds=1"), None, None),
        ("GET", coll(namespace, "watch=true&timeoutSeconds=x"), None, None),
        ("PUT", item(namespace, "steady"), {"metadata": {"name": "steady", "resourceVersion": 5}, "spec": {}}, None),
        ("PUT", item(namespace, "steady"), {"metadata": {"name": "steady", "resourceVersion": "not-a-number"}, "spec": {}}, None),
        ("PUT", item(namespace, "steady"), {"metadata": {"name": "steady", "resourceVersion": ["1"]}, "spec": {}}, None),
        ("PUT", item(namespace, "steady"), {"metadata": {"name": "steady", "finalizers": "x"}, "spec": {}}, None),
        ("PUT", item(namespace, "steady"), {"metadata": {"name": "steady", "creationTimestamp": {"a": 1}}, "spec": {}}, None),
        ("PUT", item(namespace, "steady"), {"metadata": {"name": "steady"}, "spec": {"templateRef": {"name": 5}}}, None),
        ("PUT", item(namespace, "steady"), {"metadata": {"name": "steady"}, "spec": {"parameters": "a: [\n"}}, None),
        ("PUT", item(namespace, "steady"), {"metadata": {"name": "steady"}, "spec": {"templateRef": {"name": "no-such-template"}}}, None),
        ("PUT", item(namespace, "steady"), {"metadata": {"name": "steady"}, "spec": {"clusterRef": {"cluster": "nowhere"}}}, None),
        ("PUT", item(namespace, "steady"), {"metadata": {"name": "steady"}, "spec": {"template": {"a": 1}, "templateRef": {"name": "t"}}}, None),
        ("PUT", item(namespace, "steady"), {"metadata": {"name": "steady"}, "status": "nope", "spec": {}}, None),
        ("PATCH", item(namespace, "steady"), [{"op": "replace", "path": "", "value": [1]}], "application/json-patch+json"),
        ("PATCH", item(namespace, "steady"), [{"op": "replace", "path": "", "value": None}], "application/json-patch+json"),
        ("PATCH", item(namespace, "steady"), [{"op": "remove", "path": "/metadata"}], "application/json-patch+json"),
        ("PATCH", item(namespace, "steady"), [{"op": "remove", "path": "/spec"}, {"op": "add", "path": "/spec", "value": "s"}], "application/json-patch+json"),
        ("PATCH", item(namespace, "steady"), [{"op": "add", "path": "/metadata/labels/a~1b", "value": 1}], "application/json-patch+json"),
        ("PATCH", item(namespace, "steady"), [{"op": "move", "from": "/spec", "path": "/spec/x"}], "application/json-patch+json"),
        ("PATCH", item(namespace, "steady"), [{"op": "add", "path": "/metadata/labels/-", "value": "x"}], "application/json-patch+json"),
        ("PATCH", item(namespace, "steady"), [1, "two", None], "application/json-patch+json"),
        ("PATCH", item(namespace, "steady"), {"metadata": None}, "application/merge-patch+json"),
        ("PATCH", item(namespace, "steady"), {"metadata": "x"}, "application/merge-patch+json"),
        ("PATCH", item(namespace, "steady"), {"metadata": {"name": None}}, "application/merge-patch+json"),
        ("PATCH", item(namespace, "steady"), {"metadata": {"namespace": None, "labels": {"": "x"}}}, "application/merge-patch+json"),
        ("PATCH", item(namespace, "steady"), {"spec": None, "kind": None, "apiVersion": None, "metadata": {"labels": {"k": "v" * 64}}}, "application/merge-patch+json"),
        ("PATCH", item(namespace, "steady"), {"a" * 1000: {"b": [{"c": "d"}] * 1000}}, "application/merge-patch+json"),
        ("PATCH", item(namespace, "steady"), {"spec": {"template": {"1": {"2": ["x"] * 100_000}}}}, "application/merge-patch+json"),
        ("DELETE", item(namespace, "steady"), {"preconditions": {"uid": ["x"]}, "dryRun": "maybe"}, None),
        ("DELETE", item(namespace, "steady"), b"\xff", "application/json"),
        ("DELETE", item(namespace, "steady"), b"x: [", "application/yaml"),
        ("POST", coll(namespace), b"\xef\xbb\xbf" + json.dumps(vci("bom")).encode(), "application/json"),
        ("POST", coll(namespace), json.dumps(vci("big-int", {"displayName": 0})).replace("0}", "1" * 5000 + "}"), "application/json"),
        ("POST", coll(namespace), "1" * 5000, "application/json"),
        ("POST", coll(namespace), "metadata:\n  name: k\n  labels:\n    ? [a]\n    : b\n", "application/yaml"),
        ("POST", coll(namespace), "metadata:\n  name: k\n  labels:\n    1: 2\n    true: null\n", "application/yaml"),
        ("POST", coll(namespace), "%YAML 9.9\n---\na: b\n", "application/yaml"),
        ("POST", coll(namespace), "a: !!set {x, y}\n", "application/yaml"),
        ("POST", coll(namespace), "a: !!omap [b: 1]\n", "application/yaml"),
        ("POST", coll(namespace), "&a a: b\n*a : c\n", "application/yaml"),
        ("POST", coll(namespace), "\t\x00\x01", "application/yaml"),
    ]
    for method, path, body, content_type in requests:
        answer = stack.request(method, path, body, content_type=content_type)
        assert answer.status < 500, (method, path[:200], str(body)[:200], answer.status, answer.body[:500])
        if answer.status >= 400:
            assert_status(answer, answer.status, answer.json()["reason"])
    after = get(stack, namespace, "steady")
    # Writes that were accepted may have changed the object; the failed ones changed nothing:
    # so re-check on a fresh object with only the failing requests.
    assert after["metadata"]["uid"] == before["metadata"]["uid"]


def test_failed_writes_change_nothing(stack, namespace):
    before = create(stack, namespace, "untouched", labels={"a": "b"})
    failing = [
        ("PUT", vci("untouched", {"displayName": 5}), None),
        ("PUT", vci("other-name"), None),
        ("PUT", dict(vci("untouched"), kind="Pod"), None),
        ("PUT", vci("untouched", labels={"bad key!": "x"}), None),
        ("PUT", dict(vci("untouched"), metadata={"name": "untouched", "resourceVersion": "1"}), None),
        ("PUT", vci("untouched", {"clusterRef": {"cluster": "nowhere"}}), None),
        ("PATCH", {"spec": {"displayName": ["x"]}}, "application/merge-patch+json"),
        ("PATCH", {"metadata": {"labels": {"x": "not valid!"}}}, "application/merge-patch+json"),
        ("PATCH", [{"op": "test", "path": "/metadata/labels/a", "value": "c"}, {"op": "remove", "path": "/metadata/labels"}], "application/json-patch+json"),
        ("PATCH", [{"op": "replace", "path": "", "value": [1]}], "application/json-patch+json"),
        ("PATCH", {"spec": {"clusterRef": {"cluster": "elsewhere"}}}, "application/merge-patch+json"),
        ("PATCH", {"spec": {"template": {"a": 1}, "templateRef": {"name": "t"}}}, "application/merge-patch+json"),
        ("DELETE", {"preconditions": {"uid": "wrong"}}, None),
    ]
    for method, body, content_type in failing:
        answer = stack.request(method, item(namespace, "untouched"), body, content_type=content_type)
        assert 400 <= answer.status < 500, (method, body, answer.status, answer.body)
        assert_status(answer, answer.status, answer.json()["reason"])
        assert get(stack, namespace, "untouched") == before, (method, body)


# --- concurrency ---------------------------------------------------------------------------------

def _all_at_once(count, work):
    barrier = threading.Barrier(count)

    def run(i):
        barrier.wait()
        return work(i)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


def test_concurrent_puts_with_one_resource_version_have_one_winner(stack, namespace):
    created = create(stack, namespace, "race")

    def put(i):
        body = dict(created, spec={"displayName": f"writer {i}"})
        return i, stack.request("PUT", item(namespace, "race"), body)

    results = _all_at_once(20, put)
    winners = [i for i, answer in results if answer.status == 200]
    assert len(winners) == 1, [(i, a.status, a.body[:200]) for i, a in results]
    for i, answer in results:
        if i not in winners:
            assert_status(answer, 409, "Conflict")
    final = get(stack, namespace, "race")
    assert final["spec"]["displayName"] == f"writer {winners[0]}"
    assert final["metadata"]["generation"] == 2
    assert final == dict(results)[winners[0]].json()


def test_concurrent_patches_are_all_applied(stack, namespace):
    create(stack, namespace, "crowd")

    def label(i):
        return merge_patch(stack, namespace, "crowd", {"metadata": {"labels": {f"writer-{i}": str(i)}}})

    answers = _all_at_once(20, label)
    assert [a.status for a in answers] == [200] * 20, [a.body[:300] for a in answers if a.status != 200]
    labels = get(stack, namespace, "crowd")["metadata"]["labels"]
    assert labels == {f"writer-{i}": str(i) for i in range(20)}

    def annotate(i):
        return stack.request("PATCH", item(namespace, "crowd"), [{"op": "add", "path": f"/metadata/annotations/n{i}", "value": "x"}],
                             content_type="application/json-patch+json")

    answers = _all_at_once(10, annotate)
    assert [a.status for a in answers] == [200] * 10
    assert sorted(get(stack, namespace, "crowd")["metadata"]["annotations"]) == sorted(f"n{i}" for i in range(10))


def test_concurrent_creates_of_one_name_have_one_winner(stack, namespace):
    results = _all_at_once(10, lambda i: stack.request("POST", coll(namespace), vci("only", {"displayName": f"c{i}"})))
    statuses = sorted(a.status for a in results)
    assert statuses == [201] + [409] * 9
    for answer in results:
        if answer.status == 409:
            assert_status(answer, 409, "AlreadyExists")
    winner = next(a.json() for a in results if a.status == 201)
    assert get(stack, namespace, "only") == winner


# --- the job queue -------------------------------------------------------------------------------

def _jobs_queue(stack):
    import boto3

    endpoint = (stack.state_dir / "aws-endpoint").read_text().strip()
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1",
                       aws_access_key_id="local", aws_secret_access_key="local")
    return sqs, sqs.get_queue_url(QueueName="vcp-jobs-local")["QueueUrl"]


def _take_jobs(sqs, url):
    """Every job on the queue (this module's stack has no worker consuming them), removed."""
    jobs = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not messages:
            return jobs
        for message in messages:
            jobs.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def test_jobs_are_enqueued_for_create_spec_change_and_delete(stack, namespace):
    sqs, url = _jobs_queue(stack)
    _take_jobs(sqs, url)

    def jobs():
        return [(j["kind"], j["namespace"], j["name"], j["reason"]) for j in _take_jobs(sqs, url) if j["namespace"] == namespace]

    create(stack, namespace, "queued")
    assert jobs() == [("virtualclusterinstances", namespace, "queued", "create")]
    assert merge_patch(stack, namespace, "queued", {"metadata": {"labels": {"only": "labels"}}}).status == 200
    assert jobs() == []  # nothing for the worker to do
    assert merge_patch(stack, namespace, "queued", {"spec": {"displayName": "changed"}}).status == 200
    assert jobs() == [("virtualclusterinstances", namespace, "queued", "update")]
    current = get(stack, namespace, "queued")
    assert stack.request("PUT", item(namespace, "queued"), dict(current, spec=dict(current["spec"], description="put"))).status == 200
    assert jobs() == [("virtualclusterinstances", namespace, "queued", "update")]
    # Dry runs and refused writes enqueue nothing.
    assert stack.request("POST", coll(namespace, "dryRun=All"), vci("dry")).status == 201
    assert merge_patch(stack, namespace, "queued", {"spec": {"displayName": "dry"}}, "dryRun=All").status == 200
    assert stack.request("PUT", item(namespace, "queued"), dict(current, spec={"displayName": "stale"})).status == 409
    assert stack.request("POST", coll(namespace), vci("queued")).status == 409
    assert jobs() == []
    assert stack.request("DELETE", item(namespace, "queued")).status == 200
    assert jobs() == [("virtualclusterinstances", namespace, "queued", "delete")]
    assert stack.request("DELETE", item(namespace, "queued")).status == 200  # already deleting: no new job
    assert jobs() == []


# --- restart -------------------------------------------------------------------------------------

def test_objects_and_the_access_key_survive_a_restart(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    namespace = "loft-p-my-project"  # the project `make run` bootstraps
    first = start_stack(state, env=NO_WORKER)
    try:
        created = first.request("POST", coll(namespace), vci("survivor", labels={"keep": "me"}))
        assert created.status == 201, created.body
    finally:
        stop_stack(first)  # SIGINT, as Ctrl-C on `make run`
    assert first.process.returncode == 0, (state / "stack.log").read_text()[-2000:]

    second = start_stack(state, env=NO_WORKER)
    try:
        got = second.request("GET", item(namespace, "survivor"), key=first.access_key)
        assert got.status == 200, got.body
        assert got.json() == created.json()  # same uid, resourceVersion, everything
        assert [o["metadata"]["uid"] for o in second.request("GET", coll(namespace), key=first.access_key).json()["items"]
                if o["metadata"]["name"] == "survivor"] == [created.json()["metadata"]["uid"]]
        # Writing goes on from where it stopped.
        patched = merge_patch(second, namespace, "survivor", {"spec": {"displayName": "after restart"}})
        assert patched.status == 200
        assert int(patched.json()["metadata"]["resourceVersion"]) > int(created.json()["metadata"]["resourceVersion"])
        assert_status(second.request("GET", item(namespace, "survivor"), key="not-the-key"), 401, "Unauthorized")
    finally:
        stop_stack(second)
