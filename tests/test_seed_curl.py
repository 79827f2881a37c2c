"""The seed's curl commands, verbatim, against a freshly started local stack.

The commands are taken from the API page the project was created from
(/work/shared/spec/virtualclusterinstance-api.txt) and run with bash, with only LOFT_DOMAIN and
ACCESS_KEY (plus PATH and HOME) set, from a directory holding object.yaml, exactly as a user would.
The page's YAML lost its indentation, so object.yaml is the spec's properly indented copy; for the
update, object.yaml is the page's "retrieved" object with the resourceVersion actually retrieved
(NOTES.md, "Traps").

This module starts its own stack (with the worker, as `make run`): the seed's names (project
my-project, my-virtual-cluster) are fixed, and a deleted instance stays behind until the worker has
cleaned up, so sharing a stack would couple tests. The worker writes status meanwhile, so checks
leave status (and whatever the worker may add) alone.
"""
import json
import re
import shutil
import subprocess
import uuid

import pytest
import yaml

from conftest import SPEC, seed_commands, start_stack, stop_stack

SEED = SPEC / "virtualclusterinstance-api.txt"
OBJECT_YAML = SPEC / "object.yaml"
NS, NAME = "loft-p-my-project", "my-virtual-cluster"

# The page's "First retrieve the current object into a file object.yaml. This could look like:"
# object, indented again (test_update_object_is_the_seeds checks it line by line against the page).
UPDATE_OBJECT = """\
apiVersion: management.loft.sh/v1
kind: VirtualClusterInstance
metadata:
  creationTimestamp: "2023-04-03T00:00:00Z"
  generation: 12
  name: my-virtual-cluster
  namespace: loft-p-my-project
  resourceVersion: "66325905"
  uid: af5f9f0f-8ab9-4b4b-a595-a95a5921f3c2
spec:
  clusterRef: {}
  displayName: my-display-name
  owner:
    user: my-user
  parameters: 'my-parameter: my-value'
  templateRef:
    name: my-virtual-cluster-template
status: {}
"""


def _verb(command):
    return re.search(r"-X (\w+)", command).group(1)


def curl_by_verb():
    """{list, get, create, update, patch, delete: command}, told apart by method and URL."""
    found = {}
    for command in seed_commands("curl"):
        verb = _verb(command)
        if verb == "GET":
            key = "get" if command.split('"')[1].endswith("/virtualclusterinstances/my-virtual-cluster") else "list"
        else:
            key = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}[verb]
        assert key not in found, f"two {key} commands in the seed"
        found[key] = command
    return found


def test_the_seed_has_the_six_curl_commands():
    commands = curl_by_verb()
    assert sorted(commands) == ["create", "delete", "get", "list", "patch", "update"]
    assert all("--insecure" in c and "Bearer $ACCESS_KEY" in c and "https://$LOFT_DOMAIN/" in c for c in commands.values())


def test_update_object_is_the_seeds():
    """UPDATE_OBJECT is the page's object, only re-indented."""
    text = SEED.read_text()
    block = text.split("This could look like:\n", 1)[1].split("Run the following curl command to update", 1)[0]
    assert [line.strip() for line in UPDATE_OBJECT.splitlines()] == block.strip().splitlines()
    original = yaml.safe_load(OBJECT_YAML.read_text())
    updated = yaml.safe_load(UPDATE_OBJECT)
    assert updated["spec"] == original["spec"] and updated["metadata"]["name"] == original["metadata"]["name"]


@pytest.fixture(scope="module")
def seed_stack(tmp_path_factory):
    running = start_stack(tmp_path_factory.mktemp("seed-stack"))
    yield running
    stop_stack(running)


