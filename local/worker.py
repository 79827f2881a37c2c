"""Lambda's SQS trigger and EventBridge schedule, locally: poll moto's queue and call the same Chalice
handlers with real event payloads. Messages a handler reports as failed stay on the queue and come
back after the visibility timeout (then to the DLQ after maxReceiveCount), as on AWS."""
import logging
import threading
import time
import uuid

import boto3

log = logging.getLogger(__name__)


class WorkerLoop:
    def __init__(self, lambdas, queue_name, threads=2, visibility_seconds=30, sweep_seconds=60):
        """lambdas: the app module, whose `worker` and `sweep` are the Lambda handlers."""
        self.lambdas, self.threads = lambdas, threads
        self.visibility_seconds, self.sweep_seconds = visibility_seconds, sweep_seconds
        self.sqs = boto3.client("sqs")
        self.queue_url = self.sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
        self.queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self._stop = threading.Event()
        self._workers = []

    def start(self):
        for i in range(self.threads):
            self._spawn(self._poll, f"sqs-poller-{i}")
        if self.sweep_seconds > 0:
            self._spawn(self._schedule, "sweep-schedule")
        return self

    def _spawn(self, target, name):
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._workers.append(thread)

    def stop(self):
        self._stop.set()
        for thread in self._workers:
            thread.join(timeout=5)

    def _event(self, messages):
        return {"Records": [{
            "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
            "attributes": m.get("Attributes", {}), "messageAttributes": {}, "md5OfBody": m["MD5OfBody"],
            "eventSource": "aws:sqs", "eventSourceARN": self.queue_arn, "awsRegion": self.sqs.meta.region_name,
        } for m in messages]}

    def _poll(self):
        while not self._stop.is_set():
            try:
                answer = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                                  VisibilityTimeout=self.visibility_seconds, AttributeNames=["All"])
                messages = answer.get("Messages", [])
                if messages:
                    self.deliver(messages)
            except Exception:
                log.exception("worker loop error")
                time.sleep(1)

    def deliver(self, messages):
        """One Lambda invocation: delete what succeeded, leave the reported failures for redelivery."""
        result = self.lambdas.worker(self._event(messages), None) or {}
        failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
        done = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages) if m["MessageId"] not in failed]
        if done:
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=done)

    def _schedule(self):
        while not self._stop.wait(self.sweep_seconds):
            try:
                self.lambdas.sweep(scheduled_event(), None)
            except Exception:
                log.exception("sweep failed")


def scheduled_event():
    """The EventBridge (CloudWatch Events) payload a scheduled Lambda receives."""
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "123456789012", "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "region": "us-east-1", "resources": ["arn:aws:events:us-east-1:123456789012:rule/sweep"], "detail": {}}
