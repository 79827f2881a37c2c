"""The generic object lifecycle over any registered Kind: validate, create, read, update, delete, watch.

Handlers call these; these call the store and the job queue. Kubernetes semantics live here:
server-owned metadata, generation on spec changes, optimistic concurrency, finalizers, tombstones.
"""
import copy
import random
import string
import time

from pydantic import ValidationError

from . import config, jobs, store
from .errors import AlreadyExists, BadRequest, Conflict, invalid, not_found
from .resources.meta import SERVER_OWNED, label_problems, name_problems, new_uid, now_iso

# Writes without a resourceVersion (patches, deletes) retry a lost race on the fresh object. Each
# round has one winner, so N clients patching one object need up to N rounds: allow many, with jitter.
MAX_UPDATE_ATTEMPTS = 60


def _backoff(attempt):
    time.sleep(random.uniform(0, min(0.05, 0.002 * (attempt + 1))))


def _stored(kind, obj):
    """The object as stored: without the kind's write-only fields (returned once, never kept)."""
    if not kind.write_only:
        return obj
    obj = copy.deepcopy(obj)
    for path in kind.write_only:
        node = obj
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(path[-1], None)
    return obj


def _written(kind, obj):
    if kind.on_written:
        kind.on_written(obj)


class Options:
    """Per-request write options (?dryRun=All, ?fieldValidation=Strict|Warn|Ignore)."""

    def __init__(self, dry_run=False, field_validation="Warn"):
        self.dry_run = dry_run
        self.field_validation = field_validation
        self.warnings = []


def _loc(loc):
    return ".".join(str(part) for part in loc)


def _prune(body, loc):
    node = body
    for part in loc[:-1]:
        node = node[part]
    node.pop(loc[-1], None)


def validate(kind, body, opts):
    """Check body against the kind's pydantic model; return it normalised (unknown fields pruned).

    Unknown fields: 400 under Strict, else pruned with a Warning like kube-apiserver. Type errors: 422.
    """
    if not isinstance(body, dict):
        raise BadRequest(f"the body of the request must be a {kind.kind} object")
    if body.get("apiVersion") not in (None, kind.api_version):
        raise BadRequest(f'the API version in the data ({body.get("apiVersion")}) does not match the expected API version ({kind.api_version})')
    if body.get("kind") not in (None, kind.kind):
        raise BadRequest(f'the kind in the data ({body.get("kind")}) does not match the expected kind ({kind.kind})')
    body = copy.deepcopy(body)
    try:
        model = kind.model.model_validate(body, strict=True)
    except ValidationError as e:
        unknown = [err["loc"] for err in e.errors() if err["type"] == "extra_forbidden"]
        others = [err for err in e.errors() if err["type"] != "extra_forbidden"]
        name = (body.get("metadata") or {}).get("name") if isinstance(body.get("metadata"), dict) else None
        if others:
            causes = [{"reason": "FieldValueInvalid", "field": _loc(err["loc"]),
                       "message": f"Invalid value: {err['input']!r}: {err['msg']}" if not isinstance(err["input"], (dict, list)) else err["msg"]}
                      for err in others]
            raise invalid(kind.kind, name or "", kind.resource, causes) from e
        messages = [f'unknown field "{_loc(loc)}"' for loc in unknown]
        if opts.field_validation == "Strict":
            raise BadRequest(f"strict decoding error: {', '.join(messages)}") from e
        if opts.field_validation != "Ignore":
            opts.warnings.extend(messages)
        for loc in unknown:
            _prune(body, loc)
        model = kind.model.model_validate(body, strict=True)
    obj = {"apiVersion": kind.api_version, "kind": kind.kind, **model.model_dump(exclude_none=True, exclude={"apiVersion", "kind"})}
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    for key in ("labels", "annotations"):  # kube omits empty maps (e.g. after removing the last label)
        if meta.get(key) == {}:
            meta.pop(key)
    return obj


def _check_metadata(kind, obj):
    meta = obj["metadata"]
    causes = name_problems(meta.get("name")) + label_problems(meta.get("labels"))
    if kind.namespaced:  # from the URL: unchecked, it would reach the store as part of a key
        causes += name_problems(meta.get("namespace"), "metadata.namespace")
    if causes:
        raise invalid(kind.kind, meta.get("name") or "", kind.resource, causes)


