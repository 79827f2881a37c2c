"""DynamoDB adapter: one item per object, conditional writes, query pages and opaque continue tokens.

Item layout (table keys in infra/resources.yaml):
  pk = "<plural>#<namespace>", sk = name       the object's home; a namespace lists with one Query
  kind = plural, nsname = "<namespace>/<name>"  GSI by-kind: lists across namespaces
  kind, rv                                      GSI by-rv: watch and reconcile "changed since"
  body = the object as JSON; deleted = True for tombstones (kept TOMBSTONE_SECONDS for watchers)

resourceVersion is a microsecond clock, forced to grow per object: watchers can resume from it
and compare versions across objects without a global counter (a hot item and a second write).
"""
import base64
import json
import time

from . import aws, config
from .errors import AlreadyExists, BadRequest, Conflict, RequestEntityTooLarge, ServiceUnavailable, TooManyRequests

_THROTTLES = {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"}
# A DynamoDB item holds at most 400 KB; the body plus the key and index attributes must fit.
MAX_OBJECT_BYTES = 380_000


def _call(operation, **kwargs):
    """Run one DynamoDB call; library errors become our errors (the caller handles conditions)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return getattr(aws.client("dynamodb"), operation)(TableName=config.TABLE_NAME, **kwargs)
    except ClientError as e:
        code = e.response.get("Error", {}).get("Code", "")
        if code == "ConditionalCheckFailedException":
            raise _ConditionFailed(e.response.get("Item")) from e
        if code in _THROTTLES:
            raise TooManyRequests("the storage layer is throttling requests, retry later") from e
        raise ServiceUnavailable(f"storage error: {code}") from e
    except BotoCoreError as e:
        raise ServiceUnavailable(f"storage unreachable: {e.__class__.__name__}") from e


class _ConditionFailed(Exception):
    def __init__(self, item):
        self.item = item


def next_rv(previous=0):
    return max(time.time_ns() // 1000, int(previous or 0) + 1)


def current_rv():
    """A resourceVersion that orders after every write already made: where a list's watch starts."""
    return str(time.time_ns() // 1000)


def _pk(plural, namespace):
    return {"S": f"{plural}#{namespace or ''}"}


def _storable(text, limit):
    """DynamoDB refuses key values that are empty, over `limit` bytes or not UTF-8: no such object exists."""
    try:
        return isinstance(text, str) and 0 < len(text.encode("utf-8")) <= limit
    except UnicodeEncodeError:
        return False


def _item(plural, obj, deleted=False):
    meta = obj["metadata"]
    namespace = meta.get("namespace") or ""
    body = json.dumps(obj, separators=(",", ":"))  # ASCII: its length is its size in bytes
    if len(body) > MAX_OBJECT_BYTES:
        raise RequestEntityTooLarge(f"the object is too large to store: {len(body)} bytes, limit is {MAX_OBJECT_BYTES}")
    item = {
        "pk": _pk(plural, namespace),
        "sk": {"S": meta["name"]},
        "kind": {"S": plural},
        "nsname": {"S": f"{namespace}/{meta['name']}"},
        "rv": {"N": meta["resourceVersion"]},
        "gen": {"N": str(meta.get("generation") or 0)},
        "body": {"S": body},
    }
    if deleted:
        item["deleted"] = {"BOOL": True}
        item["expires"] = {"N": str(int(time.time()) + config.TOMBSTONE_SECONDS)}
    return item


def _decode(item):
    return json.loads(item["body"]["S"])


def _live(item):
    return item is not None and not item.get("deleted", {}).get("BOOL", False)


def _event_type(item, since_rv):
    if not _live(item):
        return "DELETED"
    return "ADDED" if int(item.get("crv", {}).get("N", "0")) > int(since_rv) else "MODIFIED"


def get(plural, namespace, name):
    """The live object, or None."""
    if not (_storable(_pk(plural, namespace)["S"], 2048) and _storable(name, 1024)):
        return None
    item = _call("get_item", Key={"pk": _pk(plural, namespace), "sk": {"S": name}}, ConsistentRead=True).get("Item")
    return _decode(item) if _live(item) else None


def create(plural, obj):
    try:
        _call("put_item", Item={**_item(plural, obj), "crv": {"N": obj["metadata"]["resourceVersion"]}},
              ConditionExpression="attribute_not_exists(pk) OR deleted = :t",
              ExpressionAttributeValues={":t": {"BOOL": True}})
    except _ConditionFailed as e:
        raise AlreadyExists(obj["metadata"]["name"]) from e


def replace(plural, obj, expected_rv, deleted=False):
    """Write obj only if the stored object is live at expected_rv. Raises Conflict; False if it is gone.

    An UpdateItem (not a Put) so the item keeps `crv`, the version it was created at (ADDED vs MODIFIED).
    """
    fields = {k: v for k, v in _item(plural, obj, deleted).items() if k not in ("pk", "sk")}
    names = {f"#{k}": k for k in fields}
    values = {f":{k}": v for k, v in fields.items()}
    values[":expected"] = {"N": str(expected_rv)}
    try:
        _call("update_item", Key={"pk": _pk(plural, obj["metadata"].get("namespace")), "sk": {"S": obj["metadata"]["name"]}},
              UpdateExpression="SET " + ", ".join(f"#{k} = :{k}" for k in fields),
              ConditionExpression="#rv = :expected AND attribute_not_exists(deleted)",
              ExpressionAttributeNames=names, ExpressionAttributeValues=values,
              ReturnValuesOnConditionCheckFailure="ALL_OLD")
    except _ConditionFailed as e:
        if not _live(e.item):
            return False
        raise Conflict("stale resourceVersion") from e
    return True


def encode_continue(key, rv):
    return base64.urlsafe_b64encode(json.dumps({"k": key, "rv": rv}).encode()).decode().rstrip("=")


def decode_continue(token):
    """(key, rv) from a token; the client holds it, so list_page rebuilds the key rather than trusting it."""
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        key, rv = data["k"], data["rv"]
        if not isinstance(key, dict) or not isinstance(rv, str) or not rv.isdigit():
            raise ValueError("malformed")
        return key, rv
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise BadRequest("continue key is not valid: " + str(e.__class__.__name__)) from e


def _start_key(plural, namespace, key):
    """The ExclusiveStartKey rebuilt from a token's sort key: a forged token moves where the page
    starts, but never reaches DynamoDB malformed (that would be a storage error, not a 400)."""
    sort = key.get("nsname" if namespace is None else "sk")
    value = sort.get("S") if isinstance(sort, dict) else None
    if not _storable(value, 1024) or (namespace is None and "/" not in value):
        raise BadRequest("continue key is not valid: it does not belong to this list")
    if namespace is None:
        ns, name = value.split("/", 1)
        if not ns or not name:
            raise BadRequest("continue key is not valid: it does not belong to this list")
        return {"kind": {"S": plural}, "nsname": {"S": value}, "pk": _pk(plural, ns), "sk": {"S": name}}
    return {"pk": _pk(plural, namespace), "sk": {"S": value}}


def list_page(plural, namespace, limit, start_key, accept):
    """Up to `limit` live objects that pass `accept`, in name order, and the key to continue after.

    namespace None lists across namespaces through the by-kind index. Each DynamoDB page asks only
    for what is still missing, so an unfiltered page costs exactly one Query.
    """
    if namespace is None:
        query = {"IndexName": "by-kind", "KeyConditionExpression": "kind = :k",
                 "ExpressionAttributeValues": {":k": {"S": plural}}}
    else:
        query = {"KeyConditionExpression": "pk = :pk",
                 "ExpressionAttributeValues": {":pk": _pk(plural, namespace)}}
    objects = []
    if namespace is not None and not _storable(_pk(plural, namespace)["S"], 2048):
        return objects, None
    if start_key is not None:  # from a continue token, even an empty (forged) one
        start_key = _start_key(plural, namespace, start_key)
    while True:
        page = {"Limit": limit - len(objects)} if limit else {}
        if start_key:
            page["ExclusiveStartKey"] = start_key
        answer = _call("query", **query, **page)
        for item in answer.get("Items", []):
            if _live(item):
                obj = _decode(item)
                if accept(obj):
                    objects.append(obj)
        start_key = answer.get("LastEvaluatedKey")
        if not start_key or (limit and len(objects) >= limit):
            return objects, start_key


def changes_since(plural, since_rv):
    """Every write of this kind after since_rv, oldest first, as (event type, object)."""
    query = {"IndexName": "by-rv", "KeyConditionExpression": "kind = :k AND rv > :rv",
             "ExpressionAttributeValues": {":k": {"S": plural}, ":rv": {"N": str(since_rv)}}}
    changes, start_key = [], None
    while True:
        answer = _call("query", **query, **({"ExclusiveStartKey": start_key} if start_key else {}))
        changes.extend((_event_type(item, since_rv), _decode(item)) for item in answer.get("Items", []))
        start_key = answer.get("LastEvaluatedKey")
        if not start_key:
            return changes


def get_raw(pk, sk):
    """A non-object item (e.g. an access-key lookup) by key, or None."""
    return _call("get_item", Key={"pk": {"S": pk}, "sk": {"S": sk}}).get("Item")


def put_raw(item):
    _call("put_item", Item=item)


def delete_raw(pk, sk):
    _call("delete_item", Key={"pk": {"S": pk}, "sk": {"S": sk}})
