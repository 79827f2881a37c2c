"""Kubernetes-style HTTP verbs over any registered kind. Transport only: parse, call the domain, render.

Every route function takes the Chalice request and returns a Chalice Response; `guard` turns any
ApiError (or anything unexpected) into a Status body, so no traceback ever reaches a client.
"""
import json
import logging
import re

from chalice import Response

from .. import auth, authz, config, objects
from ..errors import ApiError, BadRequest, Forbidden, MethodNotAllowed, NotFound
from ..resources.kinds import by_plural
from ..resources.meta import parse_field_selector, parse_label_selector
from ..resources.projects import project_of
from . import discovery, negotiation, openapi, patches, tables

log = logging.getLogger(__name__)
LIST_MAX = 500
ABSENT_NAME_WATCH_SECONDS = 1.0
VERBS = {"GET": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


def respond(request, value, status=200, warnings=()):
    accept = request.headers.get("accept", "")
    body, content_type = negotiation.dump(value, accept)
    headers = {"Content-Type": content_type, "Cache-Control": "no-cache, private"}
    if warnings:
        headers["Warning"] = ", ".join('299 - "{}"'.format(w.replace("\\", "\\\\").replace('"', '\\"')) for w in warnings)
    return Response(body=body, status_code=status, headers=headers)


def status_response(error):
    return Response(body=json.dumps(error.status()), status_code=error.code, headers={"Content-Type": "application/json"})


def guard(handler):
    """Run a handler; map every failure to a Kubernetes Status."""
    def wrapped(request, *args, **kwargs):
        try:
            return handler(request, *args, **kwargs)
        except ApiError as e:
            return status_response(e)
        except Exception:
            log.exception("unhandled error on %s %s", request.method, request.context.get("path"))
            return status_response(ApiError("an internal error occurred; it has been logged"))
    return wrapped


def _query(request):
    return request.query_params or {}


def _flag(query, name):
    """A boolean query parameter as Go's strconv.ParseBool reads it (the Python client sends `True`)."""
    return query.get(name) in ("1", "t", "T", "true", "TRUE", "True")


def _options(request):
    query = _query(request)
    dry_run = query.get("dryRun", "")
    if dry_run not in ("", "All"):
        raise BadRequest(f'unsupported dryRun value "{dry_run}": only "All" is supported')
    validation = query.get("fieldValidation", "Warn") or "Warn"
    if validation not in ("Ignore", "Warn", "Strict"):
        raise BadRequest(f'invalid fieldValidation "{validation}": must be Ignore, Warn or Strict')
    return objects.Options(dry_run=dry_run == "All", field_validation=validation)


def _kind(plural, namespaced_route):
    kind = by_plural(plural)
    if kind is None or (namespaced_route and not kind.namespaced):
        raise NotFound("the server could not find the requested resource")
    return kind


def _limit(query):
    raw = query.get("limit") or "0"
    try:
        limit = int(raw)
    except ValueError as e:
        raise BadRequest(f'invalid limit "{raw}"') from e
    if limit < 0:
        raise BadRequest("limit must not be negative")
    return min(limit, LIST_MAX) if limit else 0


def _filters(kind, query):
    labels = parse_label_selector(query.get("labelSelector", ""))
    fields = parse_field_selector(query.get("fieldSelector", ""), kind.namespaced)
    return lambda obj: labels(obj["metadata"].get("labels")) and fields(obj)


def _list(request, kind, namespace, visible):
    query = _query(request)
    accept = request.headers.get("accept", "")
    selected = _filters(kind, query)
    matches = selected if visible is None else (lambda obj: selected(obj) and visible(obj))
    if _flag(query, "watch"):
        return _watch(request, kind, namespace, matches)
    items, token, rv = objects.list_objects(kind, namespace, _limit(query), query.get("continue"), matches)
    list_meta = {"resourceVersion": rv, **({"continue": token} if token else {})}
    if negotiation.wants_table(accept):
        return respond(request, tables.table(kind, items, list_meta, query.get("includeObject", "Metadata")))
    return respond(request, {"apiVersion": kind.api_version, "kind": kind.kind + "List", "metadata": list_meta, "items": items})


def _watches_absent_name(kind, namespace, field_selector):
    """True for a watch pinned to one name (fieldSelector metadata.name=N) whose object does not exist."""
    pinned = re.fullmatch(r"\s*metadata\.name\s*==?\s*([^,\s]+)\s*", field_selector or "")
    if not pinned or (kind.namespaced and namespace is None):
        return False
    try:
        objects.get(kind, namespace, pinned.group(1))
    except NotFound:
        return True
    return False


def _watch(request, kind, namespace, matches):
    """A bounded long-poll: newline-delimited watch events; kubectl re-watches from the last one."""
    query = _query(request)
    try:
        timeout = min(float(query.get("timeoutSeconds") or config.WATCH_MAX_SECONDS), config.WATCH_MAX_SECONDS)
    except ValueError as e:
        raise BadRequest("invalid timeoutSeconds") from e
    if _watches_absent_name(kind, namespace, query.get("fieldSelector", "")):
        # `kubectl delete` waits for its informer to stop, and that waits for the watch in flight (our
        # response is buffered: it cannot be cancelled early). After the DELETED event it re-watches
        # the name; ending that watch soon spares the user WATCH_MAX_SECONDS. Nothing is lost: the
        # client re-watches from the same resourceVersion (>= 1 s, so client-go sees no "very short watch").
        timeout = min(timeout, ABSENT_NAME_WATCH_SECONDS)
    events, _ = objects.watch(kind, namespace, query.get("resourceVersion"), matches, max(0.0, timeout))
    as_table = negotiation.wants_table(request.headers.get("accept", ""))
    include = query.get("includeObject", "Metadata")
    lines = [json.dumps({"type": kind_of_event, "object": tables.table(kind, [obj], include_object=include) if as_table else obj},
                        separators=(",", ":"))
             for kind_of_event, obj in events]
    return Response(body="".join(line + "\n" for line in lines), status_code=200,
                    headers={"Content-Type": "application/json", "Cache-Control": "no-cache, private"})


def _body(request):
    return negotiation.parse_body(request.raw_body, request.headers.get("content-type"))


def _delete_options(request):
    """DeleteOptions from the body (kubectl sends propagationPolicy) or the query."""
    raw = request.raw_body
    options = negotiation.parse_body(raw, request.headers.get("content-type")) if raw and raw.strip() else {}
    if not isinstance(options, dict):
        raise BadRequest("DeleteOptions must be an object")
    if not isinstance(options.get("preconditions") or {}, dict):
        raise BadRequest("DeleteOptions.preconditions must be an object")
    return options


def collection(request, plural, namespace=None):
    """GET (list/watch) and POST (create) on a collection; namespace None with GET lists all namespaces."""
    principal = auth.authenticate(request.headers.get("authorization"))
    negotiation.check_acceptable(request.headers.get("accept"))
    kind = _kind(plural, namespace is not None)
    if request.method == "GET":
        verb = "watch" if _flag(_query(request), "watch") else "list"
        return _list(request, kind, namespace, authz.check(principal, kind, verb, namespace))
    if request.method == "POST" and (namespace is not None or not kind.namespaced):
        authz.check(principal, kind, "create", namespace)
        opts = _options(request)
        obj = objects.create(kind, namespace, _body(request), principal, opts)
        return respond(request, obj, 201, opts.warnings)
    raise MethodNotAllowed(f"the server does not allow this method on the requested resource: {request.method}")


def item(request, plural, name, namespace=None):
    principal = auth.authenticate(request.headers.get("authorization"))
    negotiation.check_acceptable(request.headers.get("accept"))
    kind = _kind(plural, namespace is not None)
    if kind.namespaced and namespace is None:
        raise NotFound("the server could not find the requested resource")
    verb = VERBS.get(request.method)
    if verb is None:
        raise MethodNotAllowed(f"the server does not allow this method on the requested resource: {request.method}")
    allowed = authz.check(principal, kind, verb, namespace, name)

    def precheck(obj):
        authz.require(allowed, kind, principal, verb, obj)

    if request.method == "GET":
        obj = objects.get(kind, namespace, name)
        precheck(obj)
        if negotiation.wants_table(request.headers.get("accept", "")):
            return respond(request, tables.table(kind, [obj], include_object=_query(request).get("includeObject", "Metadata")))
        return respond(request, obj)
    if request.method == "PUT":
        opts = _options(request)
        body = _body(request)
        expected = ((body.get("metadata") or {}).get("resourceVersion") or None) if isinstance(body, dict) and isinstance(body.get("metadata"), dict) else None
        obj = objects.update(kind, namespace, name, lambda current: body, principal, opts, expected_rv=expected, precheck=precheck)
        return respond(request, obj, 200, opts.warnings)
    if request.method == "PATCH":
        opts = _options(request)
        parsed = patches.parse(request.raw_body, request.headers.get("content-type"))
        obj = objects.update(kind, namespace, name, lambda current: patches.apply(current, parsed), principal, opts, precheck=precheck)
        return respond(request, obj, 200, opts.warnings)
    if request.method == "DELETE":
        opts = _options(request)
        options = _delete_options(request)
        if options.get("dryRun"):
            opts.dry_run = True
        obj = objects.delete(kind, namespace, name, principal, opts, options.get("preconditions"), precheck=precheck)
        return respond(request, obj)


def subresource(request, plural, name, sub, namespace=None):
    """POST-only subresources (e.g. instances' kubeconfig): the kind's handler answers."""
    principal = auth.authenticate(request.headers.get("authorization"))
    kind = _kind(plural, namespace is not None)
    handler = kind.subresources.get(sub)
    if handler is None:
        raise NotFound(f"the server could not find the requested resource ({sub})")
    if request.method != "POST":
        raise MethodNotAllowed(f"the server does not allow this method on the requested resource: {request.method}")
    allowed = authz.check(principal, kind, "get", namespace, name)
    obj = objects.get(kind, namespace, name)
    authz.require(allowed, kind, principal, "get", obj)
    body = _body(request) if request.raw_body and request.raw_body.strip() else None
    return respond(request, handler(principal, obj, body), 201)


def read_only(request, produce, authenticated=True):
    """Discovery and other GET-only documents."""
    if authenticated:
        auth.authenticate(request.headers.get("authorization"))
    if request.method != "GET":
        raise MethodNotAllowed(f"the server does not allow this method on the requested resource: {request.method}")
    return respond(request, produce())


def openapi_v2(request):
    """Swagger 2.0: protobuf when asked for (kubectl <= 1.28 asks nothing else; served as octet-stream like
    kube-apiserver, since Go cannot parse the `@` in the proto media type), else JSON/YAML."""
    auth.authenticate(request.headers.get("authorization"))
    if request.method != "GET":
        raise MethodNotAllowed(f"the server does not allow this method on the requested resource: {request.method}")
    if openapi.OPENAPI_V2_PROTOBUF in (request.headers.get("accept") or ""):
        return Response(body=openapi.openapi_v2_protobuf(), status_code=200,
                        headers={"Content-Type": "application/octet-stream", "Cache-Control": "no-cache, private"})
    return respond(request, openapi.openapi_v2())


def project_namespace(request, name):
    """A project's namespace as a core/v1 Namespace, to those who may see the project."""
    principal = auth.authenticate(request.headers.get("authorization"))
    project = project_of(name)
    if not project or authz.project(project) is None:
        raise NotFound(f'namespaces "{name}" not found', {"name": name, "kind": "namespaces"})
    if not principal.admin and authz.project_role(principal, name) is None:
        raise Forbidden(f'namespaces "{name}" is forbidden: User "{principal.user}" cannot get resource "namespaces" in API group "" in the namespace "{name}"')
    return respond(request, discovery.namespace(name))