def _place(kind, obj, namespace, name=None):
    """Fill or check metadata.namespace (and name on updates) against the URL."""
    meta = obj["metadata"]
    if kind.namespaced:
        if meta.get("namespace") not in (None, "", namespace):
            raise BadRequest("the namespace of the provided object does not match the namespace sent on the request")
        meta["namespace"] = namespace
    else:
        meta.pop("namespace", None)
    if name is not None and meta.get("name") not in (None, "", name):
        raise BadRequest(f'the name of the object ({meta.get("name")}) does not match the name on the URL ({name})')
    if name is not None:
        meta["name"] = name


def create(kind, namespace, body, principal, opts):
    obj = validate(kind, body, opts)
    _place(kind, obj, namespace)
    meta = obj["metadata"]
    if not meta.get("name") and meta.get("generateName"):
        meta["name"] = meta["generateName"] + "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
    _check_metadata(kind, obj)
    for key in SERVER_OWNED:
        meta.pop(key, None)
    meta.update(uid=new_uid(), creationTimestamp=now_iso(), generation=1, resourceVersion=str(store.next_rv()))
    meta["finalizers"] = sorted(set(meta.get("finalizers") or []) | set(kind.finalizers)) or None
    if not meta["finalizers"]:
        meta.pop("finalizers")
    obj["status"] = {}
    if kind.admit:
        kind.admit(obj, None, principal)
    if opts.dry_run:
        if store.get(kind.plural, namespace if kind.namespaced else "", meta["name"]) is not None:
            raise AlreadyExists(f'{kind.resource} "{meta["name"]}" already exists',
                                {"name": meta["name"], "group": config.GROUP, "kind": kind.plural})
        return obj
    try:
        store.create(kind.plural, _stored(kind, obj))
    except Exception as e:
        if getattr(e, "reason", "") == "AlreadyExists":
            e.message = f'{kind.resource} "{meta["name"]}" already exists'
            e.details = {"name": meta["name"], "group": config.GROUP, "kind": kind.plural}
        raise
    _written(kind, obj)
    if kind.enqueue_on(None, obj):
        jobs.enqueue(kind.plural, namespace, meta["name"], "create")
    return obj


def get(kind, namespace, name):
    obj = store.get(kind.plural, namespace if kind.namespaced else "", name)
    if obj is None:
        raise not_found(kind.resource, name)
    return obj


def _merge_server_fields(kind, old, new):
    """Carry server-owned metadata and status over from the stored object (generation: see _bump_generation)."""
    for key in SERVER_OWNED:
        if key in old["metadata"]:
            new["metadata"][key] = old["metadata"][key]
        else:
            new["metadata"].pop(key, None)
    new["status"] = old.get("status", {})
    if kind.finalizers and not old["metadata"].get("deletionTimestamp"):
        # The server's finalizers stay until deletion starts (then the worker removes them after its
        # cleanup): a PUT of an object written without them, like the seed's update, must not make
        # the next delete skip the cleanup.
        finalizers = list(new["metadata"].get("finalizers") or [])
        new["metadata"]["finalizers"] = finalizers + [f for f in kind.finalizers if f not in finalizers]


def _bump_generation(old, new):
    """After admission: a spec it only re-defaulted (e.g. clusterRef {} filled back in) is no change."""
    if new.get("spec") != old.get("spec"):
        new["metadata"]["generation"] = old["metadata"].get("generation", 1) + 1


def _conflict(kind, name):
    return Conflict(
        f'Operation cannot be fulfilled on {kind.resource} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again",
        {"name": name, "group": config.GROUP, "kind": kind.plural},
    )


def _resource_version(body):
    meta = body.get("metadata") if isinstance(body, dict) else None
    return meta.get("resourceVersion") if isinstance(meta, dict) else None


