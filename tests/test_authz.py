"""Who may do what, over HTTP against the running stack.

The authorization matrix: every instance route (and template/project reads and writes) x every kind of
caller -> the expected status code, with a Forbidden Status worded like kube RBAC, and no object of
another project in any response body. Then the rules of instance admission that name a project rule:
owner, project membership, allowed templates and clusters, quotas.
"""
import json
from dataclasses import dataclass, field

import pytest

from conftest import API, ok, suffix

VCI = "virtualclusterinstances"
MERGE = "application/merge-patch+json"
ADMIN_ROLE = "loft-management-admin"
PADMIN, PUSER, PVIEWER = "loft-management-project-admin", "loft-management-project-user", "loft-management-project-viewer"






def make_user(stack, name, admin=False, teams=None):
    spec = {"username": name}
    if admin:
        spec["clusterRoles"] = [{"name": ADMIN_ROLE}]
    if teams:
        spec["teams"] = teams
    ok(stack.request("POST", API + "/users", {"metadata": {"name": name}, "spec": spec}), 201)
    return name


def make_key(stack, user):
    """A key acting as `user`, made by the platform admin; returns `<name>.<secret>`."""
    created = ok(stack.request("POST", API + "/ownedaccesskeys",
                               {"metadata": {"generateName": "k-"}, "spec": {"user": user}}), 201)
    return created["spec"]["key"]


def make_project(stack, name, **spec):
    ok(stack.request("POST", API + "/projects", {"metadata": {"name": name}, "spec": spec}), 201)
    return f"loft-p-{name}"


def members(**roles):
    return [{"kind": "User", "name": user, "clusterRole": role} for user, role in roles.items()]


def instance(name, template, owner=None, **spec):
    body = {"apiVersion": "management.loft.sh/v1", "kind": "VirtualClusterInstance", "metadata": {"name": name},
            "spec": {"templateRef": {"name": template}, **spec}}
    if owner:
        body["spec"]["owner"] = {"user": owner}
    return body


def create_instance(stack, namespace, body, key=None, code=201, dry=False):
    """dry: ?dryRun=All, all of admission without the write (and without the worker's job: faster)."""
    query = "?dryRun=All" if dry else ""
    return ok(stack.request("POST", f"{API}/namespaces/{namespace}/{VCI}{query}", body, key=key), code)


def put_fresh(stack, path, change, key=None):
    """GET, change, PUT with its resourceVersion; the worker writes status too, so a 409 is retried."""
    for _ in range(10):
        current = ok(stack.request("GET", path))
        change(current)
        answer = stack.request("PUT", path, current, key=key)
        if answer.status != 409:
            return answer
    return answer


def assert_status(answer, code, reason):
    assert answer.status == code, (answer.status, answer.body[:2000])
    body = answer.json()
    assert (body["kind"], body["apiVersion"], body["status"], body["code"], body["reason"]) == \
        ("Status", "v1", "Failure", code, reason), body
    return body


# ---------------------------------------------------------------------------------------------------
# The principals and objects of the matrix, built once for the module.

@dataclass
class World:
    s: str
    project_a: str
    project_b: str
    ns_a: str
    ns_b: str
    template: str
    users: dict
    keys: dict = field(default_factory=dict)
    canary_a: dict = None
    canary_b: dict = None
    target: dict = None
    own: dict = None
    others: dict = None
    uid_project_a: str = ""
    uid_project_b: str = ""


CALLERS = ("no-key", "bad-key", "revoked-key", "viewer", "other-project", "member", "project-admin", "platform-admin")
A_ROLES = ("viewer", "member", "project-admin")


