"""Bearer access key -> principal. Keys are stored only as SHA-256 hashes and compared in constant time."""
import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Tuple

from . import config, store
from .errors import Unauthorized

KEY_PK = "accesskey#"
_cache = {}
_cache_lock = threading.Lock()


@dataclass(frozen=True)
class Principal:
    user: str
    admin: bool = False
    teams: Tuple[str, ...] = field(default_factory=tuple)
    key_name: str = ""


def hash_key(key):
    return hashlib.sha256(key.encode()).hexdigest()


def save_key(key, principal):
    """Store a key's hash and the principal it acts as (never the key itself)."""
    digest = hash_key(key)
    store.put_raw({
        "pk": {"S": KEY_PK}, "sk": {"S": digest}, "hash": {"S": digest},
        "principal": {"S": json.dumps({"user": principal.user, "admin": principal.admin,
                                       "teams": list(principal.teams), "key_name": principal.key_name})},
    })


def _lookup(digest):
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(digest)
        if hit and hit[0] > now:
            return hit[1]
    item = store.get_raw(KEY_PK, digest)
    principal = None
    if item and not item.get("disabled", {}).get("BOOL") and hmac.compare_digest(item["hash"]["S"], digest):
        data = json.loads(item["principal"]["S"])
        principal = Principal(user=data["user"], admin=data.get("admin", False),
                              teams=tuple(data.get("teams", ())), key_name=data.get("key_name", ""))
    with _cache_lock:
        _cache[digest] = (now + config.AUTH_CACHE_SECONDS, principal)
    return principal


def authenticate(authorization_header):
    """The principal for an `Authorization: Bearer <key>` header; 401 otherwise."""
    scheme, _, key = (authorization_header or "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthorized("Unauthorized")
    principal = _lookup(hash_key(key.strip()))
    if principal is None:
        raise Unauthorized("Unauthorized")
    return principal
