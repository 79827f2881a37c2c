"""In-process harness for the benchmarks: moto's mock_aws, the resources of infra/resources.yaml,
the bootstrap data of `make run` (admin key, project my-project), the Chalice app behind
chalice.test.Client, and a counter of AWS calls fed by botocore's `before-call` events."""
import collections
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
API = "/kubernetes/management/apis/management.loft.sh/v1"
KEY = "bootstrap-admin.bench-secret"


class Calls:
    """AWS calls seen through `before-call.*.*` on every boto3 client, with the time spent in them."""

    def __init__(self):
        self.calls = []
        self.seconds = 0.0
        self.items_read = 0
        self._started = {}

    def before(self, event_name, params=None, **_):
        _, service, operation = event_name.split(".", 2)
        target = ""
        if service == "dynamodb":
            body = json.loads((params or {}).get("body") or b"{}")
            key = body.get("Key") or body.get("Item") or {}
            target = (key.get("pk") or {}).get("S", "") or (body.get("IndexName") and f"index {body['IndexName']}") or \
                next(iter((body.get("ExpressionAttributeValues") or {}).values()), {}).get("S", "")
        self.calls.append((service, operation, target))
        self._started[id(params)] = time.perf_counter()

    def after(self, event_name, parsed=None, **_):
        if self._started:
            self.seconds += time.perf_counter() - self._started.popitem()[1]
        if isinstance(parsed, dict):
            self.items_read += parsed.get("ScannedCount", 0)

    def reset(self):
        self.calls, self.seconds, self.items_read = [], 0.0, 0

    def summary(self):
        counted = collections.Counter((service, operation) for service, operation, _ in self.calls)
        return ", ".join(f"{service}.{operation} x{n}" for (service, operation), n in sorted(counted.items())) or "none"


def start():
    """Enter mock_aws, create the stack's resources and bootstrap data; returns (client, calls, mock)."""
    os.environ.update({"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                       "LOG_LEVEL": "ERROR"})
    os.environ.pop("AWS_ENDPOINT_URL", None)
    sys.path.insert(0, str(ROOT))
    import boto3
    from moto import mock_aws

    calls = Calls()
    original = boto3.session.Session.client

    def client(self, *args, **kwargs):
        made = original(self, *args, **kwargs)
        made.meta.events.register("before-call.*.*", calls.before)
        made.meta.events.register("after-call.*.*", calls.after)
        return made

    boto3.session.Session.client = client
    mock = mock_aws()
    mock.start()
    from local import aws

    names = aws.create_resources("bench")
    os.environ.update({"TABLE_NAME": names["ObjectsTable"], "JOBS_QUEUE_NAME": names["JobsQueue"],
                       "JOBS_DLQ_NAME": names.get("JobsDeadLetterQueue", "")})
    from local import bootstrap

    bootstrap.run(KEY)
    import app
    from chalice.test import Client

    return Client(app.app), calls, mock


def headers(content_type="application/json"):
    return {"Authorization": f"Bearer {KEY}", "Content-Type": content_type}


def vci(name):
    return {"apiVersion": "management.loft.sh/v1", "kind": "VirtualClusterInstance", "metadata": {"name": name},
            "spec": {"displayName": name, "templateRef": {"name": "my-virtual-cluster-template"}}}


def request(client, method, path, body=None, content_type="application/json"):
    answer = getattr(client.http, method.lower())(path, headers=headers(content_type),
                                                  body=json.dumps(body) if body is not None else None)
    assert answer.status_code < 300, (method, path, answer.status_code, answer.body[:500])
    return json.loads(answer.body)
