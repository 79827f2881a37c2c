"""VirtualClusterTemplate: typed parameters, versions, and rendering with `{{ .Values.x }}` only.

Rendering substitutes placeholders and nothing else: no Go template functions, no code execution.
Anything else between `{{ }}` is an ErrorRenderingTemplate.
"""
import re
from typing import List, Literal, Optional

from pydantic import Field

from .. import safeyaml
from .kinds import Column, Kind, register
from .meta import Model, ObjectMeta
from .instances import Access, UserOrTeam

VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z_][A-Za-z0-9_-]*)*$")
SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
VERSION_RANGE = re.compile(r"^(\d+|x)(\.(\d+|x))?(\.(\d+|x))?$")
PLACEHOLDER = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}", re.S)
VALUE_REF = re.compile(r"^\.Values\.([A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_][A-Za-z0-9_-]*)*)$")


class TemplateError(Exception):
    """A template or its parameters cannot be used; `reason` is the TemplateResolved condition reason."""

    def __init__(self, reason, message, causes=None):
        super().__init__(message)
        self.reason, self.message, self.causes = reason, message, causes or []


class MetadataTemplate(Model):
    labels: Optional[dict] = None
    annotations: Optional[dict] = None


class InstanceTemplate(Model):
    metadata: Optional[MetadataTemplate] = None


class Chart(Model):
    name: Optional[str] = None
    repo: Optional[str] = None
    version: Optional[str] = None


class HelmRelease(Model):
    chart: Optional[Chart] = None
    values: Optional[str] = Field(None, description="Helm values (YAML) with {{ .Values.<variable> }} placeholders.")


class SpaceTemplate(Model):
    metadata: Optional[MetadataTemplate] = None
    objects: Optional[str] = Field(None, description="Kubernetes objects (YAML) deployed into the host namespace.")


class TemplateAccess(Model):
    defaultClusterRole: Optional[str] = None
    rules: Optional[List[dict]] = None


class VirtualClusterTemplateDefinition(Model):
    metadata: Optional[MetadataTemplate] = None
    instanceTemplate: Optional[InstanceTemplate] = None
    helmRelease: Optional[HelmRelease] = None
    objects: Optional[str] = Field(None, description="Kubernetes objects (YAML) deployed inside the virtual cluster.")
    spaceTemplate: Optional[SpaceTemplate] = None
    access: Optional[TemplateAccess] = None


class AppParameter(Model):
    variable: str = Field(..., description="Name of the value in .Values; may be dotted (a.b).")
    label: Optional[str] = None
    description: Optional[str] = None
    type: Optional[Literal["string", "multiline", "boolean", "number", "password"]] = None
    options: Optional[List[str]] = None
    min: Optional[int] = None
    max: Optional[int] = None
    required: Optional[bool] = None
    defaultValue: Optional[str] = None
    placeholder: Optional[str] = None
    validation: Optional[str] = Field(None, description="Regex the value must match.")
    invalidation: Optional[str] = Field(None, description="Regex the value must not match.")
    section: Optional[str] = None


class TemplateVersion(Model):
    version: str = Field(..., description="MAJOR.MINOR.PATCH")
    template: Optional[VirtualClusterTemplateDefinition] = None
    parameters: Optional[List[AppParameter]] = None


class VirtualClusterTemplateSpec(Model):
    displayName: Optional[str] = None
    description: Optional[str] = None
    owner: Optional[UserOrTeam] = None
    template: Optional[VirtualClusterTemplateDefinition] = None
    parameters: Optional[List[AppParameter]] = None
    versions: Optional[List[TemplateVersion]] = None
    access: Optional[List[Access]] = None


class VirtualClusterTemplate(Model):
    """A reusable recipe for virtual clusters, with typed parameters and versions."""

    apiVersion: Optional[str] = None
    kind: Optional[str] = None
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: VirtualClusterTemplateSpec = Field(default_factory=VirtualClusterTemplateSpec)
    status: Optional[dict] = None


def _cause(field, message, reason="FieldValueInvalid"):
    return {"reason": reason, "field": field, "message": message}


