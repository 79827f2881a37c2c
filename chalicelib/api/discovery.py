"""What clients discover before they talk: /version, API groups and resources, OpenAPI v3 from the models."""
import hashlib
import json
from functools import lru_cache

from .. import config
from ..resources.kinds import REGISTRY

KUBERNETES_MINOR = "32"
SCHEMA_PREFIX = "io.loft.management.v1."


def version():
    """kube-apiserver's /version; /usr/bin/kubectl picks its binary by `minor`."""
    return {"major": "1", "minor": KUBERNETES_MINOR, "gitVersion": f"v1.{KUBERNETES_MINOR}.0",
            "gitCommit": "serverless-loft", "gitTreeState": "clean", "buildDate": "2026-11-26T00:00:00Z",
            "goVersion": "go1.23.0", "compiler": "gc", "platform": "linux/amd64"}


def core_versions():
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}]}


def core_resources():
    """Only namespaces: kubectl looks a project namespace up to word its NotFound errors."""
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "v1", "resources": [
        {"name": "namespaces", "singularName": "namespace", "namespaced": False, "kind": "Namespace",
         "verbs": ["get", "list"], "shortNames": ["ns"]}]}


def _group_version():
    return {"groupVersion": f"{config.GROUP}/{config.VERSION}", "version": config.VERSION}


def group():
    return {"kind": "APIGroup", "apiVersion": "v1", "name": config.GROUP,
            "versions": [_group_version()], "preferredVersion": _group_version()}


def groups():
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [group()]}


def resources():
    entries = []
    for kind in REGISTRY:
        entries.append({"name": kind.plural, "singularName": kind.singular, "namespaced": kind.namespaced,
                        "kind": kind.kind, "verbs": list(kind.verbs), "shortNames": list(kind.short_names),
                        "categories": list(kind.categories)})
        for sub in kind.subresources:
            entries.append({"name": f"{kind.plural}/{sub}", "singularName": "", "namespaced": kind.namespaced,
                            "kind": kind.kind, "verbs": ["create"]})
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{config.GROUP}/{config.VERSION}",
            "resources": entries}


def _openapi_schema(node):
    """Pydantic JSON schema -> OpenAPI 3.0: no `null` types, refs into components."""
    if isinstance(node, list):
        return [_openapi_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    node = {k: _openapi_schema(v) for k, v in node.items() if k not in ("title",)}
    if node.get("default", 0) is None:
        node.pop("default")
    options = node.get("anyOf")
    if options and any(o.get("type") == "null" for o in options):
        rest = [o for o in options if o.get("type") != "null"]
        node.pop("anyOf")
        if len(rest) == 1:
            merged = dict(rest[0])
            merged.update({k: v for k, v in node.items()})
            node = merged
        else:
            node["anyOf"] = rest
    if node.get("type") == "object" and "additionalProperties" not in node and "properties" not in node:
        node["x-kubernetes-preserve-unknown-fields"] = True
    if "$ref" in node and len(node) > 1:
        node = {"allOf": [{"$ref": node.pop("$ref")}], **node}
    return node


def _gvk(kind):
    return {"group": config.GROUP, "version": config.VERSION, "kind": kind}


def _parameter(name, where="query", description="", schema_type="string", required=False):
    return {"name": name, "in": where, "description": description, "required": required,
            "schema": {"type": schema_type}, "uniqueItems": True}


def _operation(kind, action, response_ref, write=False):
    operation = {
        "operationId": f"{action}{kind.kind}",
        "tags": [f"management{config.VERSION}"],
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": _gvk(kind.kind),
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": response_ref}}}}},
    }
    if write:
        operation["parameters"] = [
            _parameter("dryRun", description="When present, do not persist: All"),
            _parameter("fieldManager", description="Name of the actor making the change."),
            _parameter("fieldValidation", description="Ignore, Warn or Strict handling of unknown fields."),
        ]
        operation["requestBody"] = {"content": {"application/json": {"schema": {"$ref": response_ref}}}}
    return operation


@lru_cache(maxsize=1)
def openapi_document():
    schemas = {}
    paths = {}
    base = f"/apis/{config.GROUP}/{config.VERSION}"
    for kind in REGISTRY:
        schema = kind.model.model_json_schema(ref_template="#/components/schemas/" + SCHEMA_PREFIX + "{model}")
        for name, definition in schema.pop("$defs", {}).items():
            schemas[SCHEMA_PREFIX + name] = _openapi_schema(definition)
        top = _openapi_schema(schema)
        top["x-kubernetes-group-version-kind"] = [_gvk(kind.kind)]
        top["properties"]["apiVersion"]["description"] = "APIVersion defines the versioned schema of this representation of an object."
        top["properties"]["kind"]["description"] = "Kind is a string value representing the REST resource this object represents."
        schemas[SCHEMA_PREFIX + kind.kind] = top
        list_name = SCHEMA_PREFIX + kind.kind + "List"
        schemas[list_name] = {"type": "object", "required": ["items"], "x-kubernetes-group-version-kind": [_gvk(kind.kind + "List")],
                              "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                                             "metadata": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                                             "items": {"type": "array", "items": {"$ref": "#/components/schemas/" + SCHEMA_PREFIX + kind.kind}}}}
        ref = "#/components/schemas/" + SCHEMA_PREFIX + kind.kind
        list_ref = "#/components/schemas/" + list_name
        scope = f"{base}/namespaces/{{namespace}}/{kind.plural}" if kind.namespaced else f"{base}/{kind.plural}"
        paths[scope] = {"get": _operation(kind, "list", list_ref), "post": _operation(kind, "post", ref, write=True)}
        paths[scope + "/{name}"] = {
            "get": _operation(kind, "get", ref), "put": _operation(kind, "put", ref, write=True),
            "patch": _operation(kind, "patch", ref, write=True), "delete": _operation(kind, "delete", ref),
        }
        for item in paths[scope + "/{name}"].values():
            item.setdefault("parameters", []).append(_parameter("name", "path", required=True))
        if kind.namespaced:
            for path in (scope, scope + "/{name}"):
                for item in paths[path].values():
                    item.setdefault("parameters", []).append(_parameter("namespace", "path", required=True))
            paths[f"{base}/{kind.plural}"] = {"get": _operation(kind, "list", list_ref)}
    return {"openapi": "3.0.0", "info": {"title": "vCluster Platform management API (serverless)", "version": config.VERSION},
            "paths": paths, "components": {"schemas": schemas}}


@lru_cache(maxsize=1)
def openapi_hash():
    return hashlib.sha256(json.dumps(openapi_document(), sort_keys=True).encode()).hexdigest()[:16].upper()


def openapi_index():
    """Relative URL without the server prefix: kubectl prepends its configured server path."""
    key = f"apis/{config.GROUP}/{config.VERSION}"
    return {"paths": {key: {"serverRelativeURL": f"/openapi/v3/{key}?hash={openapi_hash()}"}}}


def namespace(name):
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}

