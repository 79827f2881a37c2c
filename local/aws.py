"""The local AWS: moto's server in-process, resources created from infra/resources.yaml, state kept on disk."""
import json
import logging
import os
import socket
import threading
from pathlib import Path

from infra import cfn

INFRA = cfn.RESOURCES
MOTO_ACCOUNT_ID = "123456789012"


def infra_resources():
    """The complete resources of infra/resources.yaml (the Chalice patches in it have no Type)."""
    return cfn.typed_resources(cfn.load(INFRA))


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
    """Create the table, queues and bucket of infra/resources.yaml, idempotently. Returns their names.

    The same properties CloudFormation gets (keys, indexes, TTL, stream, queue timeouts, redrive, versioning);
    what only matters on AWS (deletion protection, PITR, encryption, IAM, alarms) is left out."""
    import boto3

    dynamodb, sqs, s3 = boto3.client("dynamodb"), boto3.client("sqs"), boto3.client("s3")
    variables = {"Stage": stage, "AWS::AccountId": MOTO_ACCOUNT_ID, "AWS::Region": dynamodb.meta.region_name}
    resources = infra_resources()
    names = {}
    for logical, resource in resources.items():
        props = resource["Properties"]
        if resource["Type"] == "AWS::DynamoDB::Table":
            name = cfn.sub(props["TableName"], variables)
            names[logical] = name
            if name in dynamodb.list_tables()["TableNames"]:
                continue
            args = {k: props[k] for k in ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes", "BillingMode") if k in props}
            if "StreamSpecification" in props:
                args["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
            dynamodb.create_table(TableName=name, **args)
            if "TimeToLiveSpecification" in props:
                dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=props["TimeToLiveSpecification"])
    queues = {k: v for k, v in resources.items() if v["Type"] == "AWS::SQS::Queue"}
    # Dead-letter queues first: a redrive policy names its target's ARN.
    for logical, resource in sorted(queues.items(), key=lambda item: "RedrivePolicy" in item[1]["Properties"]):
        props = resource["Properties"]
        name = cfn.sub(props["QueueName"], variables)
        names[logical] = name
        attributes = {k: str(v) for k, v in props.items() if k in ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds")}
        if "RedrivePolicy" in props:
            policy = dict(props["RedrivePolicy"])
            target = policy["deadLetterTargetArn"]["Fn::GetAtt"][0]
            url = sqs.get_queue_url(QueueName=names[target])["QueueUrl"]
            policy["deadLetterTargetArn"] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            attributes["RedrivePolicy"] = json.dumps(policy)
        sqs.create_queue(QueueName=name, Attributes=attributes)
    for logical, resource in resources.items():
        if resource["Type"] == "AWS::S3::Bucket":
            props = resource["Properties"]
            name = cfn.sub(props["BucketName"], variables)
            names[logical] = name
            if any(b["Name"] == name for b in s3.list_buckets().get("Buckets", [])):
                continue
            region = s3.meta.region_name
            s3.create_bucket(Bucket=name, **({} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}))
            if "VersioningConfiguration" in props:
                s3.put_bucket_versioning(Bucket=name, VersioningConfiguration=props["VersioningConfiguration"])
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
