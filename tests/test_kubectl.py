"""The real kubectl against the local stack: the seed's commands verbatim, then the rest of kubectl.

/usr/bin/kubectl is a dispatcher that runs the kubectl binary matching the server's /version minor
(1.32, KUBECTL.md); the version matrix at the end runs the oldest and newest installed binaries
directly (KUBECTL_MATRIX=all runs all of them: 1.27 to 1.33 pass). Every kubectl runs with a HOME of
its own per module (per binary for the matrix), so kubectl's discovery and OpenAPI cache cannot hide
a bug, and with the kubeconfig `make run` writes.

Deletion: instances carry the finalizer `loft.sh/cleanup`; DELETE only sets deletionTimestamp and
kubectl waits (GET, list by name, watch) for the DELETED event. The tests give objects a finalizer of
their own (HOLD) so that kubectl surely still waits after the worker (if one runs) has released its
finalizer; then they do what the worker's last step does: remove the finalizers with a merge patch,
and check that the object is gone and that a watch from before reports DELETED.

Watch (documented behaviour): a watch is a bounded long-poll here, buffered (Lambda behind API
Gateway cannot stream). It answers as soon as it has events, or empty after WATCH_MAX_SECONDS (3 in
the tests, 25 deployed). `kubectl get -w` does not re-watch: it prints what it got and exits 0 when
the server ends the watch (re-run it, or loop in the shell, to keep watching). Informers (`kubectl
delete`'s wait, `kubectl wait`, client-go, the Python client's `watch.Watch`) re-watch from the last
resourceVersion, so they see every event. kubectl's delete waits for the watch in flight when it is
done; so a watch pinned to a name that no longer exists ends after ~1 s, not WATCH_MAX_SECONDS.
"""
import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from conftest import API, SPEC, seed_commands

KUBECTL = "/usr/bin/kubectl"
BINARIES = Path("/usr/lib/google-cloud-sdk/bin")
GROUP = "management.loft.sh"
RESOURCE = f"virtualclusterinstances.{GROUP}"
SEED_NS, SEED_NAME = "loft-p-my-project", "my-virtual-cluster"
WATCH_MAX_SECONDS = 3  # what conftest starts the stack with
WORKER_GRACE_SECONDS = 10  # how long the worker may take to tear down and release its finalizer
HOLD = "test.loft.sh/hold"
CONFLICT = ('Operation cannot be fulfilled on virtualclusterinstances.management.loft.sh "{}": the object has been '
            "modified; please apply your changes to the latest version and try again")


@dataclass
class Ran:
    rc: int
    out: str
    err: str

    def ok(self):
        assert self.rc == 0, f"rc={self.rc}\nstdout:\n{self.out}\nstderr:\n{self.err}"
        return self


class Kubectl:
    """One kubectl binary with its own HOME (so its own discovery cache) and the stack's kubeconfig."""

    def __init__(self, binary, home, kubeconfig):
        self.binary, self.home, self.kubeconfig = str(binary), Path(home), Path(kubeconfig)
        self.home.mkdir(parents=True, exist_ok=True)

    def env(self, **extra):
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.home),
                "KUBECONFIG": str(self.kubeconfig), **extra}

    def __call__(self, *args, stdin=None, env=None, cwd=None, timeout=60):
        done = subprocess.run([self.binary, *args], input=stdin, capture_output=True, text=True,
                              env=self.env(**(env or {})), cwd=cwd or self.home, timeout=timeout)
        return Ran(done.returncode, done.stdout, done.stderr)

    def start(self, *args, env=None, cwd=None):
        return subprocess.Popen([self.binary, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=self.env(**(env or {})), cwd=cwd or self.home)

    def shell(self, command, cwd, env=None, timeout=60):
        """A command line exactly as a user types it (bash; `kubectl` is the dispatcher on PATH)."""
        done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, cwd=cwd,
                              env=self.env(**(env or {})), timeout=timeout)
        return Ran(done.returncode, done.stdout, done.stderr)


def finish(process, timeout):
    out, err = process.communicate(timeout=timeout)
    return Ran(process.returncode, out, err)


@pytest.fixture(scope="module")
def kubectl(stack, tmp_path_factory):
    return Kubectl(KUBECTL, tmp_path_factory.mktemp("kubectl-home"), stack.kubeconfig)




def manifest(name, namespace=None, labels=None, display="my-display-name", **meta):
    """An instance as users write it: the seed's object with another name."""
    obj = yaml.safe_load((SPEC / "object.yaml").read_text())
    obj["metadata"] = {"name": name, **({"namespace": namespace} if namespace else {}),
                       **({"labels": labels} if labels else {}), **meta}
    obj["spec"]["displayName"] = display
    return obj


def write(path, *objects):
    path.write_text(yaml.safe_dump_all(objects, sort_keys=False))
    return path


def item_path(namespace, name=""):
    return f"{API}/namespaces/{namespace}/virtualclusterinstances" + (f"/{name}" if name else "")


