"""VirtualClusterTemplate: typed parameters, versions, and rendering with `{{ .Values.x }}` only.

Rendering substitutes placeholders and nothing else: no Go template functions, no code execution.
Anything else between `{{ }}` is an ErrorRenderingTemplate.
"""
import re
from typing import List, Literal, Optional

from pydantic import Field

from .. import safeyaml
from .kinds import Column, Kind, register
from .meta import Model, Resource
from .instances import Access, UserOrTeam

VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z_][A-Za-z0-9_-]*)*$")
SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
VERSION_RANGE = re.compile(r"^(\d+|x)(\.(\d+|x))?(\.(\d+|x))?$")
PLACEHOLDER = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}", re.S)
VALUE_REF = re.compile(r"^\.Values\.([A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_][A-Za-z0-9_-]*)*)$")
NUMBER = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$")
BUILTIN = "loft"  # .Values.loft.* are the platform's built-in values, not parameters


class _ParametersLoader(safeyaml.BoundedLoader):
    """Safe YAML where every scalar but null stays the text written: the declared type decides, so
    `version: 1.20` stays "1.20" for a string and `010` is not read as octal."""

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag == "tag:yaml.org,2002:null"]
        for first, resolvers in safeyaml.BoundedLoader.yaml_implicit_resolvers.items()
    }


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


class VirtualClusterTemplate(Resource):
    """A reusable recipe for virtual clusters, with typed parameters and versions."""

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
        elif p["variable"].split(".")[0] == BUILTIN:
            causes.append(_cause(f"{where}.variable", f'Invalid value: "{p["variable"]}": .Values.{BUILTIN} is reserved for built-in values'))
        if p.get("variable") in seen:
            causes.append(_cause(f"{where}.variable", f'Duplicate value: "{p.get("variable")}"', "FieldValueDuplicate"))
        seen.add(p.get("variable"))
        bad_regex = False
        for key in ("validation", "invalidation"):
            if p.get(key):
                try:
                    re.compile(p[key])
                except re.error as e:
                    bad_regex = True
                    causes.append(_cause(f"{where}.{key}", f'Invalid value: "{p[key]}": not a regular expression: {e}'))
        if p.get("min") is not None and p.get("max") is not None and p["min"] > p["max"]:
            causes.append(_cause(f"{where}.min", "Invalid value: min must not exceed max"))
        elif not bad_regex and p.get("defaultValue") not in (None, ""):
            _, problems = _check_value(p, p["defaultValue"], f"{where}.defaultValue")
            causes += problems
    return causes


def _check_placeholders(definition, field):
    """Causes for every `{{ }}` in the definition's strings that rendering would refuse (never renderable)."""
    if isinstance(definition, dict):
        return [c for k, v in definition.items() for c in _check_placeholders(v, f"{field}.{k}")]
    if isinstance(definition, list):
        return [c for i, v in enumerate(definition) for c in _check_placeholders(v, f"{field}[{i}]")]
    if isinstance(definition, str):
        try:
            render_text(definition, None)
        except TemplateError as e:
            return [_cause(field, f"Invalid value: {e.reason}: {e.message}")]
    return []


def _admit_template(new, old, principal):
    from ..errors import invalid

    spec = new.get("spec", {})
    causes = _check_parameters(spec.get("parameters"), "spec.parameters")
    causes += _check_placeholders(spec.get("template"), "spec.template")
    seen = set()
    for i, version in enumerate(spec.get("versions") or []):
        if not SEMVER.match(version["version"]):
            causes.append(_cause(f"spec.versions[{i}].version", f'Invalid value: "{version["version"]}": must be MAJOR.MINOR.PATCH'))
        if version["version"] in seen:
            causes.append(_cause(f"spec.versions[{i}].version", f'Duplicate value: "{version["version"]}"', "FieldValueDuplicate"))
        seen.add(version["version"])
        causes += _check_parameters(version.get("parameters"), f"spec.versions[{i}].parameters")
        causes += _check_placeholders(version.get("template"), f"spec.versions[{i}].template")
    if causes:
        raise invalid(TEMPLATES.kind, new["metadata"]["name"], TEMPLATES.resource, causes)


def resolve_version(template_spec, wanted):
    """(version or "", template definition, parameters) for a templateRef.version; newest match wins."""
    versions = template_spec.get("versions") or []
    if not versions:
        if wanted and set(wanted.split(".")) != {"x"}:
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


def _check_value(p, value, where):
    """(typed value, causes) for one non-empty value of parameter declaration p."""
    kind = p.get("type") or "string"
    if isinstance(value, (dict, list)):
        return None, [_cause(where, "Invalid value: must be a single value, not a mapping or list")]
    text = _as_text(value)
    if p.get("options"):
        if text not in p["options"]:
            return None, [_cause(where, f'Unsupported value: "{text}": supported values: '
                                 + ", ".join(f'"{o}"' for o in p["options"]), "FieldValueNotSupported")]
        value = text
    causes = []
    if kind == "boolean":
        if text.lower() not in ("true", "false"):
            return None, [_cause(where, f'Invalid value: "{text}": must be true or false')]
        return text.lower() == "true", []
    if kind == "number":
        if not NUMBER.match(text.strip()):
            return None, [_cause(where, f'Invalid value: "{text}": must be a number')]
        number = float(text) if any(c in text for c in ".eE") else int(text)
        if p.get("min") is not None and number < p["min"]:
            causes.append(_cause(where, f"Invalid value: {text}: must be greater than or equal to {p['min']}"))
        if p.get("max") is not None and number > p["max"]:
            causes.append(_cause(where, f"Invalid value: {text}: must be less than or equal to {p['max']}"))
        return number, causes
    if p.get("options"):
        return text, []
    if p.get("validation") and not re.search(p["validation"], text):
        causes.append(_cause(where, f'Invalid value: "{text}": does not match the validation "{p["validation"]}"'))
    if p.get("invalidation") and re.search(p["invalidation"], text):
        causes.append(_cause(where, f'Invalid value: "{text}": matches the invalidation "{p["invalidation"]}"'))
    return text, causes


