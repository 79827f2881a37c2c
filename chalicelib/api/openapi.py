"""OpenAPI generated from the kinds' pydantic models: v3 (kubectl validation and explain) and v2, also
as protobuf, the only form kubectl 1.27/1.28 accept before create, apply, edit and replace."""
import hashlib
import json
from functools import lru_cache

from .. import config
from ..resources.kinds import REGISTRY

SCHEMA_PREFIX = "io.loft.management.v1."


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
    if isinstance(node.get("additionalProperties"), bool):
        # kube's published schemas never carry a boolean here and kubectl <= 1.28's explain templates
        # break on one; unknown fields are the server's business (fieldValidation), open maps are below.
        node.pop("additionalProperties")
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
        for field, text in (("metadata", "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"),
                            ("spec", f"The desired state of the {kind.kind}, written by its users."),
                            ("status", f"The observed state of the {kind.kind}, written by the platform.")):
            prop = top["properties"].get(field)
            if isinstance(prop, dict) and not prop.get("description"):
                top["properties"][field] = {"allOf": [{"$ref": prop.pop("$ref")}], **prop} if "$ref" in prop else prop
                top["properties"][field]["description"] = text
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



# --- OpenAPI v2 (Swagger 2.0): kubectl 1.27/1.28 fetch it before create/apply/edit/replace/explain, as protobuf.

OPENAPI_V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"