def _check_parameters(parameters, field):
    causes, seen = [], set()
    for i, p in enumerate(parameters or []):
        where = f"{field}[{i}]"
        if not VARIABLE.match(p.get("variable", "")):
            causes.append(_cause(f"{where}.variable", f'Invalid value: "{p.get("variable")}": must be a dotted name of letters, digits, _ and -'))
        if p.get("variable") in seen:
            causes.append(_cause(f"{where}.variable", f'Duplicate value: "{p.get("variable")}"', "FieldValueDuplicate"))
        seen.add(p.get("variable"))
        for key in ("validation", "invalidation"):
            if p.get(key):
                try:
                    re.compile(p[key])
                except re.error as e:
                    causes.append(_cause(f"{where}.{key}", f'Invalid value: "{p[key]}": not a regular expression: {e}'))
        if p.get("min") is not None and p.get("max") is not None and p["min"] > p["max"]:
            causes.append(_cause(f"{where}.min", "Invalid value: min must not exceed max"))
    return causes


def _admit_template(new, old, principal):
    from ..errors import invalid

    spec = new.get("spec", {})
    causes = _check_parameters(spec.get("parameters"), "spec.parameters")
    seen = set()
    for i, version in enumerate(spec.get("versions") or []):
        if not SEMVER.match(version["version"]):
            causes.append(_cause(f"spec.versions[{i}].version", f'Invalid value: "{version["version"]}": must be MAJOR.MINOR.PATCH'))
        if version["version"] in seen:
            causes.append(_cause(f"spec.versions[{i}].version", f'Duplicate value: "{version["version"]}"', "FieldValueDuplicate"))
        seen.add(version["version"])
        causes += _check_parameters(version.get("parameters"), f"spec.versions[{i}].parameters")
    if causes:
        raise invalid(TEMPLATES.kind, new["metadata"]["name"], TEMPLATES.resource, causes)


def resolve_version(template_spec, wanted):
    """(version or "", template definition, parameters) for a templateRef.version; newest match wins."""
    versions = template_spec.get("versions") or []
    if not versions:
        if wanted:
            raise TemplateError("VersionNotFound", f'template has no versions, but version "{wanted}" was requested')
        return "", template_spec.get("template") or {}, template_spec.get("parameters") or []
    pattern = wanted or "x"
    if not VERSION_RANGE.match(pattern):
        raise TemplateError("VersionError", f'invalid template version "{wanted}": use MAJOR.MINOR.PATCH, any part may be x')
    parts = (pattern.split(".") + ["x", "x"])[:3]
    candidates = []
    for version in versions:
        numbers = SEMVER.match(version["version"])
        if numbers and all(p == "x" or int(p) == int(n) for p, n in zip(parts, numbers.groups())):
            candidates.append((tuple(int(n) for n in numbers.groups()), version))
    if not candidates:
        raise TemplateError("VersionNotFound", f'no template version matches "{wanted}"')
    best = max(candidates, key=lambda c: c[0])[1]
    return best["version"], best.get("template") or {}, best.get("parameters") or []


def _set_path(values, dotted, value):
    *parents, leaf = dotted.split(".")
    for part in parents:
        values = values.setdefault(part, {})
    values[leaf] = value


def _get_path(values, dotted):
    for part in dotted.split("."):
        if not isinstance(values, dict) or part not in values:
            return None
        values = values[part]
    return values


def _leaves(values, prefix=""):
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            yield from _leaves(value, path + ".")
        else:
            yield path