@pytest.fixture(scope="module")
def world(stack):
    s = suffix()
    users = {role: make_user(stack, f"az-{role}-{s}", admin=role == "platform-admin")
             for role in ("viewer", "other-project", "member", "project-admin", "platform-admin", "revoked")}
    template = f"az-tpl-{s}"
    ok(stack.request("POST", API + "/virtualclustertemplates", {"metadata": {"name": template}, "spec": {
        "parameters": [{"variable": "size", "type": "number", "defaultValue": "1"}],
        "template": {"helmRelease": {"values": "size: {{ .Values.size }}"}}}}), 201)
    w = World(s=s, project_a=f"az-a-{s}", project_b=f"az-b-{s}", ns_a=f"loft-p-az-a-{s}", ns_b=f"loft-p-az-b-{s}",
              template=template, users=users)
    make_project(stack, w.project_a, members=members(**{users["viewer"]: PVIEWER, users["member"]: PUSER,
                                                         users["project-admin"]: PADMIN}))
    make_project(stack, w.project_b, members=members(**{users["other-project"]: PUSER}))
    w.uid_project_a = ok(stack.request("GET", f"{API}/projects/{w.project_a}"))["metadata"]["uid"]
    w.uid_project_b = ok(stack.request("GET", f"{API}/projects/{w.project_b}"))["metadata"]["uid"]
    w.keys = {role: make_key(stack, users[role]) for role in ("viewer", "other-project", "member", "project-admin", "platform-admin")}
    revoked = make_key(stack, users["revoked"])
    ok(stack.request("DELETE", f"{API}/ownedaccesskeys/{revoked.split('.')[0]}"))
    w.keys.update({"no-key": False, "bad-key": "no-such-key.c2VjcmV0", "revoked-key": revoked})
    # Canaries: never asked for by name, so their names and uids must only ever appear in lists of those who may see them.
    w.canary_a = create_instance(stack, w.ns_a, instance(f"a-canary-{s}", template, owner=users["project-admin"]))
    w.canary_b = create_instance(stack, w.ns_b, instance(f"b-canary-{s}", template, owner=users["other-project"]))
    w.target = create_instance(stack, w.ns_a, instance(f"a-target-{s}", template, owner=users["member"]))
    w.own = create_instance(stack, w.ns_a, instance(f"a-own-{s}", template, owner=users["member"]))
    w.others = create_instance(stack, w.ns_a, instance(f"a-others-{s}", template, owner=users["project-admin"]))
    return w


def leaked(w, caller, body):
    """Objects of a project the caller has no part in, found in a response body."""
    text = body.decode(errors="replace")
    if caller in A_ROLES:
        foreign = [w.canary_b["metadata"]["name"], w.canary_b["metadata"]["uid"], w.uid_project_b, w.project_b]
    elif caller == "other-project":
        foreign = [w.canary_a["metadata"]["name"], w.canary_a["metadata"]["uid"], w.uid_project_a]
    else:
        foreign = [] if caller == "platform-admin" else [w.canary_a["metadata"]["uid"], w.canary_b["metadata"]["uid"]]
    return [f for f in foreign if f in text]


# ---------------------------------------------------------------------------------------------------
# Routes: each prepares what it needs with the bootstrap admin key, then makes one request as `key`.
# `allowed` says whether the caller is expected to succeed: only then is a fresh object made (instance
# creation is the expensive path), else the request targets a shared object it must not change.
# Returns (answer, verb, resource plural, namespace or None) for checking the Forbidden wording.

def _fresh_instance(stack, w, owner_role):
    name = f"t-{suffix()}"
    create_instance(stack, w.ns_a, instance(name, w.template, owner=w.users[owner_role]))
    return name


def r_list_ns(stack, w, key, allowed):
    return stack.request("GET", f"{API}/namespaces/{w.ns_a}/{VCI}", key=key), "list", VCI, w.ns_a


def r_list_all(stack, w, key, allowed):
    return stack.request("GET", f"{API}/{VCI}", key=key), "list", VCI, None


def r_create(stack, w, key, allowed):
    body = instance(f"c-{suffix()}", w.template)
    return stack.request("POST", f"{API}/namespaces/{w.ns_a}/{VCI}", body, key=key), "create", VCI, w.ns_a


def r_get(stack, w, key, allowed):
    return stack.request("GET", f"{API}/namespaces/{w.ns_a}/{VCI}/{w.target['metadata']['name']}", key=key), "get", VCI, w.ns_a


def _put(stack, w, key, name):
    answer = put_fresh(stack, f"{API}/namespaces/{w.ns_a}/{VCI}/{name}",
                       lambda obj: obj["metadata"].setdefault("labels", {}).update(touched=suffix()), key=key)
    return answer, "update", VCI, w.ns_a