def _v2_schema(node):
    """An OpenAPI 3.0 schema as Swagger 2.0: refs into definitions; allOf-wrapped refs unwrapped; no anyOf."""
    if isinstance(node, list):
        return [_v2_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    all_of = node.get("allOf")
    if isinstance(all_of, list) and len(all_of) == 1 and "$ref" in all_of[0]:
        node.pop("allOf")
        node["$ref"] = all_of[0]["$ref"]
    node.pop("anyOf", None)
    node.pop("oneOf", None)
    node.pop("nullable", None)
    if "$ref" in node:
        node["$ref"] = node["$ref"].replace("#/components/schemas/", "#/definitions/")
    return {k: v if k in ("enum", "default", "example") else
            {n: _v2_schema(s) for n, s in v.items()} if k == "properties" else _v2_schema(v) for k, v in node.items()}


def _v2_operation(operation):
    result = {k: v for k, v in operation.items() if k not in ("requestBody", "responses", "parameters")}
    result["consumes"] = ["application/json", "application/yaml"]
    if operation.get("x-kubernetes-action") == "patch":
        result["consumes"] = ["application/json-patch+json", "application/merge-patch+json", "application/strategic-merge-patch+json"]
    result["produces"] = ["application/json", "application/yaml"]
    parameters = []
    for parameter in operation.get("parameters", []):
        converted = {k: v for k, v in parameter.items() if k != "schema"}
        converted["type"] = parameter.get("schema", {}).get("type", "string")
        if parameter.get("in") == "path":
            converted.pop("uniqueItems", None)
        parameters.append(converted)
    body = operation.get("requestBody")
    if body:
        schema = body["content"]["application/json"]["schema"]
        parameters.insert(0, {"name": "body", "in": "body", "required": True, "schema": _v2_schema(schema)})
    if parameters:
        result["parameters"] = parameters
    result["responses"] = {code: {"description": answer.get("description", ""),
                                  **({"schema": _v2_schema(answer["content"]["application/json"]["schema"])}
                                     if "content" in answer else {})}
                           for code, answer in operation.get("responses", {}).items()}
    return result


@lru_cache(maxsize=1)
def openapi_v2():
    """The same API as the v3 document, as Swagger 2.0 (JSON shape)."""
    v3 = openapi_document()
    return {
        "swagger": "2.0",
        "info": dict(v3["info"]),
        "paths": {path: {method: _v2_operation(op) for method, op in item.items()} for path, item in v3["paths"].items()},
        "definitions": {name: _v2_schema(schema) for name, schema in v3["components"]["schemas"].items()},
    }


# Protobuf wire format for gnostic's openapi.v2.Document (github.com/google/gnostic-models, OpenAPIv2.proto):
# only the messages and fields this document uses. Field numbers are from that .proto file.

def _varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _tag(number, wire):
    return _varint(number << 3 | wire)


def _bytes(number, payload):
    return _tag(number, 2) + _varint(len(payload)) + payload


def _string(number, value):
    return _bytes(number, str(value).encode()) if value not in (None, "") else b""


def _bool(number, value, always=False):
    return _tag(number, 0) + _varint(1 if value else 0) if value or always else b""


def _int(number, value):
    return _tag(number, 0) + _varint(int(value)) if value else b""


def _double(number, value):
    import struct

    return _tag(number, 1) + struct.pack("<d", float(value))


def _pb_any(value):
    """openapi.v2.Any: the value as YAML (field 2), which kube-openapi decodes."""
    import yaml

    return _string(2, yaml.safe_dump(value, default_flow_style=True).strip())


def _pb_extensions(number, node):
    return b"".join(_bytes(number, _string(1, key) + _bytes(2, _pb_any(value)))
                    for key, value in node.items() if key.startswith("x-"))


_SCHEMA_STRINGS = {"$ref": 1, "format": 2, "title": 3, "description": 4, "pattern": 13, "discriminator": 26}
_SCHEMA_INTS = {"maxLength": 11, "minLength": 12, "maxItems": 14, "minItems": 15, "maxProperties": 17, "minProperties": 18}
_SCHEMA_DOUBLES = {"multipleOf": 6, "maximum": 7, "minimum": 9}
_SCHEMA_BOOLS = {"exclusiveMaximum": 8, "exclusiveMinimum": 10, "uniqueItems": 16, "readOnly": 27}


def _pb_schema(node):
    out = b""
    for key, value in node.items():
        if key in _SCHEMA_STRINGS:
            out += _string(_SCHEMA_STRINGS[key], value)
        elif key in _SCHEMA_INTS:
            out += _int(_SCHEMA_INTS[key], value)
        elif key in _SCHEMA_DOUBLES:
            out += _double(_SCHEMA_DOUBLES[key], value)
        elif key in _SCHEMA_BOOLS:
            out += _bool(_SCHEMA_BOOLS[key], value)
        elif key == "default":
            out += _bytes(5, _pb_any(value))
        elif key == "required":
            out += b"".join(_string(19, name) for name in value)
        elif key == "enum":
            out += b"".join(_bytes(20, _pb_any(item)) for item in value)
        elif key == "additionalProperties":
            item = _bytes(1, _pb_schema(value)) if isinstance(value, dict) else _bool(2, value, always=True)
            out += _bytes(21, item)
        elif key == "type":
            out += _bytes(22, b"".join(_string(1, t) for t in (value if isinstance(value, list) else [value])))
        elif key == "items":
            out += _bytes(23, b"".join(_bytes(1, _pb_schema(s)) for s in (value if isinstance(value, list) else [value])))
        elif key == "allOf":
            out += b"".join(_bytes(24, _pb_schema(s)) for s in value)
        elif key == "properties":
            out += _bytes(25, b"".join(_bytes(1, _string(1, name) + _bytes(2, _pb_schema(s))) for name, s in value.items()))
    return out + _pb_extensions(31, node)


def _pb_parameter(parameter):
    """ParametersItem{parameter: Parameter{body_parameter | non_body_parameter{query | path sub-schema}}}."""
    if parameter["in"] == "body":
        body = (_string(1, parameter.get("description")) + _string(2, parameter["name"]) + _string(3, "body")
                + _bool(4, parameter.get("required")) + _bytes(5, _pb_schema(parameter["schema"])))
        return _bytes(1, _bytes(1, body))
    common = (_bool(1, parameter.get("required")) + _string(2, parameter["in"]) + _string(3, parameter.get("description"))
              + _string(4, parameter["name"]))
    if parameter["in"] == "path":
        sub = _bytes(4, common + _string(5, parameter.get("type")))
    else:
        sub = _bytes(3, common + _string(6, parameter.get("type")) + _bool(20, parameter.get("uniqueItems")))
    return _bytes(1, _bytes(2, sub))


def _pb_operation(operation):
    out = b"".join(_string(1, tag) for tag in operation.get("tags", []))
    out += _string(3, operation.get("description")) + _string(5, operation.get("operationId"))
    out += b"".join(_string(6, t) for t in operation.get("produces", []))
    out += b"".join(_string(7, t) for t in operation.get("consumes", []))
    out += b"".join(_bytes(8, _pb_parameter(p)) for p in operation.get("parameters", []))
    responses = b""
    for code, answer in operation.get("responses", {}).items():
        response = _string(1, answer.get("description")) + (_bytes(2, _bytes(1, _pb_schema(answer["schema"]))) if "schema" in answer else b"")
        responses += _bytes(1, _string(1, code) + _bytes(2, _bytes(1, response)))
    out += _bytes(9, responses)
    return out + _pb_extensions(13, operation)


_PATH_METHODS = {"get": 2, "put": 3, "post": 4, "delete": 5, "options": 6, "head": 7, "patch": 8}


@lru_cache(maxsize=1)
def openapi_v2_protobuf():
    """openapi_v2() encoded as gnostic's openapi.v2.Document, the only form client-go's OpenAPISchema() reads."""
    document = openapi_v2()
    info = _string(1, document["info"].get("title")) + _string(2, document["info"].get("version"))
    paths = b"".join(
        _bytes(2, _string(1, path) + _bytes(2, b"".join(_bytes(_PATH_METHODS[m], _pb_operation(op)) for m, op in item.items())))
        for path, item in document["paths"].items())
    definitions = b"".join(_bytes(1, _string(1, name) + _bytes(2, _pb_schema(schema)))
                           for name, schema in document["definitions"].items())
    return _string(1, document["swagger"]) + _bytes(2, info) + _bytes(8, paths) + _bytes(9, definitions)