def _as_text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def check_parameters(declared, text, field="spec.parameters"):
    """Parse the instance's parameters YAML and check every value against its declaration.

    Returns the typed values (defaults filled, dotted variables nested); raises TemplateError
    (ErrorSyncingParameters) with one cause per problem, each naming `spec.parameters.<variable>`.
    """
    try:
        given = safeyaml.load(text) if text and text.strip() else {}
    except Exception as e:
        raise TemplateError("ErrorSyncingParameters", f"parameters are not valid YAML: {safeyaml.first_line(e)}",
                            [_cause(field, f"Invalid value: parameters are not valid YAML: {safeyaml.first_line(e)}")]) from e
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise TemplateError("ErrorSyncingParameters", "parameters must be a YAML mapping",
                            [_cause(field, "Invalid value: parameters must be a YAML mapping of variable: value")])
    causes, values = [], {}
    names = {p["variable"] for p in declared}
    for leaf in _leaves(given):
        if leaf not in names and not any(leaf.startswith(n + ".") for n in names):
            causes.append(_cause(f"{field}.{leaf}", f'Invalid value: "{leaf}": the template declares no such parameter', "FieldValueNotSupported"))
    for p in declared:
        name, kind = p["variable"], p.get("type") or "string"
        where = f"{field}.{name}"
        value = _get_path(given, name)
        if value is None or value == "":
            value = p.get("defaultValue")
        if value is None or value == "":
            if p.get("required"):
                causes.append(_cause(where, "Required value", "FieldValueRequired"))
            continue
        text_value = _as_text(value)
        if p.get("options") and text_value not in p["options"]:
            causes.append(_cause(where, f'Unsupported value: "{text_value}": supported values: ' + ", ".join(f'"{o}"' for o in p["options"]), "FieldValueNotSupported"))
            continue
        if kind == "boolean":
            if text_value.lower() not in ("true", "false"):
                causes.append(_cause(where, f'Invalid value: "{text_value}": must be true or false'))
                continue
            value = text_value.lower() == "true"
        elif kind == "number":
            try:
                value = float(text_value) if any(c in text_value for c in ".eE") else int(text_value)
            except ValueError:
                causes.append(_cause(where, f'Invalid value: "{text_value}": must be a number'))
                continue
            if p.get("min") is not None and value < p["min"]:
                causes.append(_cause(where, f"Invalid value: {text_value}: must be greater than or equal to {p['min']}"))
            if p.get("max") is not None and value > p["max"]:
                causes.append(_cause(where, f"Invalid value: {text_value}: must be less than or equal to {p['max']}"))
        elif not p.get("options"):
            if not isinstance(value, str) and kind in ("string", "multiline", "password") and isinstance(value, (dict, list)):
                causes.append(_cause(where, "Invalid value: must be a scalar"))
                continue
            value = text_value
            if p.get("validation") and not re.search(p["validation"], value):
                causes.append(_cause(where, f'Invalid value: "{value}": does not match the validation "{p["validation"]}"'))
            if p.get("invalidation") and re.search(p["invalidation"], value):
                causes.append(_cause(where, f'Invalid value: "{value}": matches the invalidation "{p["invalidation"]}"'))
        _set_path(values, name, value)
    if causes:
        raise TemplateError("ErrorSyncingParameters", "; ".join(f"{c['field']}: {c['message']}" for c in causes), causes)
    return values


def render_text(text, values):
    """Substitute `{{ .Values.a.b }}`; any other template action is an error, never executed."""
    def replace(match):
        expression = match.group(1)
        ref = VALUE_REF.match(expression)
        if not ref:
            raise TemplateError("ErrorRenderingTemplate", f'unsupported template expression "{{{{ {expression} }}}}": only {{{{ .Values.<name> }}}} is allowed')
        value = _get_path(values, ref.group(1))
        if value is None:
            raise TemplateError("ErrorRenderingTemplate", f'value "{ref.group(1)}" is not set')
        if isinstance(value, (dict, list)):
            raise TemplateError("ErrorRenderingTemplate", f'value "{ref.group(1)}" is not a scalar')
        return _as_text(value)
    return PLACEHOLDER.sub(replace, text or "")


def render(definition, values):
    """A copy of the template definition with every string rendered."""
    if isinstance(definition, dict):
        return {k: render(v, values) for k, v in definition.items()}
    if isinstance(definition, list):
        return [render(v, values) for v in definition]
    if isinstance(definition, str):
        return render_text(definition, values)
    return definition


TEMPLATES = register(Kind(
    kind="VirtualClusterTemplate",
    plural="virtualclustertemplates",
    singular="virtualclustertemplate",
    model=VirtualClusterTemplate,
    namespaced=False,
    short_names=("vctemplate",),
    categories=("loft",),
    admit=_admit_template,
    columns=(
        Column("Display Name", "string", "Name shown in the UI", lambda o: (o.get("spec") or {}).get("displayName") or ""),
        Column("Versions", "string", "Available versions",
               lambda o: ",".join(v["version"] for v in (o.get("spec") or {}).get("versions") or []) or "-"),
    ),
))
