"""OwnedAccessKey: bearer keys users manage for themselves. The key is `<name>.<secret>`: auth reads
the object by name (one GetItem) and compares SHA-256(secret) with the stored hash in constant time.
The key is returned once, by create; only its hash is stored (status.keyHash). Keys are never
cached, so revoking (DELETE) or disabling one takes effect on the next request."""
import hashlib
import secrets
from datetime import datetime, timezone
from typing import Optional

from pydantic import Field

from .kinds import Column, Kind, register
from .meta import Model, Resource


class OwnedAccessKeySpec(Model):
    user: Optional[str] = Field(None, description="User the key acts as; defaults to the caller.")
    displayName: Optional[str] = None
    description: Optional[str] = None
    ttl: Optional[int] = Field(None, description="Seconds after creation when the key stops working.")
    disabled: Optional[bool] = Field(None, description="A disabled key is refused at once.")
    key: Optional[str] = Field(None, description="The key, returned once by create; never stored.")


class OwnedAccessKeyStatus(Model):
    keyHash: Optional[str] = None
    lastActivity: Optional[str] = None


class OwnedAccessKey(Resource):
    spec: OwnedAccessKeySpec = Field(default_factory=OwnedAccessKeySpec)
    status: Optional[OwnedAccessKeyStatus] = None


def digest(secret):
    return hashlib.sha256(secret.encode()).hexdigest()


def split_key(key):
    """(name, secret) of a presented key, or (None, None)."""
    name, dot, secret = key.partition(".")
    return (name, secret) if dot and name and secret else (None, None)


def seconds_left(key_obj, now=None):
    """Seconds until the key's ttl runs out (infinity without a ttl; negative once expired)."""
    ttl = (key_obj.get("spec") or {}).get("ttl")
    if not ttl:
        return float("inf")
    created = datetime.strptime(key_obj["metadata"]["creationTimestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    return ttl - ((now or datetime.now(timezone.utc)) - created).total_seconds()


def expired(key_obj, now=None):
    return seconds_left(key_obj, now) < 0


def _admit(new, old, principal):
    from ..errors import Forbidden

    spec = new.setdefault("spec", {})
    spec.pop("key", None)
    if old is None:
        spec["user"] = spec.get("user") or principal.user
        if spec["user"] != principal.user and not principal.admin:
            raise Forbidden(f'ownedaccesskeys.management.loft.sh is forbidden: User "{principal.user}" cannot create keys for user "{spec["user"]}"')
        secret = secrets.token_urlsafe(32)
        spec["key"] = f'{new["metadata"]["name"]}.{secret}'
        new["status"] = {"keyHash": digest(secret)}
    elif spec.get("user") != (old.get("spec") or {}).get("user"):
        from ..errors import invalid

        raise invalid(ACCESS_KEYS.kind, new["metadata"]["name"], ACCESS_KEYS.resource,
                      [{"reason": "FieldValueInvalid", "field": "spec.user", "message": "Invalid value: field is immutable"}])


def _forget(obj):
    from .. import auth

    auth.forget_key(obj["metadata"]["name"])


ACCESS_KEYS = register(Kind(
    kind="OwnedAccessKey",
    plural="ownedaccesskeys",
    singular="ownedaccesskey",
    model=OwnedAccessKey,
    namespaced=False,
    categories=("loft",),
    admit=_admit,
    policy="self",
    write_only=(("spec", "key"),),
    owner_of=lambda obj: ((obj.get("spec") or {}).get("user"), None),
    on_written=_forget,
    columns=(
        Column("User", "string", "User the key acts as", lambda o: (o.get("spec") or {}).get("user") or ""),
        Column("Disabled", "boolean", "Refused when true", lambda o: bool((o.get("spec") or {}).get("disabled"))),
        Column("TTL", "integer", "Lifetime in seconds", lambda o: (o.get("spec") or {}).get("ttl") or 0),
    ),
))
