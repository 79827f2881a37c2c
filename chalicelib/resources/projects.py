"""Project: owns namespace `loft-p-<name>`; members with roles, allowed templates and clusters, quotas."""
from typing import Dict, List, Literal, Optional

from pydantic import Field

from .. import config
from .instances import UserOrTeam
from .kinds import Column, Kind, register
from .meta import Model, Resource

PROJECT_ADMIN = "loft-management-project-admin"
PROJECT_USER = "loft-management-project-user"
PROJECT_VIEWER = "loft-management-project-viewer"


class Member(Model):
    kind: Literal["User", "Team"] = "User"
    name: str
    clusterRole: Optional[Literal["loft-management-project-admin", "loft-management-project-user", "loft-management-project-viewer"]] = Field(
        None, description="Role in the project; defaults to loft-management-project-user.")


class AllowedTemplate(Model):
    kind: Optional[Literal["VirtualClusterTemplate"]] = None
    name: str = Field(..., description="Template name, or * for any.")
    isDefault: Optional[bool] = None


class AllowedCluster(Model):
    name: str = Field(..., description="Host cluster name, or * for any.")


class RequireTemplate(Model):
    disabled: Optional[bool] = Field(None, description="Let members create instances without a template.")


class Quotas(Model):
    project: Optional[Dict[str, int]] = Field(None, description="e.g. virtualclusterinstances: 5")
    user: Optional[Dict[str, int]] = Field(None, description="Per user, e.g. virtualclusterinstances: 2")


class ProjectSpec(Model):
    displayName: Optional[str] = None
    description: Optional[str] = None
    owner: Optional[UserOrTeam] = None
    members: Optional[List[Member]] = None
    allowedTemplates: Optional[List[AllowedTemplate]] = None
    allowedClusters: Optional[List[AllowedCluster]] = None
    requireTemplate: Optional[RequireTemplate] = None
    quotas: Optional[Quotas] = None


class Project(Resource):
    """A tenant: who may do what in its namespace, and with which templates and clusters."""

    spec: ProjectSpec = Field(default_factory=ProjectSpec)
    status: Optional[dict] = None


def project_of(namespace):
    """The project name a namespace belongs to by convention, or None."""
    prefix = config.PROJECT_NAMESPACE_PREFIX
    if namespace and namespace.startswith(prefix) and len(namespace) > len(prefix):
        return namespace[len(prefix):]
    return None


def role_of(project, principal):
    """The principal's clusterRole in a project object, or None (the owner is a project admin)."""
    spec = project.get("spec") or {}
    owner = spec.get("owner") or {}
    if owner.get("user") == principal.user or (owner.get("team") and owner.get("team") in principal.teams):
        return PROJECT_ADMIN
    roles = [m.get("clusterRole") or PROJECT_USER for m in spec.get("members") or []
             if (m.get("kind", "User") == "User" and m["name"] == principal.user)
             or (m.get("kind") == "Team" and m["name"] in principal.teams)]
    for role in (PROJECT_ADMIN, PROJECT_USER, PROJECT_VIEWER):
        if role in roles:
            return role
    return None


def _admit_project(new, old, principal):
    from ..errors import invalid

    limit = 63 - len(config.PROJECT_NAMESPACE_PREFIX)
    if len(new["metadata"]["name"]) > limit:
        raise invalid(PROJECTS.kind, new["metadata"]["name"], PROJECTS.resource, [{
            "reason": "FieldValueTooLong", "field": "metadata.name",
            "message": f"Too long: may not be more than {limit} characters (its namespace adds {config.PROJECT_NAMESPACE_PREFIX!r})"}])


def _forget(obj):
    from .. import authz

    authz.forget_project(obj)


PROJECTS = register(Kind(
    kind="Project",
    plural="projects",
    singular="project",
    model=Project,
    namespaced=False,
    categories=("loft",),
    admit=_admit_project,
    policy="members-read",
    on_written=_forget,
    columns=(
        Column("Display Name", "string", "Name shown in the UI", lambda o: (o.get("spec") or {}).get("displayName") or ""),
        Column("Namespace", "string", "Namespace of the project", lambda o: config.PROJECT_NAMESPACE_PREFIX + o["metadata"]["name"]),
        Column("Members", "integer", "Number of members", lambda o: len((o.get("spec") or {}).get("members") or [])),
    ),
))