def check_parameters(declared, text, field="spec.parameters"):
    """Parse the instance's parameters YAML (safely) and check every value against its declaration.

    Returns the typed values (defaults filled, dotted variables nested; an optional parameter left
    empty is ""); raises TemplateError (ErrorSyncingParameters) with one cause per problem, each
    naming `spec.parameters.<variable>`.
    """
    try:
        given = safeyaml.load(text, _ParametersLoader) if text and text.strip() else {}
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
        name = p["variable"]
        where = f"{field}.{name}"
        value = given[name] if name in given else _get_path(given, name)  # `a.b: 1` or `a: {b: 1}`
        if value is None or value == "":
            value = p.get("defaultValue")
        if value is None or value == "":
            if p.get("required"):
                causes.append(_cause(where, "Required value", "FieldValueRequired"))
            _set_path(values, name, "")
            continue
        value, problems = _check_value(p, value, where)
        causes += problems
        _set_path(values, name, value)
    if causes:
        raise TemplateError("ErrorSyncingParameters", "; ".join(f"{c['field']}: {c['message']}" for c in causes), causes)
    return values


def builtin_values(instance):
    """The `.Values.loft.*` built-ins for an instance (clusterRef filled in)."""
    from .projects import project_of

    spec = instance.get("spec") or {}
    ref, owner = spec.get("clusterRef") or {}, spec.get("owner") or {}
    return {"project": project_of(instance["metadata"].get("namespace")) or "", "name": instance["metadata"]["name"],
            "cluster": ref.get("cluster") or "", "virtualClusterName": ref.get("virtualCluster") or "",
            "virtualClusterNamespace": ref.get("namespace") or "",
            "user": {"name": owner.get("user") or ""}, "team": {"name": owner.get("team") or ""}}


# What spaceTemplate.objects may hold: namespaced kinds the worker knows how to apply and prune.
SPACE_OBJECT_KINDS = ("ServiceAccount", "Secret", "ConfigMap", "Service", "Role", "RoleBinding", "StatefulSet")


def render_instance(definition, values, instance):
    """(rendered template, chart values, spaceTemplate objects) for an instance. Raises TemplateError
    (ErrorRenderingTemplate) for anything the worker could not deploy, so admission refuses it too."""
    rendered = render(definition, {**values, "loft": builtin_values(instance)})
    try:
        chart_values = safeyaml.load((rendered.get("helmRelease") or {}).get("values") or "") or {}
        text = (rendered.get("spaceTemplate") or {}).get("objects") or ""
        space_objects = [o for o in (safeyaml.load(part) for part in text.split("\n---") if part.strip()) if o]
    except Exception as e:
        raise TemplateError("ErrorRenderingTemplate", f"template does not render to valid YAML: {safeyaml.first_line(e)}") from e
    if not isinstance(chart_values, dict):
        raise TemplateError("ErrorRenderingTemplate", "helmRelease.values must render to a YAML mapping")
    for obj in space_objects:
        if not isinstance(obj, dict) or obj.get("kind") not in SPACE_OBJECT_KINDS or not isinstance(obj.get("metadata"), dict) \
                or not obj["metadata"].get("name"):
            raise TemplateError("ErrorRenderingTemplate", "spaceTemplate.objects may only hold named "
                                + ", ".join(SPACE_OBJECT_KINDS) + " objects")
    return rendered, chart_values, space_objects


def render_text(text, values):
    """Substitute `{{ .Values.a.b }}`; any other template action is an error, never executed.

    values None only checks the syntax (every `{{ }}` is a `.Values` reference, none left open).
    """
    def replace(match):
        expression = match.group(1)
        ref = VALUE_REF.match(expression)
        if not ref:
            raise TemplateError("ErrorRenderingTemplate", f'unsupported template expression "{{{{ {expression} }}}}": only {{{{ .Values.<name> }}}} is allowed')
        if values is None:
            return ""
        value = _get_path(values, ref.group(1))
        if value is None:
            raise TemplateError("ErrorRenderingTemplate", f'value "{ref.group(1)}" is not set')
        if isinstance(value, (dict, list)):
            raise TemplateError("ErrorRenderingTemplate", f'value "{ref.group(1)}" is not a scalar')
        return _as_text(value)
    text = text or ""
    pieces, last = [], 0
    for match in PLACEHOLDER.finditer(text):
        pieces += [_unopened(text[last:match.start()]), replace(match)]
        last = match.end()
    pieces.append(_unopened(text[last:]))
    return "".join(pieces)


def _unopened(literal):
    """Text between placeholders; an action opened and never closed is refused (Go templates would too)."""
    if "{{" in literal:
        raise TemplateError("ErrorRenderingTemplate", "unclosed template action: `{{` without a matching `}}`")
    return literal


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
