"""VirtualClusterInstance: the shape users write, as on the vCluster Platform (NOTES.md)."""
from typing import List, Literal, Optional

from pydantic import Field

from . import kubeconfigs
from .kinds import Column, Kind, register
from .meta import Model, Resource
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


class VirtualClusterInstance(Resource):
    """A virtual cluster: a Kubernetes cluster inside one namespace of a host cluster."""

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




def _cause(field, message, reason="FieldValueInvalid"):
    return {"reason": reason, "field": field, "message": message}


def _fill_cluster_ref(new, old, project_name, allowed_clusters):
    """Default clusterRef as the platform does; once set it is immutable; unknown clusters are refused."""
    from .. import config

    name = new["metadata"]["name"]
    ref = new["spec"].get("clusterRef") or {}
    previous = ((old or {}).get("spec") or {}).get("clusterRef") or {}
    explicit = [c for c in allowed_clusters if c != "*"]
    defaults = {"cluster": previous.get("cluster") or (explicit[0] if explicit else config.DEFAULT_CLUSTER),
                "namespace": previous.get("namespace") or f"loft-{project_name}-v-{name}",
                "virtualCluster": previous.get("virtualCluster") or name}
    causes = []
    for key, value in defaults.items():
        if previous.get(key) and ref.get(key) and ref[key] != previous[key]:
            causes.append(_cause(f"spec.clusterRef.{key}", "Invalid value: field is immutable"))
        ref[key] = ref.get(key) or value
    if ref["cluster"] not in config.HOST_CLUSTERS:
        causes.append(_cause("spec.clusterRef.cluster", f'Unsupported value: "{ref["cluster"]}": supported values: '
                             + ", ".join(f'"{c}"' for c in config.HOST_CLUSTERS), "FieldValueNotSupported"))
    elif allowed_clusters and "*" not in allowed_clusters and ref["cluster"] not in allowed_clusters:
        causes.append(_cause("spec.clusterRef.cluster", f'Forbidden: project "{project_name}" does not allow cluster "{ref["cluster"]}"', "FieldValueForbidden"))
    if len(ref["namespace"]) > 63:
        causes.append(_cause("metadata.name", f'Invalid value: "{name}": the host namespace "{ref["namespace"]}" would exceed 63 characters'))
    new["spec"]["clusterRef"] = ref
    return causes


def resolve_template(spec):
    """(version, template definition, parameter declarations) the instance uses; raises TemplateError."""
    from .. import store
    from .templates import TemplateError, resolve_version

    ref = spec.get("templateRef") or {}
    if not ref.get("name"):
        return "", spec.get("template") or {}, []
    template = store.get("virtualclustertemplates", "", ref["name"])
    if template is None:
        raise TemplateError("TemplateNotFound", f'virtualclustertemplate "{ref["name"]}" not found')
    return resolve_version(template.get("spec") or {}, ref.get("version"))


def _inline_template_causes(template):
    """An inline spec.template must have a template's shape (the model is free-form on the instance)."""
    from pydantic import ValidationError

    from .templates import VirtualClusterTemplateDefinition

    if template is None:
        return []
    try:
        VirtualClusterTemplateDefinition.model_validate(template, strict=True)
    except ValidationError as e:
        return [_cause("spec.template." + ".".join(str(p) for p in err["loc"]), f"Invalid value: {err['msg']}")
                for err in e.errors()]
    return []


def _quota_causes(new, project):
    from .. import objects

    quotas = (project.get("spec") or {}).get("quotas") or {}
    limits = {("project", k): v for k, v in (quotas.get("project") or {}).items()}
    limits.update({("user", k): v for k, v in (quotas.get("user") or {}).items()})
    limits = {key: value for key, value in limits.items() if key[1] in ("virtualclusterinstances", "virtualclusterinstances.active")}
    if not limits:
        return []
    existing, _, _ = objects.list_objects(INSTANCES, new["metadata"]["namespace"])
    owner = (new["spec"].get("owner") or {}).get("user")
    causes = []
    for (scope, key), limit in sorted(limits.items()):
        counted = [o for o in existing if scope == "project" or (o["spec"].get("owner") or {}).get("user") == owner]
        if key.endswith(".active"):
            counted = [o for o in counted if (o.get("status") or {}).get("phase") != "Sleeping"]
        if len(counted) + 1 > limit:
            who = f"project {project['metadata']['name']}" if scope == "project" else f"user {owner}"
            causes.append(f"cannot create virtualclusterinstance, because {scope} {key} limit of {limit} would be exceeded ({who})")
    return causes


