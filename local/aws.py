"""The local AWS: moto's server in-process, resources created from infra/resources.yaml, state kept on disk."""
import json
import logging
import os
import socket
import threading
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
INFRA = ROOT / "infra" / "resources.yaml"


class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation short-form tags (!Sub, !GetAtt, !Ref) as plain {Fn: value} mappings."""


for _tag, _fn in (("!Sub", "Fn::Sub"), ("!GetAtt", "Fn::GetAtt"), ("!Ref", "Ref")):
    _CfnLoader.add_constructor(_tag, lambda loader, node, fn=_fn: {fn: loader.construct_scalar(node)})


def infra_resources():
    with open(INFRA) as f:
        return yaml.load(f, Loader=_CfnLoader)["Resources"]


def _sub(value, stage):
    if isinstance(value, dict) and "Fn::Sub" in value:
        return value["Fn::Sub"].replace("${Stage}", stage)
    return value


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto(port=None):
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = port or free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    server._server.app = _one_dynamodb_request_at_a_time(server._server.app)
    return server, f"http://127.0.0.1:{port}"


def _one_dynamodb_request_at_a_time(app):
    """moto checks a write's condition and then writes, unlocked, on a threaded server: two concurrent
    conditional writes can both pass. DynamoDB is atomic per item, and optimistic concurrency
    (resourceVersion) depends on it, so DynamoDB requests are served one at a time here."""
    lock = threading.Lock()

    def serve(environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            with lock:
                return list(app(environ, start_response))
        return app(environ, start_response)
    return serve


def use_endpoint(endpoint, region="us-east-1"):
    """Point every boto3 client of this process (and its children) at the local AWS."""
    os.environ.update({
        "AWS_ENDPOINT_URL": endpoint, "AWS_DEFAULT_REGION": region,
        "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
    })


def create_resources(stage="local"):
    """Create the tables and queues of infra/resources.yaml, idempotently. Returns their names."""
    import boto3

    dynamodb, sqs = boto3.client("dynamodb"), boto3.client("sqs")
    resources = infra_resources()
    names = {}
    for logical, resource in resources.items():
        props = resource["Properties"]
        if resource["Type"] == "AWS::DynamoDB::Table":
            name = _sub(props["TableName"], stage)
            names[logical] = name
            if name in dynamodb.list_tables()["TableNames"]:
                continue
            args = {k: props[k] for k in ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes", "BillingMode") if k in props}
            if "StreamSpecification" in props:
                args["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
            dynamodb.create_table(TableName=name, **args)
            if "TimeToLiveSpecification" in props:
                dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=props["TimeToLiveSpecification"])
    for logical, resource in resources.items():
        props = resource["Properties"]
        if resource["Type"] == "AWS::SQS::Queue":
            name = _sub(props["QueueName"], stage)
            names[logical] = name
            attributes = {k: str(v) for k, v in props.items() if k in ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds")}
            if "RedrivePolicy" in props:
                policy = dict(props["RedrivePolicy"])
                target = policy["deadLetterTargetArn"]["Fn::GetAtt"].split(".")[0]
                url = sqs.get_queue_url(QueueName=names[target])["QueueUrl"]
                policy["deadLetterTargetArn"] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
                attributes["RedrivePolicy"] = json.dumps(policy)
            sqs.create_queue(QueueName=name, Attributes=attributes)
    return names


class Snapshots:
    """Keeps the table's items in a JSON file: restored on start, saved every few seconds and on stop.

    moto has no persistence; SQS messages are not kept (the reconciler re-enqueues lagging objects).
    """

    def __init__(self, path, table, interval=2.0):
        import boto3

        self.path, self.table, self.interval = Path(path), table, interval
        self.client = boto3.client("dynamodb")
        self._stop = threading.Event()
        self._last = None

    def restore(self):
        if not self.path.exists():
            return 0
        items = json.loads(self.path.read_text() or "[]")
        for start in range(0, len(items), 25):
            batch = [{"PutRequest": {"Item": item}} for item in items[start:start + 25]]
            self.client.batch_write_item(RequestItems={self.table: batch})
        self._last = self.path.read_text()
        return len(items)

    def save(self):
        items, kwargs = [], {}
        while True:
            page = self.client.scan(TableName=self.table, **kwargs)
            items.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        text = json.dumps(sorted(items, key=lambda i: (i["pk"]["S"], i["sk"]["S"])))
        if text != self._last:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(text)
            tmp.replace(self.path)
            self._last = text

    def run_in_background(self):
        def loop():
            while not self._stop.wait(self.interval):
                try:
                    self.save()
                except Exception:
                    logging.getLogger(__name__).exception("snapshot failed")
        threading.Thread(target=loop, name="snapshots", daemon=True).start()

    def stop(self):
        self._stop.set()
        self.save()
