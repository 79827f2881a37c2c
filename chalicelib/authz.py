"""Who may do what. Each kind names a policy; a policy turns (principal, verb, scope) into either a
refusal (Forbidden, worded like kube-apiserver's RBAC) or a predicate that objects must pass."""
import threading
import time

from . import config, store
from .errors import Forbidden
from .resources.projects import PROJECT_ADMIN, PROJECT_USER, PROJECT_VIEWER, project_of, role_of

READ = ("get", "list", "watch")
ALL = None  # "no object-level restriction"
_projects = {}
_lock = threading.Lock()


def project(name):
    """The project object (cached briefly in a warm Lambda), or None."""
    now = time.monotonic()
    with _lock:
        hit = _projects.get(name)
        if hit and hit[0] > now:
            return hit[1]
    obj = store.get("projects", "", name)
    with _lock:
        _projects[name] = (now + config.AUTH_CACHE_SECONDS, obj)
    return obj


def forget_project(obj):
    with _lock:
        _projects.pop(obj["metadata"]["name"], None)


def project_role(principal, namespace):
    name = project_of(namespace)
    found = project(name) if name else None
    return role_of(found, principal) if found else None


def owns(kind, principal, obj):
    user, team = kind.owner_of(obj)
    return (user is not None and user == principal.user) or (team is not None and team in principal.teams)


def forbidden(kind, principal, verb, namespace=None, name=None):
    subject = f'{kind.resource} "{name}"' if name else kind.resource
    scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    return Forbidden(f'{subject} is forbidden: User "{principal.user}" cannot {verb} resource "{kind.plural}" '
                     f'in API group "{config.GROUP}" {scope}',
                     {"name": name or "", "group": config.GROUP, "kind": kind.plural})


def _project_policy(kind, principal, verb, namespace):
    if namespace is None:
        if verb not in READ:
            return "none"
        return lambda obj: project_role(principal, obj["metadata"].get("namespace")) is not None
    role = project_role(principal, namespace)
    if role == PROJECT_ADMIN:
        return ALL
    if role == PROJECT_USER:
        return ALL if verb in READ + ("create",) else (lambda obj: owns(kind, principal, obj))
    if role == PROJECT_VIEWER and verb in READ:
        return ALL
    return "none"


def _admin_writes(kind, principal, verb, namespace):
    return ALL if verb in READ else "none"


def _members_read(kind, principal, verb, namespace):
    if verb not in READ:
        return "none"
    return lambda obj: role_of(obj, principal) is not None


def _self(kind, principal, verb, namespace):
    return lambda obj: owns(kind, principal, obj)


def _self_read(kind, principal, verb, namespace):
    return _self(kind, principal, verb, namespace) if verb in READ else "none"


POLICIES = {"project": _project_policy, "admin-writes": _admin_writes, "members-read": _members_read,
            "self": _self, "self-read": _self_read}


def check(principal, kind, verb, namespace=None, name=None):
    """Raise Forbidden if `verb` is never allowed here; else a predicate objects must pass (None = all)."""
    if principal.admin:
        return ALL
    decision = POLICIES[kind.policy](kind, principal, verb, namespace)
    if decision == "none":
        raise forbidden(kind, principal, verb, namespace, name)
    return decision


def require(predicate, kind, principal, verb, obj):
    """Object-level check: Forbidden unless the object passes the predicate from check()."""
    if predicate is not None and not predicate(obj):
        raise forbidden(kind, principal, verb, obj["metadata"].get("namespace"), obj["metadata"]["name"])
