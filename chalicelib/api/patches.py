"""PATCH bodies: RFC 6902 JSON patch, RFC 7386 merge patch; strategic merge is merge for our kinds."""
import jsonpatch

from ..errors import BadRequest, Invalid, UnsupportedMediaType
from .negotiation import PATCH_TYPES, check_size, decode_text, load_json, media_type


def parse(raw, content_type):
    """Validate the patch document before any object is read."""
    check_size(raw)
    kind = media_type(content_type)
    if kind not in PATCH_TYPES:
        raise UnsupportedMediaType(f'the body of the request was in an unknown format - accepted media types include: {", ".join(PATCH_TYPES)}')
    document = load_json(decode_text(raw))
    if kind == "application/json-patch+json":
        if not isinstance(document, list):
            raise BadRequest("json patch must be a JSON array of operations")
        try:
            return kind, jsonpatch.JsonPatch(document)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError, KeyError, AttributeError) as e:
            raise BadRequest(f"invalid json patch: {e}") from e
    if not isinstance(document, dict):
        raise BadRequest("merge patch must be a JSON object")
    return kind, document


def merge(target, patch):
    """RFC 7386: null removes, objects merge recursively, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge(result.get(key), value)
    return result


def apply(obj, parsed):
    """The patched object. Empty label/annotation maps exist for JSON patch (kube omits them, so the
    seed's `add /metadata/annotations/x` on a fresh object would otherwise fail) and are dropped after."""
    kind, patch = parsed
    if kind != "application/json-patch+json":
        return merge(obj, patch)
    meta = obj.setdefault("metadata", {})
    added = [key for key in ("labels", "annotations") if meta.get(key) is None]
    for key in added:
        meta[key] = {}
    try:
        result = patch.apply(obj)
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError, KeyError, IndexError) as e:
        raise Invalid(f"the server rejected our request due to an error in our request: {e}") from e
    result_meta = result.get("metadata") if isinstance(result, dict) else None
    if isinstance(result_meta, dict):
        for key in added:
            if result_meta.get(key) == {}:
                result_meta.pop(key)
    return result
