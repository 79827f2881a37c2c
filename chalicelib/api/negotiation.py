"""Bytes in, objects out: content types, size limits, safe YAML, JSON/YAML/Table responses."""
import datetime
import json
import math

import yaml

from .. import config, safeyaml
from ..errors import BadRequest, NotAcceptable, RequestEntityTooLarge, UnsupportedMediaType

JSON_TYPES = ("application/json", "*/*", "")
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml")
PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json", "application/strategic-merge-patch+json")
# Real objects nest ~10 deep; deeper input would exhaust the stack in the layers after parsing.
MAX_DEPTH = 100
# A 1 MiB JSON body holds at most ~500k values; YAML aliases share nodes, so a few hundred bytes can
# stand for billions (billion laughs): the expanded document is bounded, not only the alias count.
MAX_VALUES = 250_000


def media_type(header):
    return (header or "").split(";", 1)[0].strip().lower()


def load_yaml(text):
    try:
        value = safeyaml.load(text)
    except yaml.YAMLError as e:
        raise BadRequest(f"error converting YAML to JSON: {safeyaml.first_line(e)}") from e
    except RecursionError as e:
        raise BadRequest(f"error converting YAML to JSON: nested deeper than {MAX_DEPTH} levels") from e
    except ValueError as e:  # e.g. an impossible timestamp (2023-99-99)
        raise BadRequest(f"error converting YAML to JSON: {e}") from e
    return plain(value)


def _plain_key(key, budget):
    if isinstance(key, str):
        return key
    value = _plain(key, budget, 1)
    return value if isinstance(value, str) else json.dumps(value)


def _plain(value, budget, depth):
    budget[0] += 1
    if budget[0] > MAX_VALUES:
        raise BadRequest(f"the request body expands to more than {MAX_VALUES} values")
    if depth > MAX_DEPTH:
        raise BadRequest(f"the request body is nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        return {_plain_key(k, budget): _plain(v, budget, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v, budget, depth + 1) for v in value]
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        raise BadRequest("the request body holds a number JSON cannot represent (NaN or Infinity)")
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat().replace("+00:00", "Z")  # an unquoted YAML timestamp, as text
    raise BadRequest(f"the request body holds a value JSON cannot represent ({type(value).__name__})")


def plain(value):
    """A JSON-shaped copy of parsed input, its nesting and expanded size bounded (400 otherwise)."""
    return _plain(value, [0], 1)


def check_size(raw):
    if raw is not None and len(raw) > config.MAX_BODY_BYTES:
        raise RequestEntityTooLarge(f"the request body is too large: limit is {config.MAX_BODY_BYTES} bytes")


def decode_text(raw):
    try:
        return (raw or b"").decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadRequest("the request body is not valid UTF-8") from e


def _no_constant(name):
    raise ValueError(f"{name} is not valid JSON")


def load_json(text):
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except ValueError as e:
        raise BadRequest(f"error decoding JSON: {e}") from e
    except RecursionError as e:
        raise BadRequest(f"error decoding JSON: nested deeper than {MAX_DEPTH} levels") from e
    return plain(value)


def parse_body(raw, content_type):
    """The request body as a Python value, from JSON or YAML; 400/413/415 otherwise."""
    check_size(raw)
    kind = media_type(content_type)
    text = decode_text(raw)
    if not text.strip():
        raise BadRequest("the request body is empty")
    if kind in JSON_TYPES:
        return load_json(text)
    if kind in YAML_TYPES:
        return load_yaml(text)
    raise UnsupportedMediaType(f'the body of the request was in an unknown format - accepted media types include: application/json, application/yaml; got "{kind}"')


def wants_yaml(accept):
    return any(media_type(part) in YAML_TYPES for part in (accept or "").split(","))


def wants_table(accept):
    """kubectl asks `application/json;as=Table;v=v1;g=meta.k8s.io, application/json`."""
    for part in (accept or "").split(","):
        params = dict(p.strip().split("=", 1) for p in part.split(";")[1:] if "=" in p)
        if params.get("as") == "Table" and params.get("g") == "meta.k8s.io":
            return True
    return False


def check_acceptable(accept):
    """406 only when the client accepts nothing we can produce (e.g. protobuf alone)."""
    if not accept:
        return
    kinds = [media_type(part) for part in accept.split(",")]
    if not any(k in JSON_TYPES or k in YAML_TYPES or k == "application/*" for k in kinds):
        raise NotAcceptable("only the following media types are accepted: application/json, application/yaml")


def dump(value, accept):
    """(body, content type) for a response value, YAML when asked for."""
    if wants_yaml(accept):
        return yaml.safe_dump(value, sort_keys=False, default_flow_style=False), "application/yaml"
    return json.dumps(value, separators=(",", ":")), "application/json"
