"""Bearer access key -> principal. Keys are `<name>.<secret>`; only SHA-256(secret) is stored and it is
compared in constant time. The key object is read on every request (one consistent GetItem), so a
revoked, disabled or expired key is refused at once by every Lambda; only the user it acts as (roles,
teams) is cached briefly per warm Lambda, and dropped at once in the process that changes the user."""
import hmac
import threading
import time
from dataclasses import dataclass, field
from typing import Tuple

from . import config, store
from .errors import Unauthorized
from .resources.accesskeys import digest, expired, split_key
from .resources.users import is_admin

_users = {}
MAX_CACHED = 10000
_lock = threading.Lock()


@dataclass(frozen=True)
class Principal:
    user: str
    admin: bool = False
    teams: Tuple[str, ...] = field(default_factory=tuple)
    key_name: str = ""


def _user(name):
    """The user object (cached briefly in a warm Lambda), or None."""
    now = time.monotonic()
    with _lock:
        hit = _users.get(name)
    if hit and hit[0] > now:
        return hit[1]
    obj = store.get("users", "", name)
    with _lock:
        if len(_users) >= MAX_CACHED:
            _users.clear()
        _users[name] = (now + config.AUTH_CACHE_SECONDS, obj)
    return obj


def _resolve(key):
    name, secret = split_key(key)
    if not name:
        return None
    key_obj = store.get("ownedaccesskeys", "", name)
    if key_obj is None:
        return None
    stored = (key_obj.get("status") or {}).get("keyHash") or ""
    if not hmac.compare_digest(stored, digest(secret)):
        return None
    spec = key_obj.get("spec") or {}
    if spec.get("disabled") or expired(key_obj) or not spec.get("user"):
        return None
    user = _user(spec["user"])
    if user is None:
        return None
    return Principal(user=spec["user"], admin=is_admin(user), teams=tuple((user.get("spec") or {}).get("teams") or ()), key_name=name)


def authenticate(authorization_header):
    """The principal for an `Authorization: Bearer <key>` header; 401 otherwise."""
    scheme, _, key = (authorization_header or "").partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise Unauthorized("Unauthorized")
    principal = _resolve(key)
    if principal is None:
        raise Unauthorized("Unauthorized")
    return principal


def forget_user(user):
    """Drop the cached user (after it changed: roles, teams, created or deleted)."""
    with _lock:
        _users.pop(user, None)
