"""Access keys (/ownedaccesskeys) and users (/users), over HTTP: the key is shown once, only its SHA-256
is kept, and a revoked, disabled or expired key is refused on the very next request."""
import hashlib
import json
import time

import pytest

from conftest import API, ok, status, suffix

KEYS = f"{API}/ownedaccesskeys"
USERS = f"{API}/users"
MERGE = "application/merge-patch+json"








def make_user(stack, name, **spec):
    ok(stack.request("POST", USERS, {"metadata": {"name": name}, "spec": spec}), 201)
    return name


def make_key(stack, user, key=None, **spec):
    created = ok(stack.request("POST", KEYS, {"metadata": {"name": f"k-{suffix()}"}, "spec": {"user": user, **spec}}, key=key), 201)
    return created


def whoami(stack, key, user):
    """A request only the key's user may make (a non-admin reads only their own User)."""
    return stack.request("GET", f"{USERS}/{user}", key=key)


@pytest.fixture(scope="module")
def alice(stack):
    user = make_user(stack, f"alice-{suffix()}", displayName="Alice")
    return user, make_key(stack, user)["spec"]["key"]


def test_key_is_shown_once_and_only_its_hash_is_kept(stack, alice):
    user, _ = alice
    created = make_key(stack, user, displayName="ci")
    key = created["spec"]["key"]
    name, _, secret = key.partition(".")
    assert name == created["metadata"]["name"] and len(secret) >= 40
    digest = hashlib.sha256(secret.encode()).hexdigest()
    assert created["status"]["keyHash"] == digest
    for answer in (stack.request("GET", f"{KEYS}/{name}"), stack.request("GET", KEYS),
                   stack.request("GET", f"{KEYS}/{name}", key=key), stack.request("GET", KEYS, key=key),
                   stack.request("GET", f"{KEYS}?watch=true&timeoutSeconds=0.1", key=key),
                   stack.request("GET", KEYS, headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"})):
        assert answer.status == 200 and secret.encode() not in answer.body, answer.body[:500]
    got = ok(stack.request("GET", f"{KEYS}/{name}"))
    assert "key" not in got["spec"] and got["status"]["keyHash"] == digest and got["spec"]["user"] == user
    # Updating the key never shows or changes the secret; the key keeps working.
    patched = ok(stack.request("PATCH", f"{KEYS}/{name}", json.dumps({"spec": {"description": "d", "key": "mine.forged"}}),
                               key=key, content_type=MERGE))
    assert "key" not in patched["spec"] and patched["status"]["keyHash"] == digest
    put = dict(patched, status={"keyHash": hashlib.sha256(b"forged").hexdigest()})
    assert ok(stack.request("PUT", f"{KEYS}/{name}", put, key=key))["status"]["keyHash"] == digest
    ok(whoami(stack, key, user))
    status(stack.request("GET", f"{USERS}/{user}", key=f"{name}.forged"), 401, "Unauthorized")


def test_revoke_takes_effect_at_once(stack, alice):
    user, _ = alice
    created = make_key(stack, user)
    key = created["spec"]["key"]
    ok(whoami(stack, key, user))
    ok(stack.request("DELETE", f"{KEYS}/{created['metadata']['name']}", key=key))  # a user revokes their own key
    status(whoami(stack, key, user), 401, "Unauthorized")
    status(stack.request("GET", KEYS, key=key), 401, "Unauthorized")
    # A new key with the same name does not bring the old secret back.
    recreated = ok(stack.request("POST", KEYS, {"metadata": {"name": created["metadata"]["name"]}, "spec": {"user": user}}), 201)
    status(whoami(stack, key, user), 401, "Unauthorized")
    ok(whoami(stack, recreated["spec"]["key"], user))


def test_disabled_key_is_refused(stack, alice):
    user, _ = alice
    created = make_key(stack, user)
    key, name = created["spec"]["key"], created["metadata"]["name"]
    ok(whoami(stack, key, user))
    ok(stack.request("PATCH", f"{KEYS}/{name}", json.dumps({"spec": {"disabled": True}}), content_type=MERGE))
    status(whoami(stack, key, user), 401, "Unauthorized")
    ok(stack.request("PATCH", f"{KEYS}/{name}", json.dumps({"spec": {"disabled": False}}), content_type=MERGE))
    ok(whoami(stack, key, user))
    disabled = make_key(stack, user, disabled=True)
    status(whoami(stack, disabled["spec"]["key"], user), 401, "Unauthorized")


def test_expired_key_is_refused(stack, alice):
    user, _ = alice
    short = make_key(stack, user, ttl=2)
    ok(whoami(stack, short["spec"]["key"], user))  # used (and so looked up) while valid
    long = make_key(stack, user, ttl=3600)
    deadline = time.monotonic() + 4
    while whoami(stack, short["spec"]["key"], user).status == 200:
        assert time.monotonic() < deadline, "a key past its ttl still works"
        time.sleep(0.25)
    status(whoami(stack, short["spec"]["key"], user), 401, "Unauthorized")
    ok(whoami(stack, long["spec"]["key"], user))


@pytest.mark.parametrize("header", [
    None, "", "Bearer", "Bearer ", "Basic YWRtaW46YWRtaW4=", "Bearer no-dot", "Bearer .secret", "Bearer name.",
    "Bearer bootstrap-admin.wrong-secret", "Bearer does-not-exist.c2VjcmV0", "Token bootstrap-admin.x",
])
def test_bad_credentials_are_401(stack, header):
    headers = {} if header is None else {"Authorization": header}
    answer = stack.request("GET", f"{API}/virtualclusterinstances", headers=headers, key=False)
    assert status(answer, 401, "Unauthorized")["message"] == "Unauthorized"


def test_the_bootstrap_key_with_a_forged_secret_is_refused(stack):
    name, _, secret = stack.access_key.partition(".")
    status(stack.request("GET", USERS, key=f"{name}.{secret[:-1]}{'A' if secret[-1] != 'A' else 'B'}"), 401, "Unauthorized")
    status(stack.request("GET", USERS, key=f"{name}.{secret}x"), 401, "Unauthorized")
    ok(stack.request("GET", USERS))


def test_users_manage_their_own_keys_only(stack, alice):
    user, key = alice
    bob = make_user(stack, f"bob-{suffix()}")
    bob_key = make_key(stack, bob)
    # A user makes keys for themselves (spec.user defaults to the caller), never for someone else.
    own = ok(stack.request("POST", KEYS, {"metadata": {"name": f"self-{suffix()}"}}, key=key), 201)
    assert own["spec"]["user"] == user and own["spec"]["key"]
    ok(whoami(stack, own["spec"]["key"], user))
    answer = stack.request("POST", KEYS, {"metadata": {"name": f"steal-{suffix()}"}, "spec": {"user": bob}}, key=key)
    assert f'cannot create keys for user "{bob}"' in status(answer, 403, "Forbidden")["message"]
    # Lists show only one's own keys; another's key is Forbidden whatever the verb.
    listed = ok(stack.request("GET", KEYS, key=key))
    assert listed["items"] and {k["spec"]["user"] for k in listed["items"]} == {user}
    bob_name = bob_key["metadata"]["name"]
    for method, body in (("GET", None), ("DELETE", None), ("PATCH", json.dumps({"spec": {"disabled": True}}))):
        answer = stack.request(method, f"{KEYS}/{bob_name}", body, key=key, content_type=MERGE if body else None)
        assert status(answer, 403, "Forbidden")["message"].startswith(f'ownedaccesskeys.management.loft.sh "{bob_name}" is forbidden')
    ok(whoami(stack, bob_key["spec"]["key"], bob))
    # A key's user is immutable (a key cannot be handed over to someone else).
    answer = stack.request("PATCH", f"{KEYS}/{own['metadata']['name']}", json.dumps({"spec": {"user": bob}}), key=key, content_type=MERGE)
    causes = status(answer, 422, "Invalid")["details"]["causes"]
    assert causes == [{"reason": "FieldValueInvalid", "field": "spec.user", "message": "Invalid value: field is immutable"}]
    # The platform admin sees every key.
    everyone = {k["spec"]["user"] for k in ok(stack.request("GET", KEYS))["items"]}
    assert {user, bob, "admin"} <= everyone


def test_users_are_admin_managed(stack, alice):
    user, key = alice
    me = ok(stack.request("GET", f"{USERS}/{user}", key=key))
    assert me["spec"]["displayName"] == "Alice"
    assert [u["metadata"]["name"] for u in ok(stack.request("GET", USERS, key=key))["items"]] == [user]
    status(stack.request("GET", f"{USERS}/admin", key=key), 403, "Forbidden")
    status(stack.request("POST", USERS, {"metadata": {"name": f"x-{suffix()}"}}, key=key), 403, "Forbidden")
    # Nobody makes themselves an admin or joins a team.
    for patch in ({"spec": {"clusterRoles": [{"name": "loft-management-admin"}]}}, {"spec": {"teams": ["admins"]}}):
        answer = stack.request("PATCH", f"{USERS}/{user}", json.dumps(patch), key=key, content_type=MERGE)
        assert 'cannot patch resource "users"' in status(answer, 403, "Forbidden")["message"]
    status(stack.request("DELETE", f"{USERS}/{user}", key=key), 403, "Forbidden")


def test_promotion_demotion_and_deletion_of_a_user_take_effect_at_once(stack):
    user = make_user(stack, f"carol-{suffix()}")
    key = make_key(stack, user)["spec"]["key"]
    assert len(ok(stack.request("GET", USERS, key=key))["items"]) == 1
    ok(stack.request("PATCH", f"{USERS}/{user}", json.dumps({"spec": {"clusterRoles": [{"name": "loft-management-admin"}]}}),
                     content_type=MERGE))
    assert len(ok(stack.request("GET", USERS, key=key))["items"]) > 1  # a platform admin now
    ok(stack.request("POST", f"{API}/virtualclustertemplates?dryRun=All", {"metadata": {"name": "by-carol"}}, key=key), 201)
    ok(stack.request("PATCH", f"{USERS}/{user}", json.dumps({"spec": {"clusterRoles": []}}), content_type=MERGE))
    status(stack.request("POST", f"{API}/virtualclustertemplates?dryRun=All", {"metadata": {"name": "by-carol"}}, key=key), 403, "Forbidden")
    ok(stack.request("DELETE", f"{USERS}/{user}"))
    status(stack.request("GET", f"{USERS}/{user}", key=key), 401, "Unauthorized")


def test_key_of_a_team_member_acts_with_the_teams_roles(stack):
    s = suffix()
    user = make_user(stack, f"dave-{s}", teams=[f"devs-{s}"])
    key = make_key(stack, user)["spec"]["key"]
    ok(stack.request("POST", f"{API}/projects", {"metadata": {"name": f"ak-{s}"}, "spec": {
        "members": [{"kind": "Team", "name": f"devs-{s}", "clusterRole": "loft-management-project-viewer"}]}}), 201)
    assert [p["metadata"]["name"] for p in ok(stack.request("GET", f"{API}/projects", key=key))["items"]] == [f"ak-{s}"]
    ok(stack.request("GET", f"{API}/namespaces/loft-p-ak-{s}/virtualclusterinstances", key=key))
    # Leaving the team (an admin edits the user) removes the access at once.
    ok(stack.request("PATCH", f"{USERS}/{user}", json.dumps({"spec": {"teams": []}}), content_type=MERGE))
    status(stack.request("GET", f"{API}/namespaces/loft-p-ak-{s}/virtualclusterinstances", key=key), 403, "Forbidden")