def _patch(stack, w, key, name):
    return (stack.request("PATCH", f"{API}/namespaces/{w.ns_a}/{VCI}/{name}",
                          json.dumps({"metadata": {"labels": {"touched": suffix()}}}), key=key, content_type=MERGE),
            "patch", VCI, w.ns_a)


def _delete(stack, w, key, name):
    return stack.request("DELETE", f"{API}/namespaces/{w.ns_a}/{VCI}/{name}", key=key), "delete", VCI, w.ns_a


def r_put_own(stack, w, key, allowed):
    return _put(stack, w, key, w.own["metadata"]["name"])


def r_patch_own(stack, w, key, allowed):
    return _patch(stack, w, key, w.own["metadata"]["name"])


def r_delete_own(stack, w, key, allowed):
    return _delete(stack, w, key, _fresh_instance(stack, w, "member") if allowed else w.own["metadata"]["name"])


def r_put_others(stack, w, key, allowed):
    return _put(stack, w, key, w.others["metadata"]["name"])


def r_patch_others(stack, w, key, allowed):
    return _patch(stack, w, key, w.others["metadata"]["name"])


def r_delete_others(stack, w, key, allowed):
    return _delete(stack, w, key, _fresh_instance(stack, w, "project-admin") if allowed else w.others["metadata"]["name"])


TPL = "virtualclustertemplates"


def r_tpl_list(stack, w, key, allowed):
    return stack.request("GET", f"{API}/{TPL}", key=key), "list", TPL, None


def r_tpl_get(stack, w, key, allowed):
    return stack.request("GET", f"{API}/{TPL}/{w.template}", key=key), "get", TPL, None


def r_tpl_create(stack, w, key, allowed):
    return stack.request("POST", f"{API}/{TPL}", {"metadata": {"name": f"tc-{suffix()}"}}, key=key), "create", TPL, None


def _fresh_template(stack):
    name = f"tt-{suffix()}"
    ok(stack.request("POST", f"{API}/{TPL}", {"metadata": {"name": name}}), 201)
    return name


def r_tpl_put(stack, w, key, allowed):
    name = _fresh_template(stack) if allowed else w.template
    current = ok(stack.request("GET", f"{API}/{TPL}/{name}"))
    current["spec"]["description"] = "changed"
    return stack.request("PUT", f"{API}/{TPL}/{name}", current, key=key), "update", TPL, None


def r_tpl_patch(stack, w, key, allowed):
    name = _fresh_template(stack) if allowed else w.template
    return (stack.request("PATCH", f"{API}/{TPL}/{name}", json.dumps({"spec": {"description": "p"}}), key=key,
                          content_type=MERGE), "patch", TPL, None)


def r_tpl_delete(stack, w, key, allowed):
    name = _fresh_template(stack) if allowed else w.template
    return stack.request("DELETE", f"{API}/{TPL}/{name}", key=key), "delete", TPL, None


def r_proj_list(stack, w, key, allowed):
    return stack.request("GET", f"{API}/projects", key=key), "list", "projects", None


def r_proj_get(stack, w, key, allowed):
    return stack.request("GET", f"{API}/projects/{w.project_a}", key=key), "get", "projects", None


def r_proj_create(stack, w, key, allowed):
    return stack.request("POST", f"{API}/projects", {"metadata": {"name": f"pc-{suffix()}"}}, key=key), "create", "projects", None


def _fresh_project(stack, w):
    """A project with the same members as project A (so its roles are those of the matrix)."""
    name = f"pp-{suffix()}"
    a = ok(stack.request("GET", f"{API}/projects/{w.project_a}"))
    make_project(stack, name, members=a["spec"]["members"])
    return name


def r_proj_patch(stack, w, key, allowed):
    name = _fresh_project(stack, w) if allowed else w.project_a
    return (stack.request("PATCH", f"{API}/projects/{name}", json.dumps({"spec": {"description": "p"}}), key=key,
                          content_type=MERGE), "patch", "projects", None)


def r_proj_delete(stack, w, key, allowed):
    name = _fresh_project(stack, w) if allowed else w.project_a
    return stack.request("DELETE", f"{API}/projects/{name}", key=key), "delete", "projects", None


