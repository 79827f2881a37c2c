"""User: who a key acts as; `loft-management-admin` in clusterRoles makes a platform admin."""
from typing import List, Optional

from pydantic import Field

from .kinds import Column, Kind, register
from .meta import Model, Resource

PLATFORM_ADMIN = "loft-management-admin"


class ClusterRoleRef(Model):
    name: str


class UserSpec(Model):
    username: Optional[str] = None
    displayName: Optional[str] = None
    email: Optional[str] = None
    teams: Optional[List[str]] = Field(None, description="Teams the user belongs to.")
    clusterRoles: Optional[List[ClusterRoleRef]] = Field(None, description="loft-management-admin = platform admin.")


class User(Resource):
    spec: UserSpec = Field(default_factory=UserSpec)
    status: Optional[dict] = None


def is_admin(user):
    return any(r.get("name") == PLATFORM_ADMIN for r in (user.get("spec") or {}).get("clusterRoles") or [])


def _forget(obj):
    from .. import auth

    auth.forget_user(obj["metadata"]["name"])


USERS = register(Kind(
    kind="User",
    plural="users",
    singular="user",
    model=User,
    namespaced=False,
    categories=("loft",),
    policy="self-read",
    owner_of=lambda obj: (obj["metadata"]["name"], None),
    on_written=_forget,
    columns=(
        Column("Display Name", "string", "Name shown in the UI", lambda o: (o.get("spec") or {}).get("displayName") or ""),
        Column("Admin", "boolean", "Platform admin", lambda o: is_admin(o)),
    ),
))