def update(kind, namespace, name, mutate, principal, opts, expected_rv=None, status_only=False, precheck=None):
    """Read-modify-write with optimistic concurrency.

    mutate(current) returns the new body. With expected_rv (a PUT carrying resourceVersion) a
    stale version is a 409; without, a lost race is retried on the fresh object, as kube does for
    patches. A write that leaves a deleting object without finalizers removes it. precheck(old)
    runs on every object read before it is changed (object-level authorization).
    """
    namespace = namespace if kind.namespaced else ""
    for attempt in range(MAX_UPDATE_ATTEMPTS):
        old = get(kind, namespace, name)
        if precheck:
            precheck(old)
        if expected_rv and expected_rv != old["metadata"]["resourceVersion"]:
            raise _conflict(kind, name)
        desired = mutate(copy.deepcopy(old))
        if not status_only and _resource_version(desired) not in (None, "", old["metadata"]["resourceVersion"]):
            # A body or patch that names a resourceVersion is a precondition, as in kube-apiserver
            # (e.g. `kubectl edit` of a stale copy, or `kubectl apply` of a file holding one).
            raise _conflict(kind, name)
        if status_only:
            new = copy.deepcopy(old)
            new["status"] = desired.get("status") or {}
        else:
            new = validate(kind, desired, opts)
            _place(kind, new, namespace, name)
            _merge_server_fields(kind, old, new)
            _check_metadata(kind, new)
            if kind.admit:
                kind.admit(new, old, principal)
            _bump_generation(old, new)
            new = _stored(kind, new)
        if new == old:
            return old
        new["metadata"]["resourceVersion"] = str(store.next_rv(old["metadata"]["resourceVersion"]))
        gone = bool(new["metadata"].get("deletionTimestamp")) and not new["metadata"].get("finalizers")
        if opts.dry_run:
            return new
        try:
            written = store.replace(kind.plural, new, old["metadata"]["resourceVersion"], deleted=gone)
        except Conflict:
            if expected_rv:
                raise _conflict(kind, name)
            _backoff(attempt)
            continue
        if not written:
            raise not_found(kind.resource, name)
        _written(kind, new)
        if not gone and kind.enqueue_on(old, new):
            jobs.enqueue(kind.plural, namespace, name, "update")
        return new
    raise _conflict(kind, name)


def delete(kind, namespace, name, principal, opts, preconditions=None, precheck=None):
    """Mark for deletion (finalizers pending: the worker tears down, then removes them) or remove now."""
    preconditions = preconditions or {}

    def mark(obj):
        meta = obj["metadata"]
        for key in ("uid", "resourceVersion"):
            if preconditions.get(key) and preconditions[key] != meta.get(key):
                raise Conflict(f"Precondition failed: {key} in precondition: {preconditions[key]}, {key} in object meta: {meta.get(key)}")
        meta.setdefault("deletionTimestamp", now_iso())
        return obj

    namespace = namespace if kind.namespaced else ""
    for attempt in range(MAX_UPDATE_ATTEMPTS):
        old = get(kind, namespace, name)
        if precheck:
            precheck(old)
        new = mark(copy.deepcopy(old))
        if new == old:
            return old
        new["metadata"]["resourceVersion"] = str(store.next_rv(old["metadata"]["resourceVersion"]))
        gone = not new["metadata"].get("finalizers")
        if opts.dry_run:
            return new
        try:
            if not store.replace(kind.plural, new, old["metadata"]["resourceVersion"], deleted=gone):
                raise not_found(kind.resource, name)
        except Conflict:
            _backoff(attempt)
            continue
        _written(kind, new)
        if not gone and kind.enqueue_on(old, new):
            jobs.enqueue(kind.plural, namespace, name, "delete")
        return new
    raise _conflict(kind, name)


def list_objects(kind, namespace, limit=None, continue_token=None, accept=lambda obj: True):
    """A page of a list: (objects, continue token or None, list resourceVersion)."""
    start_key, rv = store.decode_continue(continue_token) if continue_token else (None, store.current_rv())
    objects, last_key = store.list_page(kind.plural, namespace if kind.namespaced else "", limit, start_key, accept) \
        if namespace is not None or not kind.namespaced else store.list_page(kind.plural, None, limit, start_key, accept)
    return objects, (store.encode_continue(last_key, rv) if last_key else None), rv


def watch(kind, namespace, since_rv, accept, timeout):
    """Events after since_rv, waiting up to `timeout` seconds for the first one (a bounded long-poll).

    Returns (events, last rv). since_rv None/"0" starts with ADDED events for what exists now.
    """
    deadline = time.monotonic() + timeout
    events = []
    if not since_rv or since_rv == "0":
        objects, _, since_rv = list_objects(kind, namespace, accept=accept)
        events = [("ADDED", obj) for obj in objects]
    try:
        since = int(since_rv)
    except ValueError as e:
        raise BadRequest(f'invalid resourceVersion "{since_rv}"') from e
    while True:
        for event_type, obj in store.changes_since(kind.plural, since):
            rv = int(obj["metadata"]["resourceVersion"])
            since = max(since, rv)
            if kind.namespaced and namespace is not None and obj["metadata"].get("namespace") != namespace:
                continue
            if not accept(obj):
                continue
            events.append((event_type, obj))
        if events or time.monotonic() >= deadline:
            return events, str(since)
        time.sleep(min(config.WATCH_POLL_SECONDS, max(0.0, deadline - time.monotonic())))
