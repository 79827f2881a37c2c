"""Bytes in, objects out: content types, size limits, safe YAML, JSON/YAML/Table responses."""
import json

import yaml

from .. import config
from ..errors import BadRequest, NotAcceptable, RequestEntityTooLarge, UnsupportedMediaType

JSON_TYPES = ("application/json", "*/*", "")
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml")
PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json", "application/strategic-merge-patch+json")
MAX_YAML_ALIASES = 100


def media_type(header):
    return (header or "").split(";", 1)[0].strip().lower()


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses excessive aliasing (billion laughs) before anything is expanded."""

    aliases = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_YAML_ALIASES:
                raise yaml.YAMLError("excessive aliasing in YAML document")
        return super().compose_node(parent, index)


def load_yaml(text):
    try:
        loader = _BoundedLoader(text)
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.YAMLError as e:
        raise BadRequest(f"error converting YAML to JSON: {_first_line(e)}") from e


def _first_line(error):
    return str(error).strip().splitlines()[0] if str(error).strip() else error.__class__.__name__


def check_size(raw):
    if raw is not None and len(raw) > config.MAX_BODY_BYTES:
        raise RequestEntityTooLarge(f"the request body is too large: limit is {config.MAX_BODY_BYTES} bytes")


def decode_text(raw):
    try:
        return (raw or b"").decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadRequest("the request body is not valid UTF-8") from e


def load_json(text):
    try:
        return json.loads(text)
    except ValueError as e:
        raise BadRequest(f"error decoding JSON: {e}") from e


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
    if not any(k in JSON_TYPES or k in YAML_TYPES or k in ("application/*", "application/json;stream=watch") for k in kinds):
        raise NotAcceptable(f"only the following media types are accepted: application/json, application/yaml")


def dump(value, accept):
    """(body, content type) for a response value, YAML when asked for."""
    if wants_yaml(accept):
        return yaml.safe_dump(value, sort_keys=False, default_flow_style=False), "application/yaml"
    return json.dumps(value, separators=(",", ":")), "application/json"
