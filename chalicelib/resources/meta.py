"""Kubernetes object metadata: the pydantic shape, server-owned fields, names and label selectors."""
import re
import uuid
from datetime import datetime, timezone
from typing import Dict, List, Optional

from pydantic import BaseModel, ConfigDict, Field

from ..errors import BadRequest

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# Fields only the server sets; client values are ignored on create and carried over on update.
SERVER_OWNED = ("uid", "creationTimestamp", "resourceVersion", "generation", "deletionTimestamp")


class Model(BaseModel):
    """Base for every API shape: unknown fields are errors (pruned with a warning unless Strict)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, defer_build=True)


class OwnerReference(Model):
    apiVersion: str
    kind: str
    name: str
    uid: str
    controller: Optional[bool] = None
    blockOwnerDeletion: Optional[bool] = None


class ObjectMeta(Model):
    """Standard object metadata (meta/v1 ObjectMeta)."""

    name: Optional[str] = Field(None, description="Name must be unique within a namespace.")
    generateName: Optional[str] = None
    namespace: Optional[str] = None
    uid: Optional[str] = None
    resourceVersion: Optional[str] = None
    generation: Optional[int] = None
    creationTimestamp: Optional[str] = None
    deletionTimestamp: Optional[str] = None
    deletionGracePeriodSeconds: Optional[int] = None
    labels: Optional[Dict[str, str]] = None
    annotations: Optional[Dict[str, str]] = None
    finalizers: Optional[List[str]] = None
    ownerReferences: Optional[List[OwnerReference]] = None
    managedFields: Optional[List[dict]] = None


class Resource(Model):
    """Top-level object fields every kind shares; a kind adds its spec and status."""

    apiVersion: Optional[str] = Field(None, description="APIVersion defines the versioned schema of this representation of an object.")
    kind: Optional[str] = Field(None, description="Kind is a string value representing the REST resource this object represents.")
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)


def now_iso():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_uid():
    return str(uuid.uuid4())


def name_problems(name, field="metadata.name"):
    """Causes for an invalid DNS-1123 label, in kube-apiserver's words."""
    if not name:
        return [{"reason": "FieldValueRequired", "field": field, "message": "Required value: name or generateName is required"}]
    problems = []
    if len(name) > 63:
        problems.append("must be no more than 63 characters")
    if not DNS1123_LABEL.match(name):
        problems.append(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
            "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
            "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
        )
    return [{"reason": "FieldValueInvalid", "field": field, "message": f'Invalid value: "{name}": {p}'} for p in problems]


LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")


def label_problems(labels, field="metadata.labels"):
    causes = []
    for key, value in (labels or {}).items():
        if not LABEL_KEY.match(key):
            causes.append({"reason": "FieldValueInvalid", "field": field, "message": f'Invalid value: "{key}": name part must be a valid label key'})
        if not LABEL_VALUE.match(value or ""):
            causes.append({"reason": "FieldValueInvalid", "field": f"{field}.{key}", "message": f'Invalid value: "{value}": a valid label must be 63 characters or less, alphanumeric, \'-\', \'_\' or \'.\''})
    return causes


_SELECTOR_TERM = re.compile(
    r"^\s*(?P<neg>!)?\s*(?P<key>[A-Za-z0-9./_-]+)\s*"
    r"(?:(?P<op>==|=|!=|\s+in\s+|\s+notin\s+)\s*(?P<val>\([^)]*\)|[A-Za-z0-9._-]*))?\s*$"
)


def _split_terms(selector):
    """Split on commas outside parentheses."""
    terms, depth, current = [], 0, ""
    for ch in selector:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += ch
    terms.append(current)
    return [t for t in terms if t.strip()]


def parse_label_selector(selector):
    """Parse a label selector into a predicate over a labels dict; 400 on bad syntax."""
    if not selector:
        return lambda labels: True
    checks = []
    for term in _split_terms(selector):
        m = _SELECTOR_TERM.match(term)
        if not m or (m.group("neg") and m.group("op")):
            raise BadRequest(f'unable to parse requirement: invalid label selector "{selector}"')
        key, op, raw = m.group("key"), (m.group("op") or "").strip(), m.group("val")
        if m.group("neg"):
            checks.append(lambda l, k=key: k not in l)
        elif not op:
            checks.append(lambda l, k=key: k in l)
        elif op in ("=", "=="):
            checks.append(lambda l, k=key, v=raw: l.get(k) == v)
        elif op == "!=":
            checks.append(lambda l, k=key, v=raw: l.get(k) != v)
        else:
            if not (raw.startswith("(") and raw.endswith(")")):
                raise BadRequest(f'unable to parse requirement: invalid label selector "{selector}"')
            values = {v.strip() for v in raw[1:-1].split(",") if v.strip()}
            if op == "in":
                checks.append(lambda l, k=key, vs=values: l.get(k) in vs)
            else:
                checks.append(lambda l, k=key, vs=values: l.get(k) not in vs)
    return lambda labels: all(check(labels or {}) for check in checks)


def parse_field_selector(selector, namespaced):
    """Support the field selectors kubectl sends: metadata.name and metadata.namespace (= == !=)."""
    if not selector:
        return lambda obj: True
    checks = []
    for term in selector.split(","):
        m = re.match(r"^\s*(metadata\.name|metadata\.namespace)\s*(==|=|!=)\s*([^,]*?)\s*$", term)
        if not m or (m.group(1) == "metadata.namespace" and not namespaced):
            raise BadRequest(f'"{term.strip()}" is not a known field selector: only "metadata.name", "metadata.namespace"')
        field, op, value = m.group(1).split(".")[1], m.group(2), m.group(3)
        if op == "!=":
            checks.append(lambda o, f=field, v=value: o["metadata"].get(f) != v)
        else:
            checks.append(lambda o, f=field, v=value: o["metadata"].get(f) == v)
    return lambda obj: all(check(obj) for check in checks)