U = 401
#                         viewer other  member padmin admin   (no-key, bad-key, revoked-key: always 401)
MATRIX = {
    "list-ns":           (r_list_ns,       200, 403, 200, 200, 200),
    "list-all-ns":       (r_list_all,      200, 200, 200, 200, 200),
    "create":            (r_create,        403, 403, 201, 201, 201),
    "get":               (r_get,           200, 403, 200, 200, 200),
    "put-own":           (r_put_own,       403, 403, 200, 200, 200),
    "patch-own":         (r_patch_own,     403, 403, 200, 200, 200),
    "delete-own":        (r_delete_own,    403, 403, 200, 200, 200),
    "put-others":        (r_put_others,    403, 403, 403, 200, 200),
    "patch-others":      (r_patch_others,  403, 403, 403, 200, 200),
    "delete-others":     (r_delete_others, 403, 403, 403, 200, 200),
    "template-list":     (r_tpl_list,      200, 200, 200, 200, 200),
    "template-get":      (r_tpl_get,       200, 200, 200, 200, 200),
    "template-create":   (r_tpl_create,    403, 403, 403, 403, 201),
    "template-put":      (r_tpl_put,       403, 403, 403, 403, 200),
    "template-patch":    (r_tpl_patch,     403, 403, 403, 403, 200),
    "template-delete":   (r_tpl_delete,    403, 403, 403, 403, 200),
    "project-list":      (r_proj_list,     200, 200, 200, 200, 200),
    "project-get":       (r_proj_get,      200, 403, 200, 200, 200),
    "project-create":    (r_proj_create,   403, 403, 403, 403, 201),
    "project-patch":     (r_proj_patch,    403, 403, 403, 403, 200),
    "project-delete":    (r_proj_delete,   403, 403, 403, 403, 200),
}
CASES = [pytest.param(route, caller, id=f"{route}-{caller}") for route in MATRIX for caller in CALLERS]


@pytest.mark.parametrize("route,caller", CASES)
def test_authorization_matrix(stack, world, route, caller):
    produce, *codes = MATRIX[route]
    expected = dict(zip(("viewer", "other-project", "member", "project-admin", "platform-admin"), codes)).get(caller, U)
    answer, verb, plural, namespace = produce(stack, world, world.keys[caller], expected < 300)
    assert answer.status == expected, (route, caller, answer.status, answer.body[:1000])
    if expected == 401:
        assert_status(answer, 401, "Unauthorized")
    elif expected == 403:
        message = assert_status(answer, 403, "Forbidden")["message"]
        user = world.users[caller]
        assert f'User "{user}" cannot {verb} resource "{plural}" in API group "management.loft.sh"' in message, message
        assert (f'in the namespace "{namespace}"' if namespace else "at the cluster scope") in message, message
    assert not leaked(world, caller, answer.body), (route, caller, leaked(world, caller, answer.body))


def test_refused_writes_changed_nothing(stack, world):
    """Runs after the matrix: the shared objects refused writes targeted are as they were."""
    w = world
    project = ok(stack.request("GET", f"{API}/projects/{w.project_a}"))
    assert "description" not in project["spec"] and project["metadata"]["generation"] == 1
    template = ok(stack.request("GET", f"{API}/{TPL}/{w.template}"))
    assert "description" not in template["spec"] and template["metadata"]["generation"] == 1
    for target in (w.own, w.others, w.target):
        current = ok(stack.request("GET", f"{API}/namespaces/{w.ns_a}/{VCI}/{target['metadata']['name']}"))
        assert "deletionTimestamp" not in current["metadata"] and current["metadata"]["uid"] == target["metadata"]["uid"]


def _names(answer):
    return {(o["metadata"].get("namespace"), o["metadata"]["name"]) for o in ok(answer)["items"]}


