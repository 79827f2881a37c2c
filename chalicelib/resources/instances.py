"""VirtualClusterInstance: the shape users write, as on the vCluster Platform (NOTES.md)."""
from typing import List, Literal, Optional

from pydantic import Field

from .kinds import Column, Kind, register
from .meta import Model, ObjectMeta
from .status import Condition


class TemplateRef(Model):
    name: Optional[str] = Field(None, description="Name of the VirtualClusterTemplate to use.")
    version: Optional[str] = Field(None, description="Template version MAJOR.MINOR.PATCH; any part may be 'x'. Empty means newest.")
    syncOnce: Optional[bool] = Field(None, description="Force one re-sync after a template change.")


class ClusterRef(Model):
    cluster: Optional[str] = Field(None, description="Host cluster the virtual cluster runs on.")
    namespace: Optional[str] = Field(None, description="Host namespace of the virtual cluster.")
    virtualCluster: Optional[str] = Field(None, description="Name of the vcluster release.")


class UserOrTeam(Model):
    user: Optional[str] = None
    team: Optional[str] = None


class Access(Model):
    name: Optional[str] = None
    verbs: List[str] = Field(default_factory=list)
    subresources: Optional[List[str]] = None
    users: Optional[List[str]] = None
    teams: Optional[List[str]] = None


class ExtraAccessRule(Model):
    users: Optional[List[str]] = None
    teams: Optional[List[str]] = None
    clusterRole: Optional[str] = None


class VirtualClusterInstanceSpec(Model):
    displayName: Optional[str] = Field(None, description="Name shown in the UI.")
    description: Optional[str] = None
    owner: Optional[UserOrTeam] = Field(None, description="User or team that owns the instance.")
    templateRef: Optional[TemplateRef] = None
    template: Optional[dict] = Field(None, description="Inline template; exclusive with templateRef.")
    clusterRef: Optional[ClusterRef] = None
    parameters: Optional[str] = Field(None, description="YAML string of template parameter values.")
    access: Optional[List[Access]] = None
    extraAccessRules: Optional[List[ExtraAccessRule]] = None
    networkPeer: Optional[bool] = None
    external: Optional[bool] = None
    standalone: Optional[bool] = None


class VirtualClusterInstanceStatus(Model):
    phase: Optional[Literal["", "Pending", "Ready", "Sleeping", "Failed"]] = None
    reason: Optional[str] = None
    message: Optional[str] = None
    observedGeneration: Optional[int] = None
    kubernetesVersion: Optional[str] = None
    serviceUID: Optional[str] = None
    deployHash: Optional[str] = None
    conditions: Optional[List[Condition]] = None
    virtualCluster: Optional[dict] = None
    canUse: Optional[bool] = None
    canUpdate: Optional[bool] = None
    online: Optional[bool] = None


class VirtualClusterInstance(Model):
    """A virtual cluster: a Kubernetes cluster inside one namespace of a host cluster."""

    apiVersion: Optional[str] = None
    kind: Optional[str] = None
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: VirtualClusterInstanceSpec = Field(default_factory=VirtualClusterInstanceSpec)
    status: Optional[VirtualClusterInstanceStatus] = None


def _spec_changed_or_deleting(old, new):
    if old is None:
        return True
    if new["metadata"].get("deletionTimestamp") and not old["metadata"].get("deletionTimestamp"):
        return True
    return old.get("spec") != new.get("spec") or old["metadata"].get("annotations") != new["metadata"].get("annotations")


def _path(obj, *keys):
    for key in keys:
        obj = (obj or {}).get(key)
    return obj


INSTANCES = register(Kind(
    kind="VirtualClusterInstance",
    plural="virtualclusterinstances",
    singular="virtualclusterinstance",
    model=VirtualClusterInstance,
    short_names=("vci",),
    categories=("loft",),
    finalizers=("loft.sh/cleanup",),
    enqueue_on=_spec_changed_or_deleting,
    columns=(
        Column("Template", "string", "Template the instance uses", lambda o: _path(o, "spec", "templateRef", "name") or ""),
        Column("Cluster", "string", "Host cluster", lambda o: _path(o, "spec", "clusterRef", "cluster") or ""),
        Column("Phase", "string", "Lifecycle phase", lambda o: _path(o, "status", "phase") or ""),
        Column("Owner", "string", "Owning user or team", lambda o: _path(o, "spec", "owner", "user") or _path(o, "spec", "owner", "team") or ""),
        Column("Namespace", "string", "Host namespace", lambda o: _path(o, "spec", "clusterRef", "namespace") or "", priority=1),
        Column("Message", "string", "Status message", lambda o: _path(o, "status", "message") or "", priority=1),
    ),
))