def _admit(new, old, principal):
    """Project, template, parameter, owner, cluster and quota rules for a create or update."""
    from .. import authz
    from ..errors import Forbidden, invalid
    from .projects import PROJECT_ADMIN, project_of
    from .templates import TemplateError, check_parameters, render_instance

    if old is not None and new["spec"] == old.get("spec"):
        return
    namespace, name = new["metadata"]["namespace"], new["metadata"]["name"]
    project_name = project_of(namespace)
    project = authz.project(project_name) if project_name else None
    if project is None:
        raise Forbidden(f'virtualclusterinstances.management.loft.sh "{name}" is forbidden: namespace "{namespace}" '
                        f'does not belong to a project (create project "{project_name or namespace}" first)')
    pspec = project.get("spec") or {}
    spec = new["spec"]
    manager = principal.admin or authz.project_role(principal, namespace) == PROJECT_ADMIN
    if not (spec.get("owner") or {}).get("user") and not (spec.get("owner") or {}).get("team"):
        spec["owner"] = ((old or {}).get("spec") or {}).get("owner") or {"user": principal.user}
    owner_changed = old is None or spec["owner"] != (old.get("spec") or {}).get("owner")
    if owner_changed and not manager and spec["owner"] not in ({"user": principal.user},) + tuple({"team": t} for t in principal.teams):
        raise Forbidden(f'virtualclusterinstances.management.loft.sh "{name}" is forbidden: only admins may set another owner than "{principal.user}"')
    if spec.get("template") is not None and spec.get("templateRef"):
        raise Forbidden(f'virtualclusterinstances.management.loft.sh "{name}" is forbidden: spec.template and spec.templateRef cannot be used together')
    ref_name = (spec.get("templateRef") or {}).get("name")
    if not ref_name and not manager and not (pspec.get("requireTemplate") or {}).get("disabled"):
        raise Forbidden(f'virtualclusterinstances.management.loft.sh "{name}" is forbidden: project "{project_name}" requires a template (spec.templateRef.name)')
    allowed = [t["name"] for t in pspec.get("allowedTemplates") or []]
    if ref_name and allowed and "*" not in allowed and ref_name not in allowed:
        raise Forbidden(f'virtualclusterinstances.management.loft.sh "{name}" is forbidden: project "{project_name}" does not allow template "{ref_name}"')
    causes = _fill_cluster_ref(new, old, project_name, [c["name"] for c in pspec.get("allowedClusters") or []])
    shape = _inline_template_causes(spec.get("template"))
    causes += shape
    definition = {}
    field = {"TemplateNotFound": "spec.templateRef.name", "VersionError": "spec.templateRef.version",
             "VersionNotFound": "spec.templateRef.version"}
    try:
        _, definition, declared = resolve_template(spec)
        values = check_parameters(declared, spec.get("parameters"))
        if not shape:
            render_instance(definition, values, new)  # refuse now what the worker could never deploy
    except TemplateError as e:
        causes += e.causes or [_cause(field.get(e.reason) or ("spec.templateRef" if ref_name else "spec.template"),
                                      f"Invalid value: {e.reason}: {e.message}")]
    if causes:
        raise invalid(INSTANCES.kind, name, INSTANCES.resource, causes)
    if old is None:
        quota = _quota_causes(new, project)
        if quota:
            raise Forbidden(f"metadata.name: Forbidden: {quota[0]}")
        meta = ((definition.get("instanceTemplate") or {}).get("metadata")) or {}
        for key in ("labels", "annotations"):
            if meta.get(key):
                new["metadata"][key] = {**meta[key], **(new["metadata"].get(key) or {})}


INSTANCES = register(Kind(
    kind="VirtualClusterInstance",
    plural="virtualclusterinstances",
    singular="virtualclusterinstance",
    model=VirtualClusterInstance,
    short_names=("vci",),
    categories=("loft",),
    finalizers=("loft.sh/cleanup",),
    enqueue_on=_spec_changed_or_deleting,
    admit=_admit,
    policy="project",
    subresources={"kubeconfig": kubeconfigs.issue},
    columns=(
        Column("Template", "string", "Template the instance uses", lambda o: _path(o, "spec", "templateRef", "name") or ""),
        Column("Cluster", "string", "Host cluster", lambda o: _path(o, "spec", "clusterRef", "cluster") or ""),
        Column("Phase", "string", "Lifecycle phase", lambda o: _path(o, "status", "phase") or ""),
        Column("Owner", "string", "Owning user or team", lambda o: _path(o, "spec", "owner", "user") or _path(o, "spec", "owner", "team") or ""),
        Column("Namespace", "string", "Host namespace", lambda o: _path(o, "spec", "clusterRef", "namespace") or "", priority=1),
        Column("Message", "string", "Status message", lambda o: _path(o, "status", "message") or "", priority=1),
    ),
))