def test_lists_show_exactly_what_the_caller_may_see(stack, world):
    w = world
    a = (w.ns_a, w.canary_a["metadata"]["name"])
    b = (w.ns_b, w.canary_b["metadata"]["name"])
    for caller in A_ROLES:
        seen = _names(stack.request("GET", f"{API}/{VCI}", key=w.keys[caller]))
        assert a in seen and b not in seen and {ns for ns, _ in seen} == {w.ns_a}, (caller, seen)
        projects = _names(stack.request("GET", f"{API}/projects", key=w.keys[caller]))
        assert projects == {(None, w.project_a)} | {(None, p) for _, p in projects if p.startswith("pp-")}, projects
    seen = _names(stack.request("GET", f"{API}/{VCI}", key=w.keys["other-project"]))
    assert seen == {b}, seen
    assert _names(stack.request("GET", f"{API}/projects", key=w.keys["other-project"])) == {(None, w.project_b)}
    everything = _names(stack.request("GET", f"{API}/{VCI}", key=w.keys["platform-admin"]))
    assert {a, b} <= everything
    # The same filtering holds for label-selected, paginated and table lists.
    page = stack.request("GET", f"{API}/{VCI}?limit=1", key=w.keys["other-project"])
    assert _names(page) == {b} and "continue" not in ok(page)["metadata"]
    table = stack.request("GET", f"{API}/{VCI}", key=w.keys["other-project"],
                          headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"})
    assert w.canary_a["metadata"]["name"] not in table.body.decode() and w.canary_b["metadata"]["name"] in table.body.decode()


def test_forbidden_is_worded_like_kube_rbac(stack, world):
    w = world
    name = w.target["metadata"]["name"]
    answer = stack.request("GET", f"{API}/namespaces/{w.ns_a}/{VCI}/{name}", key=w.keys["other-project"])
    body = assert_status(answer, 403, "Forbidden")
    assert body["message"] == (f'virtualclusterinstances.management.loft.sh "{name}" is forbidden: User '
                               f'"{w.users["other-project"]}" cannot get resource "virtualclusterinstances" in API group '
                               f'"management.loft.sh" in the namespace "{w.ns_a}"')
    assert body["details"] == {"name": name, "group": "management.loft.sh", "kind": "virtualclusterinstances"}
    # A name that does not exist in another project is a 403 too: existence is not revealed.
    answer = stack.request("GET", f"{API}/namespaces/{w.ns_a}/{VCI}/nothing-here", key=w.keys["other-project"])
    assert_status(answer, 403, "Forbidden")
    answer = stack.request("GET", f"{API}/namespaces/{w.ns_a}/{VCI}/nothing-here", key=w.keys["member"])
    assert_status(answer, 404, "NotFound")
    # Creating in a project one is not part of.
    answer = stack.request("POST", f"{API}/namespaces/{w.ns_a}/{VCI}", instance("x", w.template), key=w.keys["other-project"])
    assert assert_status(answer, 403, "Forbidden")["message"] == (
        f'virtualclusterinstances.management.loft.sh is forbidden: User "{w.users["other-project"]}" cannot create resource '
        f'"virtualclusterinstances" in API group "management.loft.sh" in the namespace "{w.ns_a}"')


def test_watch_across_namespaces_is_filtered(stack, world):
    w = world
    answer = stack.request("GET", f"{API}/{VCI}?watch=true&timeoutSeconds=0.2", key=w.keys["other-project"])
    assert answer.status == 200
    events = [json.loads(line) for line in answer.body.decode().splitlines() if line]
    names = {e["object"]["metadata"]["name"] for e in events}
    assert w.canary_b["metadata"]["name"] in names and w.canary_a["metadata"]["name"] not in names
    answer = stack.request("GET", f"{API}/namespaces/{w.ns_a}/{VCI}?watch=true&timeoutSeconds=0.2", key=w.keys["other-project"])
    assert_status(answer, 403, "Forbidden")


# ---------------------------------------------------------------------------------------------------
# Owners

def test_owner_defaults_to_the_caller(stack, world):
    w = world
    created = create_instance(stack, w.ns_a, instance(f"o-{suffix()}", w.template), key=w.keys["member"], dry=True)
    assert created["spec"]["owner"] == {"user": w.users["member"]}
    created = create_instance(stack, w.ns_a, instance(f"o-{suffix()}", w.template), key=w.keys["project-admin"], dry=True)
    assert created["spec"]["owner"] == {"user": w.users["project-admin"]}


def test_only_admins_set_another_owner(stack, world):
    w = world
    answer = stack.request("POST", f"{API}/namespaces/{w.ns_a}/{VCI}", instance(f"o-{suffix()}", w.template, owner="someone-else"),
                           key=w.keys["member"])
    assert "only admins may set another owner" in assert_status(answer, 403, "Forbidden")["message"]
    for caller in ("project-admin", "platform-admin"):
        created = create_instance(stack, w.ns_a, instance(f"o-{suffix()}", w.template, owner="someone-else"), key=w.keys[caller], dry=True)
        assert created["spec"]["owner"] == {"user": "someone-else"}
    # A member cannot give their own instance away (nor take another's: see the matrix).
    mine = create_instance(stack, w.ns_a, instance(f"o-{suffix()}", w.template), key=w.keys["member"])
    answer = stack.request("PATCH", f"{API}/namespaces/{w.ns_a}/{VCI}/{mine['metadata']['name']}",
                           json.dumps({"spec": {"owner": {"user": "someone-else"}}}), key=w.keys["member"], content_type=MERGE)
    assert_status(answer, 403, "Forbidden")
    # A PUT that leaves the owner out keeps it.
    def drop_owner(obj):
        obj["spec"].pop("owner")
        obj["spec"]["displayName"] = "kept owner"
    updated = ok(put_fresh(stack, f"{API}/namespaces/{w.ns_a}/{VCI}/{mine['metadata']['name']}", drop_owner, key=w.keys["member"]))
    assert updated["spec"]["owner"] == {"user": w.users["member"]}
    # The project admin hands it over to someone else; then the member may no longer change it.
    ok(stack.request("PATCH", f"{API}/namespaces/{w.ns_a}/{VCI}/{mine['metadata']['name']}",
                     json.dumps({"spec": {"owner": {"user": w.users["viewer"]}}}), key=w.keys["project-admin"], content_type=MERGE))
    answer = stack.request("PATCH", f"{API}/namespaces/{w.ns_a}/{VCI}/{mine['metadata']['name']}",
                           json.dumps({"spec": {"displayName": "x"}}), key=w.keys["member"], content_type=MERGE)
    assert_status(answer, 403, "Forbidden")


def test_seed_object_with_owner_my_user_is_accepted_for_the_admin(stack):
    """The seed's object.yaml (owner.user: my-user) posted as YAML with the admin key, as its curl does."""
    from conftest import SPEC

    namespace = make_project(stack, f"seed-{suffix()}")
    text = (SPEC / "object.yaml").read_text().replace("loft-p-my-project", namespace)
    answer = stack.request("POST", f"{API}/namespaces/{namespace}/{VCI}", text, content_type="application/yaml")
    created = ok(answer, 201)
    assert created["spec"]["owner"] == {"user": "my-user"}
    assert created["spec"]["templateRef"]["name"] == "my-virtual-cluster-template"


def test_team_membership_and_team_owner(stack):
    s = suffix()
    team = f"team-{s}"
    key = make_key(stack, make_user(stack, f"tm-{s}", teams=[team]))
    outsider = make_key(stack, make_user(stack, f"tn-{s}", teams=[f"other-{s}"]))
    ns = make_project(stack, f"team-{s}", members=[{"kind": "Team", "name": team, "clusterRole": PUSER}])
    create_instance(stack, ns, instance("by-team-member", "my-virtual-cluster-template"), key=key, dry=True)
    created = create_instance(stack, ns, {**instance("team-owned", "my-virtual-cluster-template"),
                                          "spec": {"templateRef": {"name": "my-virtual-cluster-template"}, "owner": {"team": team}}}, key=key)
    assert created["spec"]["owner"] == {"team": team}
    ok(stack.request("PATCH", f"{API}/namespaces/{ns}/{VCI}/team-owned", json.dumps({"spec": {"displayName": "t"}}),
                     key=key, content_type=MERGE))
    assert_status(stack.request("GET", f"{API}/namespaces/{ns}/{VCI}", key=outsider), 403, "Forbidden")


def test_membership_changes_take_effect_at_once(stack):
    s = suffix()
    user = make_user(stack, f"mc-{s}")
    key = make_key(stack, user)
    project = f"mc-{s}"
    ns = make_project(stack, project, members=members(**{user: PUSER}))
    ok(stack.request("GET", f"{API}/namespaces/{ns}/{VCI}", key=key))
    ok(stack.request("PATCH", f"{API}/projects/{project}", json.dumps({"spec": {"members": members(**{user: PVIEWER})}}),
                     content_type=MERGE))
    answer = stack.request("POST", f"{API}/namespaces/{ns}/{VCI}", instance("x", "my-virtual-cluster-template"), key=key)
    assert_status(answer, 403, "Forbidden")
    ok(stack.request("PATCH", f"{API}/projects/{project}", json.dumps({"spec": {"members": []}}), content_type=MERGE))
    assert_status(stack.request("GET", f"{API}/namespaces/{ns}/{VCI}", key=key), 403, "Forbidden")


def test_project_owner_is_project_admin(stack):
    s = suffix()
    user = make_user(stack, f"po-{s}")
    key = make_key(stack, user)
    ns = make_project(stack, f"po-{s}", owner={"user": user})
    created = create_instance(stack, ns, instance("x", "my-virtual-cluster-template", owner="another"), key=key, dry=True)
    assert created["spec"]["owner"] == {"user": "another"}


# ---------------------------------------------------------------------------------------------------
# Project rules: a message naming the rule

def test_namespace_without_project(stack, world):
    ns = f"loft-p-none-{suffix()}"
    answer = stack.request("POST", f"{API}/namespaces/{ns}/{VCI}", instance("x", "my-virtual-cluster-template"))
    message = assert_status(answer, 403, "Forbidden")["message"]
    assert f'namespace "{ns}" does not belong to a project' in message, message
    answer = stack.request("POST", f"{API}/namespaces/default/{VCI}", instance("x", "my-virtual-cluster-template"))
    assert "does not belong to a project" in assert_status(answer, 403, "Forbidden")["message"]
    answer = stack.request("POST", f"{API}/namespaces/{ns}/{VCI}", instance("x", "my-virtual-cluster-template"), key=world.keys["member"])
    assert "cannot create resource" in assert_status(answer, 403, "Forbidden")["message"]


def test_allowed_templates(stack):
    s = suffix()
    user = make_user(stack, f"at-{s}")
    key = make_key(stack, user)
    for name in (f"allowed-{s}", f"denied-{s}"):
        ok(stack.request("POST", f"{API}/virtualclustertemplates", {"metadata": {"name": name}}), 201)
    ns = make_project(stack, f"at-{s}", members=members(**{user: PUSER}),
                      allowedTemplates=[{"kind": "VirtualClusterTemplate", "name": f"allowed-{s}", "isDefault": True}])
    create_instance(stack, ns, instance("ok", f"allowed-{s}"), key=key)
    for caller in (key, None):  # the rule binds admins too
        answer = stack.request("POST", f"{API}/namespaces/{ns}/{VCI}", instance("no", f"denied-{s}"), key=caller)
        message = assert_status(answer, 403, "Forbidden")["message"]
        assert f'project "at-{s}" does not allow template "denied-{s}"' in message, message
    # Switching an existing instance to a denied template is refused too.
    answer = stack.request("PATCH", f"{API}/namespaces/{ns}/{VCI}/ok", json.dumps({"spec": {"templateRef": {"name": f"denied-{s}"}}}),
                           key=key, content_type=MERGE)
    assert "does not allow template" in assert_status(answer, 403, "Forbidden")["message"]
    ok(stack.request("PATCH", f"{API}/projects/at-{s}", json.dumps({"spec": {"allowedTemplates": [{"name": "*"}]}}), content_type=MERGE))
    create_instance(stack, ns, instance("any", f"denied-{s}"), key=key, dry=True)


def test_allowed_clusters(stack):
    s = suffix()
    ns = make_project(stack, f"ac-{s}", allowedClusters=[{"name": "other-cluster"}])
    answer = stack.request("POST", f"{API}/namespaces/{ns}/{VCI}",
                           instance("x", "my-virtual-cluster-template", clusterRef={"cluster": "loft-cluster"}))
    body = assert_status(answer, 422, "Invalid")
    causes = body["details"]["causes"]
    assert [c["field"] for c in causes] == ["spec.clusterRef.cluster"], causes
    assert f'project "ac-{s}" does not allow cluster "loft-cluster"' in causes[0]["message"]
    # An unknown host cluster, whatever the project allows.
    answer = stack.request("POST", f"{API}/namespaces/{ns}/{VCI}", instance("x", "my-virtual-cluster-template", clusterRef={"cluster": "nowhere"}))
    causes = assert_status(answer, 422, "Invalid")["details"]["causes"]
    assert causes[0]["field"] == "spec.clusterRef.cluster" and causes[0]["reason"] == "FieldValueNotSupported"
    assert '"loft-cluster"' in causes[0]["message"]
    ok(stack.request("PATCH", f"{API}/projects/ac-{s}", json.dumps({"spec": {"allowedClusters": [{"name": "loft-cluster"}]}}),
                     content_type=MERGE))
    created = create_instance(stack, ns, instance("x", "my-virtual-cluster-template"))
    assert created["spec"]["clusterRef"] == {"cluster": "loft-cluster", "namespace": f"loft-ac-{s}-v-x", "virtualCluster": "x"}
    # clusterRef is immutable once set.
    answer = stack.request("PATCH", f"{API}/namespaces/{ns}/{VCI}/x", json.dumps({"spec": {"clusterRef": {"namespace": "elsewhere"}}}),
                           content_type=MERGE)
    causes = assert_status(answer, 422, "Invalid")["details"]["causes"]
    assert causes == [{"reason": "FieldValueInvalid", "field": "spec.clusterRef.namespace", "message": "Invalid value: field is immutable"}]


def test_project_quota(stack):
    s = suffix()
    project = f"qp-{s}"
    ns = make_project(stack, project, quotas={"project": {"virtualclusterinstances": 2}})
    for i in range(2):
        create_instance(stack, ns, instance(f"q{i}", "my-virtual-cluster-template"))
    answer = stack.request("POST", f"{API}/namespaces/{ns}/{VCI}", instance("q2", "my-virtual-cluster-template"))
    message = assert_status(answer, 403, "Forbidden")["message"]
    assert message.startswith("metadata.name: Forbidden: cannot create virtualclusterinstance, because project "
                              "virtualclusterinstances limit of 2 would be exceeded"), message
    # Updates of existing instances are not creations.
    ok(stack.request("PATCH", f"{API}/namespaces/{ns}/{VCI}/q0", json.dumps({"spec": {"displayName": "q"}}), content_type=MERGE))


def test_user_quota_and_active_quota(stack):
    s = suffix()
    one, two = make_user(stack, f"qu1-{s}"), make_user(stack, f"qu2-{s}")
    k1, k2 = make_key(stack, one), make_key(stack, two)
    ns = make_project(stack, f"qu-{s}", members=members(**{one: PUSER, two: PUSER}),
                      quotas={"user": {"virtualclusterinstances": 1}, "project": {"virtualclusterinstances.active": 3}})
    create_instance(stack, ns, instance("a", "my-virtual-cluster-template"), key=k1)
    answer = stack.request("POST", f"{API}/namespaces/{ns}/{VCI}", instance("b", "my-virtual-cluster-template"), key=k1)
    message = assert_status(answer, 403, "Forbidden")["message"]
    assert "because user virtualclusterinstances limit of 1 would be exceeded" in message and one in message, message
    create_instance(stack, ns, instance("c", "my-virtual-cluster-template"), key=k2)
    create_instance(stack, ns, instance("d", "my-virtual-cluster-template", owner="third"))
    answer = stack.request("POST", f"{API}/namespaces/{ns}/{VCI}", instance("e", "my-virtual-cluster-template", owner="fourth"))
    message = assert_status(answer, 403, "Forbidden")["message"]
    assert "because project virtualclusterinstances.active limit of 3 would be exceeded" in message, message


def test_viewer_reads_but_never_writes(stack, world):
    w = world
    name = w.target["metadata"]["name"]
    got = ok(stack.request("GET", f"{API}/namespaces/{w.ns_a}/{VCI}/{name}", key=w.keys["viewer"]))
    assert got["metadata"]["name"] == name
    answer = stack.request("PATCH", f"{API}/namespaces/{w.ns_a}/{VCI}/{name}",
                           json.dumps([{"op": "add", "path": "/metadata/annotations/x", "value": "y"}]),
                           key=w.keys["viewer"], content_type="application/json-patch+json")
    assert_status(answer, 403, "Forbidden")
    answer = stack.request("POST", f"{API}/namespaces/{w.ns_a}/{VCI}?dryRun=All", instance("v", w.template), key=w.keys["viewer"])
    assert_status(answer, 403, "Forbidden")
