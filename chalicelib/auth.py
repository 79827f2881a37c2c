"""Bearer access key -> principal. Keys are `<name>.<secret>`; only SHA-256(secret) is stored and it is
compared in constant time. Lookups are cached briefly per warm Lambda; revoking a key drops it at
once in this process and within AUTH_CACHE_SECONDS everywhere else."""
import hashlib
import hmac
import threading
import time
from dataclasses import dataclass, field
from typing import Tuple

from . import config, store
from .errors import Unauthorized
from .resources.accesskeys import digest, expired, split_key
from .resources.users import is_admin

_cache = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class Principal:
    user: str
    admin: bool = False
    teams: Tuple[str, ...] = field(default_factory=tuple)
    key_name: str = ""


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
    user = store.get("users", "", spec["user"])
    if user is None:
        return None
    return Principal(user=spec["user"], admin=is_admin(user), teams=tuple((user.get("spec") or {}).get("teams") or ()), key_name=name)


def authenticate(authorization_header):
    """The principal for an `Authorization: Bearer <key>` header; 401 otherwise."""
    scheme, _, key = (authorization_header or "").partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise Unauthorized("Unauthorized")
    cache_key = hashlib.sha256(key.encode()).hexdigest()
    now = time.monotonic()
    with _lock:
        hit = _cache.get(cache_key)
    if hit and hit[0] > now:
        principal = hit[1]
    else:
        principal = _resolve(key)
        with _lock:
            _cache[cache_key] = (now + config.AUTH_CACHE_SECONDS, principal)
    if principal is None:
        raise Unauthorized("Unauthorized")
    return principal


def forget(key_name):
    """Drop cached lookups of a key (after it was changed or revoked in this process)."""
    with _lock:
        for cache_key in [k for k, (_, p) in _cache.items() if p is not None and p.key_name == key_name]:
            del _cache[cache_key]