class Shell:
    """bash in a scratch directory with exactly the environment the page asks for."""

    def __init__(self, stack, cwd):
        self.cwd = cwd
        self.env = {"LOFT_DOMAIN": stack.domain, "ACCESS_KEY": stack.access_key,
                    "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(cwd)}

    def run(self, command):
        done = subprocess.run(["bash", "-c", command], cwd=self.cwd, env=self.env, capture_output=True, timeout=60)
        assert done.returncode == 0, (command, done.returncode, done.stderr)
        return json.loads(done.stdout)


def assert_status(body, code, reason):
    assert body["kind"] == "Status" and body["apiVersion"] == "v1" and body["status"] == "Failure", body
    assert body["code"] == code and body["reason"] == reason and body["message"], body


def test_seed_curl_commands_verbatim(seed_stack, tmp_path):
    assert shutil.which("curl", path="/usr/local/bin:/usr/bin:/bin"), "the seed's commands need curl"
    commands = curl_by_verb()
    shell = Shell(seed_stack, tmp_path)
    object_yaml = tmp_path / "object.yaml"
    object_yaml.write_text(OBJECT_YAML.read_text())
    wanted = yaml.safe_load(OBJECT_YAML.read_text())

    # Create
    created = shell.run(commands["create"])
    assert created["apiVersion"] == "management.loft.sh/v1" and created["kind"] == "VirtualClusterInstance", created
    meta = created["metadata"]
    assert (meta["name"], meta["namespace"]) == (NAME, NS)
    uuid.UUID(meta["uid"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", meta["creationTimestamp"])
    assert meta["resourceVersion"].isdigit() and meta["generation"] == 1
    assert "loft.sh/cleanup" in meta["finalizers"] and "deletionTimestamp" not in meta
    for field in ("displayName", "owner", "parameters", "templateRef"):
        assert created["spec"][field] == wanted["spec"][field], field
    # clusterRef: {} is filled in by the platform (host cluster, host namespace, vcluster name).
    assert created["spec"]["clusterRef"]["virtualCluster"] == NAME
    assert created["status"] == {} or "phase" in created["status"]

    # List
    listed = shell.run(commands["list"])
    assert listed["kind"] == "VirtualClusterInstanceList" and listed["apiVersion"] == "management.loft.sh/v1"
    assert listed["metadata"]["resourceVersion"]
    assert [item["metadata"]["uid"] for item in listed["items"] if item["metadata"]["name"] == NAME] == [meta["uid"]]

    # Get
    got = shell.run(commands["get"])
    assert got["kind"] == "VirtualClusterInstance" and got["metadata"]["uid"] == meta["uid"]
    assert got["spec"] == created["spec"]

    # Patch: the seed's JSON patch adds under /metadata/annotations, which a fresh object lacks.
    patched = shell.run(commands["patch"])
    assert patched["kind"] == "VirtualClusterInstance", patched
    assert patched["metadata"]["annotations"]["my-annotation"] == "my-value"
    assert patched["metadata"]["uid"] == meta["uid"] and patched["metadata"]["generation"] == got["metadata"]["generation"]
    assert patched["metadata"]["resourceVersion"] != got["metadata"]["resourceVersion"]
    assert shell.run(commands["get"])["metadata"]["annotations"]["my-annotation"] == "my-value"

    # Update: retrieve the current object, write the page's object.yaml with that resourceVersion.
    # (Should the worker write status in between, the PUT is a 409: retrieve again, as a user would.)
    for _ in range(5):
        current = shell.run(commands["get"])
        rv = current["metadata"]["resourceVersion"]
        object_yaml.write_text(UPDATE_OBJECT.replace('resourceVersion: "66325905"', f'resourceVersion: "{rv}"'))
        updated = shell.run(commands["update"])
        if updated.get("reason") != "Conflict":
            break
    assert updated["kind"] == "VirtualClusterInstance", updated
    umeta = updated["metadata"]
    # The server owns uid, creationTimestamp and generation: the file's values are ignored.
    assert umeta["uid"] == meta["uid"] and umeta["creationTimestamp"] == meta["creationTimestamp"]
    assert umeta["generation"] == current["metadata"]["generation"]  # same spec: no new generation
    assert umeta["resourceVersion"] != rv
    assert "my-annotation" not in (umeta.get("annotations") or {})  # a PUT replaces: the file has none
    assert "loft.sh/cleanup" in umeta["finalizers"]  # the server's finalizer survives a PUT without it
    assert updated["spec"]["displayName"] == "my-display-name"
    assert shell.run(commands["get"])["spec"] == updated["spec"]

    # The same file again now carries a stale resourceVersion: 409 Conflict, nothing changes.
    before = shell.run(commands["get"])
    stale = shell.run(commands["update"])
    assert_status(stale, 409, "Conflict")
    assert "the object has been modified" in stale["message"]
    after_stale = shell.run(commands["get"])
    assert after_stale["metadata"]["uid"] == meta["uid"] and after_stale["spec"] == before["spec"]

    # Delete: the object comes back marked; the finalizer keeps it until the worker has cleaned up.
    deleted = shell.run(commands["delete"])
    assert deleted["kind"] == "VirtualClusterInstance", deleted
    assert deleted["metadata"]["deletionTimestamp"] and deleted["metadata"]["uid"] == meta["uid"]
    assert "loft.sh/cleanup" in deleted["metadata"]["finalizers"]
    after = shell.run(commands["get"])
    if after.get("kind") == "Status":  # a worker already finished the cleanup
        assert_status(after, 404, "NotFound")
    else:
        assert after["metadata"]["deletionTimestamp"] == deleted["metadata"]["deletionTimestamp"]