def api_get(stack, namespace, name):
    answer = stack.request("GET", item_path(namespace, name))
    return answer.json() if answer.status == 200 else None


def drop_finalizers(stack, namespace, name):
    """What the worker does when its teardown is done. 404: someone (a worker) finished first."""
    answer = stack.request("PATCH", item_path(namespace, name), {"metadata": {"finalizers": None}},
                           content_type="application/merge-patch+json")
    assert answer.status in (200, 404), answer.body
    return answer


def purge(stack, namespace, name):
    """Remove an instance whatever state it is in (for tests that use fixed names)."""
    if api_get(stack, namespace, name) is None:
        return
    stack.request("DELETE", item_path(namespace, name))
    drop_finalizers(stack, namespace, name)
    assert api_get(stack, namespace, name) is None


def wait_until(predicate, timeout=10.0, interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


def table(text):
    """kubectl's column output as (header, rows) split on runs of 2+ spaces (cells may be empty)."""
    lines = [line for line in text.splitlines() if line.strip()]
    starts = [m.start() for m in re.finditer(r"(?<!\S)\S", lines[0])]
    header = lines[0].split()

    def cells(line):
        return [line[a:b].strip() for a, b in zip(starts, starts[1:] + [None])]

    return header, [dict(zip(header, cells(line))) for line in lines[1:]]


def settle(stack, namespace, name, timeout=15):
    """The object once the worker (if any) is done with it: phase not Pending, resourceVersion steady."""
    previous = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        obj = api_get(stack, namespace, name)
        key = (obj["metadata"]["resourceVersion"], (obj.get("status") or {}).get("phase"))
        if key == previous and key[1] != "Pending":
            return obj
        previous = key
        time.sleep(0.3)
    raise AssertionError(f"{namespace}/{name} did not settle")


def hold(stack, namespace, name):
    """A finalizer of the test's own: the object outlives the worker's teardown until the test lets go."""
    answer = stack.request("PATCH", item_path(namespace, name),
                           [{"op": "add", "path": "/metadata/finalizers/-", "value": HOLD}],
                           content_type="application/json-patch+json")
    assert answer.status == 200 and HOLD in answer.json()["metadata"]["finalizers"], answer.body


def complete_deletion(stack, process, namespace, name, timeout=30, worker_grace=WORKER_GRACE_SECONDS):
    """With `kubectl delete` (waiting) running: let the worker do its part (if there is one), check
    kubectl waits while finalizers remain, remove the rest as the worker's last step would, check the
    server removes the object and tells watchers, and return kubectl's result."""
    def marked():
        obj = api_get(stack, namespace, name)
        return {"metadata": {}} if obj is None else obj if obj["metadata"].get("deletionTimestamp") else None

    def worker_done():
        obj = api_get(stack, namespace, name)
        return obj is None or "loft.sh/cleanup" not in obj["metadata"].get("finalizers", [])

    since = wait_until(marked)["metadata"].get("resourceVersion")
    try:
        wait_until(worker_done, timeout=worker_grace)
    except AssertionError:
        pass  # no worker: the test plays its part too
    time.sleep(0.3)
    still_waiting = process.poll() is None
    current = api_get(stack, namespace, name)
    if current is not None:
        assert current["metadata"]["deletionTimestamp"] and current["metadata"].get("finalizers")
        assert still_waiting, "kubectl delete returned while the object still had finalizers"
        drop_finalizers(stack, namespace, name)
        assert api_get(stack, namespace, name) is None, "a deleting object without finalizers must be gone"
    if since:
        watched = stack.request("GET", item_path(namespace) + f"?watch=true&resourceVersion={since}&fieldSelector=metadata.name%3D{name}")
        events = [json.loads(line) for line in watched.body.decode().splitlines() if line.strip()]
        assert events and events[-1]["type"] == "DELETED" and events[-1]["object"]["metadata"]["name"] == name, events
    return finish(process, timeout)


# --- The seed's kubectl commands, verbatim --------------------------------------------------------



def test_seed_lists_six_kubectl_commands():
    verbs = [command.split()[1] for command in seed_commands("kubectl")]
    assert verbs == ["get", "get", "create", "edit", "patch", "delete"]


def test_seed_commands_verbatim(stack, kubectl, tmp_path):
    get_list, get_one, create, edit, patch, delete = seed_commands("kubectl")
    shutil.copy(SPEC / "object.yaml", tmp_path / "object.yaml")
    editor = tmp_path / "editor.sh"
    editor.write_text('#!/bin/sh\nsed -i "s/displayName: my-display-name/displayName: my-edited-name/" "$1"\n')
    editor.chmod(0o755)
    purge(stack, SEED_NS, SEED_NAME)
    try:
        assert kubectl.shell(create, tmp_path).ok().out == f"virtualclusterinstance.{GROUP}/{SEED_NAME} created\n"

        listed = yaml.safe_load(kubectl.shell(get_list, tmp_path).ok().out)
        assert listed["kind"] == "List"
        ours = [o for o in listed["items"] if o["metadata"]["name"] == SEED_NAME]
        assert len(ours) == 1 and ours[0]["kind"] == "VirtualClusterInstance"

        got = yaml.safe_load(kubectl.shell(get_one, tmp_path).ok().out)
        assert got["apiVersion"] == f"{GROUP}/v1" and got["kind"] == "VirtualClusterInstance"
        assert got["metadata"]["namespace"] == SEED_NS and got["metadata"]["uid"]
        assert got["metadata"]["finalizers"] == ["loft.sh/cleanup"]
        assert got["spec"]["displayName"] == "my-display-name"
        assert got["spec"]["owner"] == {"user": "my-user"}
        assert got["spec"]["parameters"] == "my-parameter: my-value"
        assert got["spec"]["templateRef"]["name"] == "my-virtual-cluster-template"

        edited = kubectl.shell(edit, tmp_path, env={"KUBE_EDITOR": str(editor)}).ok()
        assert edited.out == f"virtualclusterinstance.{GROUP}/{SEED_NAME} edited\n"
        assert api_get(stack, SEED_NS, SEED_NAME)["spec"]["displayName"] == "my-edited-name"

        assert kubectl.shell(patch, tmp_path).ok().out == f"virtualclusterinstance.{GROUP}/{SEED_NAME} patched\n"
        assert api_get(stack, SEED_NS, SEED_NAME)["metadata"]["annotations"]["my-annotation"] == "my-value"

        hold(stack, SEED_NS, SEED_NAME)  # so kubectl surely waits, whatever the worker does
        deleting = subprocess.Popen(["bash", "-c", delete], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True, cwd=tmp_path, env=kubectl.env())
        deleted = complete_deletion(stack, deleting, SEED_NS, SEED_NAME).ok()
        assert deleted.out == f'virtualclusterinstance.{GROUP} "{SEED_NAME}" deleted\n'
        assert kubectl.shell(get_one, tmp_path).err == \
            f'Error from server (NotFound): {RESOURCE} "{SEED_NAME}" not found\n'
    finally:
        purge(stack, SEED_NS, SEED_NAME)


# --- Reading: tables, output formats, resource names, discovery, explain --------------------------

def test_table_output(stack, kubectl, ns, tmp_path):
    write(tmp_path / "two.yaml", manifest("alpha", ns, {"env": "dev"}), manifest("beta", ns, {"env": "prod"}))
    kubectl("create", "-f", str(tmp_path / "two.yaml")).ok()

    header, rows = table(kubectl("get", RESOURCE, "-n", ns).ok().out)
    assert header == ["NAME", "TEMPLATE", "CLUSTER", "PHASE", "OWNER", "AGE"]
    assert [r["NAME"] for r in rows] == ["alpha", "beta"]
    assert rows[0]["TEMPLATE"] == "my-virtual-cluster-template" and rows[0]["OWNER"] == "my-user"
    assert re.fullmatch(r"\d+s", rows[0]["AGE"]), rows[0]

    one_header, one = table(kubectl("get", RESOURCE, "beta", "-n", ns).ok().out)  # a single object: a server Table too
    assert one_header == header and [r["NAME"] for r in one] == ["beta"] and one[0]["TEMPLATE"] == "my-virtual-cluster-template"

    wide_header, wide_rows = table(kubectl("get", "vci", "-n", ns, "-o", "wide").ok().out)
    assert len(wide_header) > len(header)
    assert [h for h in wide_header if h in header] == header  # the same columns, plus the wide ones
    assert [r["NAME"] for r in wide_rows] == ["alpha", "beta"]

    labelled_header, labelled = table(kubectl("get", "vci", "-n", ns, "--show-labels").ok().out)
    assert labelled_header[-1] == "LABELS"
    assert [r["LABELS"] for r in labelled] == ["env=dev", "env=prod"]

    all_header, everywhere = table(kubectl("get", "vci", "-A").ok().out)
    assert all_header[:2] == ["NAMESPACE", "NAME"]
    assert {(r["NAMESPACE"], r["NAME"]) for r in everywhere} >= {(ns, "alpha"), (ns, "beta")}

    as_json = json.loads(kubectl("get", "vci", "-n", ns, "-o", "json").ok().out)
    assert as_json["kind"] == "List" and [o["metadata"]["name"] for o in as_json["items"]] == ["alpha", "beta"]
    assert all(o["kind"] == "VirtualClusterInstance" for o in as_json["items"])

    assert kubectl("get", "vci", "-n", ns, "-o", "name").ok().out == \
        f"virtualclusterinstance.{GROUP}/alpha\nvirtualclusterinstance.{GROUP}/beta\n"
    assert kubectl("get", "vci", "alpha", "-n", ns, "-o", "jsonpath={.spec.displayName}").ok().out == "my-display-name"
    custom = kubectl("get", "vci", "-n", ns, "-o", "custom-columns=N:.metadata.name,E:.metadata.labels.env").ok().out
    assert custom.split() == ["N", "E", "alpha", "dev", "beta", "prod"]


def test_empty_namespace_says_no_resources(kubectl, ns):
    answer = kubectl("get", "vci", "-n", ns).ok()
    assert answer.out == "" and answer.err == f"No resources found in {ns} namespace.\n"


def test_every_resource_name_form(kubectl, ns, tmp_path):
    kubectl("create", "-f", str(write(tmp_path / "o.yaml", manifest("forms", ns)))).ok()
    forms = ("vci", "virtualclusterinstance", "virtualclusterinstances", "VirtualClusterInstance",
             "virtualclusterinstances.management.loft.sh", "virtualclusterinstance.management.loft.sh",
             "vci.management.loft.sh", "VirtualClusterInstance.management.loft.sh",
             "virtualclusterinstances.v1.management.loft.sh")
    out = kubectl("get", *[f"{form}/forms" for form in forms], "-n", ns, "-o", "name").ok().out
    assert out == f"virtualclusterinstance.{GROUP}/forms\n" * len(forms)
    assert kubectl("get", "virtualclusterinstances", "forms", "-n", ns, "-o", "name").ok().out == f"virtualclusterinstance.{GROUP}/forms\n"


def test_api_resources_and_versions(kubectl):
    header, rows = table(kubectl("api-resources", f"--api-group={GROUP}").ok().out)
    assert header == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    vci = next(r for r in rows if r["NAME"] == "virtualclusterinstances")
    assert vci == {"NAME": "virtualclusterinstances", "SHORTNAMES": "vci", "APIVERSION": f"{GROUP}/v1",
                   "NAMESPACED": "true", "KIND": "VirtualClusterInstance"}
    _, wide = table(kubectl("api-resources", f"--api-group={GROUP}", "-o", "wide").ok().out)
    vci = next(r for r in wide if r["NAME"] == "virtualclusterinstances")
    verbs = re.split(r"[,\s]+", vci["VERBS"].strip("[]"))
    assert set(verbs) >= {"create", "delete", "get", "list", "patch", "update", "watch"}
    assert f"{GROUP}/v1" in kubectl("api-versions").ok().out.split()
    assert kubectl("api-resources", "--namespaced=true", "-o", "name").ok().out.split().count(RESOURCE) == 1


def test_explain(kubectl):
    top = kubectl("explain", "vci").ok().out
    assert "KIND:       VirtualClusterInstance" in top and f"GROUP:      {GROUP}" in top
    for field in ("apiVersion", "kind", "metadata", "spec", "status"):
        assert re.search(rf"^  {field}\t<", top, re.M), field
    spec = kubectl("explain", "vci.spec").ok().out
    for field in ("clusterRef", "displayName", "owner", "parameters", "templateRef"):
        assert re.search(rf"^  {field}\t<", spec, re.M), field
    ref = kubectl("explain", "virtualclusterinstances.spec.templateRef").ok().out
    assert re.search(r"^  name\t<string>", ref, re.M) and re.search(r"^  version\t<string>", ref, re.M)
    recursive = kubectl("explain", "vci", "--recursive").ok().out
    assert re.search(r"^    templateRef\t<TemplateRef>", recursive, re.M)
    missing = kubectl("explain", "vci.spec.nope")
    assert missing.rc == 1 and 'field "nope" does not exist' in missing.err


# --- Writing: patch, label, annotate, apply, replace, dry run ------------------------------------

def test_patch_label_annotate(stack, kubectl, ns, tmp_path):
    kubectl("create", "-f", str(write(tmp_path / "o.yaml", manifest("p", ns)))).ok()
    done = f"virtualclusterinstance.{GROUP}/p"
    assert kubectl("label", "vci", "p", "-n", ns, "env=dev", "tier=gold").ok().out == f"{done} labeled\n"
    already = kubectl("label", "vci", "p", "-n", ns, "env=prod")
    assert already.rc == 1 and "'env' already has a value (dev), and --overwrite is false" in already.err
    assert kubectl("label", "vci", "p", "-n", ns, "env=prod", "--overwrite").ok().out == f"{done} labeled\n"
    assert kubectl("label", "vci", "p", "-n", ns, "tier-").ok().out == f"{done} unlabeled\n"
    assert api_get(stack, ns, "p")["metadata"]["labels"] == {"env": "prod"}

    assert kubectl("annotate", "vci", "p", "-n", ns, "note=hello world").ok().out == f"{done} annotated\n"
    assert api_get(stack, ns, "p")["metadata"]["annotations"]["note"] == "hello world"
    assert kubectl("annotate", "vci", "p", "-n", ns, "note-").ok().out == f"{done} annotated\n"
    assert "note" not in (api_get(stack, ns, "p")["metadata"].get("annotations") or {})

    assert kubectl("patch", "vci", "p", "-n", ns, "--type", "merge", "-p", '{"spec":{"description":"one"}}').ok().out == f"{done} patched\n"
    assert kubectl("patch", "vci", "p", "-n", ns, "-p", '{"spec":{"description":"two"}}').ok().out == f"{done} patched\n"
    assert kubectl("patch", "vci", "p", "-n", ns, "--type", "json",
                   "-p", '[{"op":"replace","path":"/spec/displayName","value":"three"}]').ok().out == f"{done} patched\n"
    spec = api_get(stack, ns, "p")["spec"]
    assert (spec["description"], spec["displayName"]) == ("two", "three")
    bad = kubectl("patch", "vci", "p", "-n", ns, "--type", "merge", "-p", '{"spec":{"displayName":5}}')
    assert bad.rc == 1 and bad.err.startswith('The VirtualClusterInstance "p" is invalid: '), bad.err

    # A no-op patch keeps the resourceVersion. kubectl compares its GET with the PATCH answer, so wait
    # until the worker (if any) is done writing status, and patch labels only (no worker job follows).
    settle(stack, ns, "p")
    assert kubectl("patch", "vci", "p", "-n", ns, "--type", "merge", "-p", '{"metadata":{"labels":{"env":"prod"}}}').ok().out == \
        f"{done} patched (no change)\n"
    assert kubectl("patch", "vci", "p", "-n", ns, "-p", '{"spec":{"description":"two"}}').ok().out == f"{done} patched (no change)\n"


def test_label_selectors(kubectl, ns, tmp_path):
    kubectl("create", "-f", str(write(tmp_path / "o.yaml", manifest("dev1", ns, {"env": "dev"}),
                                      manifest("prod1", ns, {"env": "prod", "tier": "gold"}), manifest("bare", ns)))).ok()

    def names(selector):
        return kubectl("get", "vci", "-n", ns, "-l", selector, "-o", "custom-columns=:metadata.name", "--no-headers").ok().out.split()

    assert names("env=dev") == ["dev1"]
    assert names("env!=dev") == ["bare", "prod1"]
    assert names("env in (dev,prod)") == ["dev1", "prod1"]
    assert names("env notin (dev)") == ["bare", "prod1"]
    assert names("env") == ["dev1", "prod1"]
    assert names("!env") == ["bare"]
    assert names("env=prod,tier=gold") == ["prod1"]
    none = kubectl("get", "vci", "-n", ns, "-l", "env=qa").ok()
    assert none.out == "" and none.err == f"No resources found in {ns} namespace.\n"
    assert kubectl("get", "vci", "-n", ns, "--field-selector", "metadata.name=bare", "-o", "name").ok().out == \
        f"virtualclusterinstance.{GROUP}/bare\n"


def test_apply_create_configure_unchanged(stack, kubectl, ns, tmp_path):
    path = write(tmp_path / "a.yaml", manifest("applied", ns))
    done = f"virtualclusterinstance.{GROUP}/applied"
    assert kubectl("apply", "-f", str(path)).ok().out == f"{done} created\n"
    assert "kubectl.kubernetes.io/last-applied-configuration" in api_get(stack, ns, "applied")["metadata"]["annotations"]
    assert kubectl("apply", "-f", str(path)).ok().out == f"{done} unchanged\n"
    write(path, manifest("applied", ns, display="changed"))
    assert kubectl("apply", "-f", str(path)).ok().out == f"{done} configured\n"
    assert api_get(stack, ns, "applied")["spec"]["displayName"] == "changed"
    assert kubectl("apply", "-f", str(path)).ok().out == f"{done} unchanged\n"
    diff = kubectl("diff", "-f", str(write(tmp_path / "b.yaml", manifest("applied", ns, display="other"))))
    assert diff.rc == 1 and "-  displayName: changed" in diff.out and "+  displayName: other" in diff.out


def test_replace_and_stale_replace_conflict(stack, kubectl, ns, tmp_path):
    kubectl("create", "-f", str(write(tmp_path / "o.yaml", manifest("r", ns)))).ok()
    current = tmp_path / "current.yaml"
    current.write_text(kubectl("get", "vci", "r", "-n", ns, "-o", "yaml").ok().out)
    kubectl("label", "vci", "r", "-n", ns, "meanwhile=yes").ok()  # labels: no worker job follows
    stale = kubectl("replace", "-f", str(current))
    assert stale.rc == 1
    assert stale.err == f'Error from server (Conflict): error when replacing "{current}": {CONFLICT.format("r")}\n'
    settle(stack, ns, "r")  # no worker write between the GET and the PUT below
    fresh = yaml.safe_load(kubectl("get", "vci", "r", "-n", ns, "-o", "yaml").ok().out)
    fresh["spec"]["description"] = "replaced"
    write(current, fresh)
    assert kubectl("replace", "-f", str(current)).ok().out == f"virtualclusterinstance.{GROUP}/r replaced\n"
    assert api_get(stack, ns, "r")["spec"]["description"] == "replaced"


def test_edit_with_a_stale_resource_version_conflicts(stack, kubectl, ns, tmp_path):
    kubectl("create", "-f", str(write(tmp_path / "o.yaml", manifest("e", ns)))).ok()
    editor = tmp_path / "stale.sh"
    editor.write_text('#!/bin/sh\nsed -i -e "s/resourceVersion: .*/resourceVersion: \\"1\\"/" '
                      '-e "s/displayName: my-display-name/displayName: lost/" "$1"\n')
    editor.chmod(0o755)
    edited = kubectl("edit", "vci", "e", "-n", ns, env={"KUBE_EDITOR": str(editor)})
    assert edited.rc == 1
    assert CONFLICT.format("e") in edited.err, edited.err
    assert api_get(stack, ns, "e")["spec"]["displayName"] == "my-display-name"


def test_create_dry_run_server(stack, kubectl, ns, tmp_path):
    path = write(tmp_path / "o.yaml", manifest("dry", ns))
    answer = kubectl("create", "-f", str(path), "--dry-run=server").ok()
    assert answer.out == f"virtualclusterinstance.{GROUP}/dry created (server dry run)\n"
    assert api_get(stack, ns, "dry") is None
    shown = yaml.safe_load(kubectl("create", "-f", str(path), "--dry-run=server", "-o", "yaml").ok().out)
    assert shown["metadata"]["uid"] and shown["metadata"]["finalizers"] == ["loft.sh/cleanup"]
    assert api_get(stack, ns, "dry") is None
    kubectl("create", "-f", str(path)).ok()
    again = kubectl("create", "-f", str(path), "--dry-run=server")
    assert again.rc == 1 and again.err == \
        f'Error from server (AlreadyExists): error when creating "{path}": {RESOURCE} "dry" already exists\n'
    # (kubectl patch prints no "(server dry run)" suffix; it does send ?dryRun=All)
    assert kubectl("patch", "vci", "dry", "-n", ns, "--type", "merge", "-p", '{"spec":{"description":"x"}}',
                   "--dry-run=server").ok().out == f"virtualclusterinstance.{GROUP}/dry patched\n"
    assert "description" not in api_get(stack, ns, "dry")["spec"]


# --- Errors ---------------------------------------------------------------------------------------

def test_errors_read_like_kube_apiserver(stack, kubectl, ns, tmp_path):
    missing = kubectl("get", RESOURCE, "x", "-n", ns)
    assert missing.rc == 1 and missing.err == f'Error from server (NotFound): {RESOURCE} "x" not found\n'
    missing = kubectl("delete", "vci", "x", "-n", ns)
    assert missing.rc == 1 and missing.err == f'Error from server (NotFound): {RESOURCE} "x" not found\n'
    missing = kubectl("patch", "vci", "x", "-n", ns, "--type", "merge", "-p", "{}")
    assert missing.rc == 1 and missing.err == f'Error from server (NotFound): {RESOURCE} "x" not found\n'

    path = write(tmp_path / "o.yaml", manifest("dup", ns))
    kubectl("create", "-f", str(path)).ok()
    duplicate = kubectl("create", "-f", str(path))
    assert duplicate.rc == 1
    assert duplicate.err == f'Error from server (AlreadyExists): error when creating "{path}": {RESOURCE} "dup" already exists\n'

    unknown = kubectl("create", "-f", str(write(tmp_path / "u.yaml", {**manifest("unknown", ns), "spec": {"nope": 1}})))
    assert unknown.rc == 1 and 'unknown field "spec.nope"' in unknown.err, unknown.err

    other = kubectl("get", "vci", "x", "-n", "loft-p-no-such-project-here")
    assert other.rc == 1 and other.err.startswith("Error from server ("), other.err

    bad_token = kubectl("get", "vci", "-n", ns, "--token", "not-a-key")
    assert bad_token.rc == 1 and bad_token.err == "error: You must be logged in to the server (Unauthorized)\n"


# --- Lists in pages, watch ------------------------------------------------------------------------

def test_chunked_list(kubectl, ns, tmp_path):
    names = [f"c{i}" for i in range(5)]
    kubectl("create", "-f", str(write(tmp_path / "many.yaml", *[manifest(n, ns) for n in names]))).ok()
    listed = kubectl("get", "vci", "-n", ns, "--chunk-size=2", "-o", "name", "-v=6").ok()
    assert listed.out.split() == [f"virtualclusterinstance.{GROUP}/{n}" for n in names]
    requests = re.findall(r"GET https://\S+/virtualclusterinstances\?(\S+) 200", listed.err)
    assert len(requests) == 3 and "limit=2" in requests[0] and all("continue=" in r for r in requests[1:]), requests
    header, rows = table(kubectl("get", "vci", "-n", ns, "--chunk-size=2").ok().out)
    assert header[0] == "NAME" and [r["NAME"] for r in rows] == names


def test_watch_prints_changes_then_ends_with_the_servers_watch(stack, kubectl, ns, tmp_path):
    kubectl("create", "-f", str(write(tmp_path / "o.yaml", manifest("w", ns)))).ok()

    # Nothing to report (a selector nothing matches): kubectl exits 0 when the server ends the watch.
    started = time.monotonic()
    quiet = kubectl("get", "vci", "-n", ns, "-w", "-l", "none=here", timeout=WATCH_MAX_SECONDS + 20)
    assert quiet.rc == 0 and quiet.out == "", quiet
    assert WATCH_MAX_SECONDS - 0.5 < time.monotonic() - started < WATCH_MAX_SECONDS + 5

    settle(stack, ns, "w")  # label changes from here on: no worker writes interleave
    watching = kubectl.start("get", "vci", "-n", ns, "-w")
    first = watching.stdout.readline() + watching.stdout.readline()  # the list is printed: the watch is next
    started = time.monotonic()
    answer = stack.request("PATCH", item_path(ns, "w"), {"metadata": {"labels": {"seen": "yes"}}},
                           content_type="application/merge-patch+json")
    assert answer.status == 200
    ran = finish(watching, timeout=WATCH_MAX_SECONDS + 10)
    assert ran.rc == 0, ran.err
    assert time.monotonic() - started < WATCH_MAX_SECONDS + 3  # the event ends the long-poll, and kubectl
    header, rows = table(first + ran.out)
    assert header == ["NAME", "TEMPLATE", "CLUSTER", "PHASE", "OWNER", "AGE"]
    assert [r["NAME"] for r in rows] == ["w", "w"]  # the list, then the MODIFIED event

    events = kubectl.start("get", "vci", "-n", ns, "-w", "--output-watch-events", "-o", "json")
    first = events.stdout.readline()  # the list's ADDED event has begun: the watch is next
    stack.request("PATCH", item_path(ns, "w"), {"metadata": {"labels": {"event": "two"}}}, content_type="application/merge-patch+json")
    ran = finish(events, timeout=WATCH_MAX_SECONDS + 10)
    assert ran.rc == 0, ran.err
    decoded = [json.loads(doc) for doc in re.split(r"(?<=\})\n(?=\{)", (first + ran.out).strip())]
    assert [e["type"] for e in decoded] == ["ADDED", "MODIFIED"]
    assert decoded[1]["object"]["metadata"]["labels"]["event"] == "two"


# --- Delete ---------------------------------------------------------------------------------------

def test_delete_waits_for_the_finalizer(stack, kubectl, ns, tmp_path):
    kubectl("create", "-f", str(write(tmp_path / "o.yaml", manifest("d", ns, finalizers=[HOLD])))).ok()
    deleting = kubectl.start("delete", "vci", "d", "-n", ns)
    ran = complete_deletion(stack, deleting, ns, "d").ok()
    assert ran.out == f'virtualclusterinstance.{GROUP} "d" deleted\n' and ran.err == ""
    assert kubectl("get", "vci", "d", "-n", ns).err == f'Error from server (NotFound): {RESOURCE} "d" not found\n'


def test_watch_of_a_gone_name_ends_early(stack, ns):
    """What keeps `kubectl delete` quick: its informer's last watch (of a name now gone) ends in ~1 s."""
    started = time.monotonic()
    answer = stack.request("GET", item_path(ns) + "?watch=true&fieldSelector=metadata.name%3Dgone&resourceVersion=1")
    assert answer.status == 200 and answer.body == b""
    assert 0.9 < time.monotonic() - started < WATCH_MAX_SECONDS - 0.5


def test_delete_wait_false(stack, kubectl, ns, tmp_path):
    kubectl("create", "-f", str(write(tmp_path / "o.yaml", manifest("nw", ns, finalizers=[HOLD]),
                                      manifest("nw2", ns, finalizers=[HOLD])))).ok()
    ran = kubectl("delete", "vci", "nw", "nw2", "-n", ns, "--wait=false").ok()
    assert ran.out == f'virtualclusterinstance.{GROUP} "nw" deleted\nvirtualclusterinstance.{GROUP} "nw2" deleted\n'
    for name in ("nw", "nw2"):
        obj = api_get(stack, ns, name)
        assert obj["metadata"]["deletionTimestamp"] and HOLD in obj["metadata"]["finalizers"]
        drop_finalizers(stack, ns, name)
        assert api_get(stack, ns, name) is None
    by_label = kubectl("create", "-f", str(write(tmp_path / "l.yaml", manifest("l1", ns, {"batch": "x"}))))
    by_label.ok()
    assert kubectl("delete", "vci", "-n", ns, "-l", "batch=x", "--wait=false").ok().out == \
        f'virtualclusterinstance.{GROUP} "l1" deleted\n'


# --- The kubeconfig `make run` writes -------------------------------------------------------------

def test_kubeconfig_works_when_copied_elsewhere(stack, ns, tmp_path):
    elsewhere = tmp_path / "somewhere" / "else"
    elsewhere.mkdir(parents=True)
    copied = shutil.copy(stack.kubeconfig, elsewhere / "config")
    moved = Kubectl(KUBECTL, tmp_path / "home", copied)
    moved("create", "-f", str(write(tmp_path / "o.yaml", manifest("copied", ns)))).ok()
    assert moved("get", "vci", "copied", "-n", ns, "-o", "name", cwd="/").ok().out == f"virtualclusterinstance.{GROUP}/copied\n"
    as_flag = subprocess.run([KUBECTL, "--kubeconfig", str(copied), "get", "vci", "-n", ns, "-o", "name"],
                             capture_output=True, text=True, cwd="/", env={"PATH": os.environ["PATH"], "HOME": str(tmp_path / "home")})
    assert as_flag.returncode == 0 and as_flag.stdout == f"virtualclusterinstance.{GROUP}/copied\n", as_flag.stderr
    context = moved("config", "view", "--minify", "-o", "jsonpath={.contexts[0].context.namespace}").ok().out
    assert context == SEED_NS  # so the seed's commands also work without -n


# --- The oldest and newest kubectl binaries, directly ---------------------------------------------

VERSIONS = sorted((p.name.split("kubectl.")[1] for p in BINARIES.glob("kubectl.1.*")), key=lambda v: int(v.split(".")[1]))
# Oldest and newest by default; KUBECTL_MATRIX=all runs every installed binary (all pass: see the module doc).
MATRIX = VERSIONS if os.environ.get("KUBECTL_MATRIX") == "all" else sorted(set(VERSIONS[:1] + VERSIONS[-1:]), key=VERSIONS.index)


@pytest.mark.parametrize("version", MATRIX)
def test_kubectl_version_matrix(stack, ns, tmp_path, version):
    """A subset of the commands with one kubectl binary directly (its own discovery, OpenAPI and wait)."""
    k = Kubectl(BINARIES / f"kubectl.{version}", tmp_path / "home", stack.kubeconfig)
    done = f"virtualclusterinstance.{GROUP}/m"
    path = write(tmp_path / "o.yaml", manifest("m", ns, finalizers=[HOLD]))
    assert "virtualclusterinstances" in k("api-resources", f"--api-group={GROUP}").ok().out
    assert k("create", "-f", str(path)).ok().out == f"{done} created\n"
    header, rows = table(k("get", RESOURCE, "-n", ns).ok().out)
    assert header == ["NAME", "TEMPLATE", "CLUSTER", "PHASE", "OWNER", "AGE"] and rows[0]["NAME"] == "m"
    current = tmp_path / "current.yaml"
    current.write_text(k("get", RESOURCE, "m", "-n", ns, "-o", "yaml").ok().out)
    assert yaml.safe_load(current.read_text())["metadata"]["name"] == "m"
    assert k("patch", RESOURCE, "m", "-n", ns, "--type", "json",
             "-p", '[{"op": "add", "path": "/metadata/annotations/my-annotation", "value": "my-value"}]').ok().out == f"{done} patched\n"
    editor = tmp_path / "editor.sh"
    editor.write_text('#!/bin/sh\nsed -i "s/displayName: my-display-name/displayName: edited/" "$1"\n')
    editor.chmod(0o755)
    assert k("edit", "vci", "m", "-n", ns, env={"KUBE_EDITOR": str(editor)}).ok().out == f"{done} edited\n"
    stale = k("replace", "-f", str(current))
    assert stale.rc == 1 and CONFLICT.format("m") in stale.err
    assert k("apply", "-f", str(write(path, manifest("m", ns, display="applied", finalizers=[HOLD])))).ok().rc == 0
    assert api_get(stack, ns, "m")["spec"]["displayName"] == "applied"
    assert re.search(r"^  templateRef\t<", k("explain", "vci.spec").ok().out, re.M)
    assert k("get", "vci", "nope", "-n", ns).err == f'Error from server (NotFound): {RESOURCE} "nope" not found\n'
    deleted = complete_deletion(stack, k.start("delete", RESOURCE, "m", "-n", ns), ns, "m", worker_grace=0.3).ok()
    assert deleted.out == f'virtualclusterinstance.{GROUP} "m" deleted\n'


def test_wait_for_ready_and_for_delete(kubectl, ns, tmp_path):
    """`kubectl wait` re-watches across the server's bounded watches until the worker reports Ready,
    and `--for=delete` until the worker has torn the virtual cluster down."""
    kubectl("create", "-f", str(write(tmp_path / "w.yaml", manifest("waited", ns)))).ok()
    waited = kubectl("wait", "--for=jsonpath={.status.phase}=Ready", f"{RESOURCE}/waited", "-n", ns, "--timeout=60s",
                     timeout=90).ok()
    assert waited.out.strip() == f"virtualclusterinstance.{GROUP}/waited condition met"
    assert kubectl("get", "vci", "waited", "-n", ns, "-o", "jsonpath={.status.phase}").ok().out == "Ready"
    kubectl("delete", "vci", "waited", "-n", ns, "--wait=false").ok()
    kubectl("wait", "--for=delete", f"{RESOURCE}/waited", "-n", ns, "--timeout=60s", timeout=90).ok()
    assert "NotFound" in kubectl("get", "vci", "waited", "-n", ns).err
