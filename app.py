"""Wiring only: Chalice routes and event sources, one line each into chalicelib."""
from chalice import Chalice, Rate

from chalicelib import config
from chalicelib.api import discovery, openapi, routes
from chalicelib.resources import accesskeys, instances, projects, templates, users  # noqa: F401  (register kinds)

app = Chalice(app_name="loft-serverless")
app.log.setLevel(config.LOG_LEVEL)
app.api.binary_types.append(openapi.OPENAPI_V2_PROTOBUF)  # kubectl <= 1.28 accepts /openapi/v2 only as protobuf

ALL = ["GET", "POST", "PUT", "PATCH", "DELETE"]
ANY_BODY = ["*/*"]  # content types are checked by chalicelib.api.negotiation, which answers with a Status
P = config.API_PREFIX
G = f"{P}/apis/{config.GROUP}/{config.VERSION}"


def route(path, **kwargs):
    """Register all methods with any body type, so wrong ones get a Kubernetes Status, not Chalice's."""
    return app.route(path, methods=ALL, content_types=ANY_BODY, **kwargs)


def _serve(handler, *args, **kwargs):
    return routes.guard(handler)(app.current_request, *args, **kwargs)


@route("/readyz")
def readyz():
    return _serve(routes.read_only, lambda: {"status": "ok"}, authenticated=False)


@route(f"{P}/version")
def version():
    return _serve(routes.read_only, discovery.version, authenticated=False)


@route(f"{P}/api")
def core_versions():
    return _serve(routes.read_only, discovery.core_versions)


@route(f"{P}/api/v1")
def core_resources():
    return _serve(routes.read_only, discovery.core_resources)


@route(f"{P}/api/v1/namespaces/{{namespace}}")
def namespace(namespace):
    return _serve(routes.project_namespace, namespace)


@route(f"{P}/apis")
def groups():
    return _serve(routes.read_only, discovery.groups)


@route(f"{P}/apis/{config.GROUP}")
def group():
    return _serve(routes.read_only, discovery.group)


@route(G)
def group_resources():
    return _serve(routes.read_only, discovery.resources)


@route(f"{P}/openapi/v2")
def openapi_v2():
    return _serve(routes.openapi_v2)


@route(f"{P}/openapi/v3")
def openapi_index():
    return _serve(routes.read_only, openapi.openapi_index)


@route(f"{P}/openapi/v3/apis/{config.GROUP}/{config.VERSION}")
def openapi_document():
    return _serve(routes.read_only, openapi.openapi_document)


@route(G + "/namespaces/{namespace}/{plural}")
def namespaced_collection(namespace, plural):
    return _serve(routes.collection, plural, namespace)


@route(G + "/namespaces/{namespace}/{plural}/{name}")
def namespaced_item(namespace, plural, name):
    return _serve(routes.item, plural, name, namespace)


@route(G + "/namespaces/{namespace}/{plural}/{name}/{sub}")
def namespaced_subresource(namespace, plural, name, sub):
    return _serve(routes.subresource, plural, name, sub, namespace)


@route(G + "/{plural}")
def cluster_collection(plural):
    return _serve(routes.collection, plural)


@route(G + "/{plural}/{name}")
def cluster_item(plural, name):
    return _serve(routes.item, plural, name)


@route(G + "/{plural}/{name}/{sub}")
def cluster_subresource(plural, name, sub):
    return _serve(routes.subresource, plural, name, sub)


@app.on_sqs_message(queue=config.JOBS_QUEUE_NAME, batch_size=10, name="worker")
def worker(event):
    # Imported here, not at the top: the API Lambda never loads the worker (nor the kubernetes client).
    from chalicelib.worker import consumer

    return consumer.consume((record.to_dict()["messageId"], record.body) for record in event)


@app.schedule(Rate(1, unit=Rate.MINUTES), name="sweep")
def sweep(event):
    from chalicelib.worker import sweep as reconciler

    return reconciler.run()
