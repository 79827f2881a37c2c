"""Bearer access key -> principal. Keys are `<name>.<secret>`; only SHA-256(secret) is stored and it is
compared in constant time. A warm Lambda caches what a key resolved to for AUTH_CACHE_SECONDS (so a
read costs one DynamoDB call, not three), never past the key's ttl; a change to a key or user drops
it at once in the process that made it, and every other Lambda follows within the TTL."""
import hashlib
import hmac
import threading
import time
from dataclasses import dataclass, field
from typing import Tuple

from . import config, store
from .errors import Unauthorized
from .resources.accesskeys import digest, expired, seconds_left, split_key
from .resources.users import is_admin

_users = {}
_keys = {}
MAX_CACHED = 10000
_lock = threading.Lock()


@dataclass(frozen=True)
class Principal:
    user: str
    admin: bool = False
    teams: Tuple[str, ...] = field(default_factory=tuple)
    key_name: str = ""


def _cached(cache, key, load):
    """load() -> (value, seconds it may be kept); kept per warm Lambda, bounded in size."""
    now = time.monotonic()
    with _lock:
        hit = cache.get(key)
    if hit and hit[0] > now:
        return hit[1]
    value, seconds = load()
    with _lock:
        if len(cache) >= MAX_CACHED:
            cache.clear()
        cache[key] = (now + seconds, value)
    return value


def _user(name):
    """The user object, or None."""
    return _cached(_users, name, lambda: (store.get("users", "", name), config.AUTH_CACHE_SECONDS))


def _resolve(key):
    """((key name, user name or None), seconds the answer may be cached)."""
    name, secret = split_key(key)
    refused = ((name, None), config.AUTH_CACHE_SECONDS)
    key_obj = store.get("ownedaccesskeys", "", name) if name else None
    if key_obj is None:
        return refused
    stored = (key_obj.get("status") or {}).get("keyHash") or ""
    spec = key_obj.get("spec") or {}
    if not hmac.compare_digest(stored, digest(secret)) or spec.get("disabled") or expired(key_obj) or not spec.get("user"):
        return refused
    return (name, spec["user"]), min(config.AUTH_CACHE_SECONDS, seconds_left(key_obj))


def authenticate(authorization_header):
    """The principal for an `Authorization: Bearer <key>` header; 401 otherwise."""
    scheme, _, key = (authorization_header or "").partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise Unauthorized("Unauthorized")
    name, username = _cached(_keys, hashlib.sha256(key.encode()).hexdigest(), lambda: _resolve(key))
    user = _user(username) if username else None
    if user is None:
        raise Unauthorized("Unauthorized")
    return Principal(user=username, admin=is_admin(user), teams=tuple((user.get("spec") or {}).get("teams") or ()),
                     key_name=name)


def forget_key(name):
    """Drop what a key resolved to (after it was changed or revoked in this process)."""
    with _lock:
        for cache_key in [k for k, (_, (key_name, _)) in _keys.items() if key_name == name]:
            del _keys[cache_key]


def forget_user(user):
    """Drop the cached user (after it changed: roles, teams, created or deleted)."""
    with _lock:
        _users.pop(user, None)
