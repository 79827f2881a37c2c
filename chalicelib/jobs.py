"""The SQS job envelope. Jobs are level-triggered: "reconcile <kind> <namespace>/<name>".

The worker always re-reads the latest object, so duplicate, late or reordered deliveries are
harmless, and a standard queue can use per-message DelaySeconds for readiness polling (FIFO cannot).
"""
import json
import logging
import threading

from . import config

log = logging.getLogger(__name__)
_local = threading.local()
_queue_url = {}


def _client():
    client = getattr(_local, "client", None)
    if client is None:
        import boto3

        client = _local.client = boto3.session.Session().client("sqs")
    return client


def queue_url():
    if config.JOBS_QUEUE_URL:
        return config.JOBS_QUEUE_URL
    if "url" not in _queue_url:
        _queue_url["url"] = _client().get_queue_url(QueueName=config.JOBS_QUEUE_NAME)["QueueUrl"]
    return _queue_url["url"]


def encode(plural, namespace, name, reason, attempt=0):
    return json.dumps({"kind": plural, "namespace": namespace or "", "name": name,
                       "reason": reason, "attempt": attempt}, sort_keys=True)


def decode(body):
    """A job dict, or None for a body that is not one of ours (it is dropped, with a log line)."""
    try:
        job = json.loads(body)
        if all(isinstance(job.get(k), str) for k in ("kind", "namespace", "name", "reason")):
            job["attempt"] = int(job.get("attempt") or 0)
            return job
    except (ValueError, TypeError, AttributeError):
        pass
    return None


def enqueue(plural, namespace, name, reason, delay_seconds=0, attempt=0):
    """Send one job. Returns False instead of raising: the write already happened, and the periodic
    reconciler re-enqueues objects whose status lags their generation, so a lost send converges."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        _client().send_message(QueueUrl=queue_url(), MessageBody=encode(plural, namespace, name, reason, attempt),
                               DelaySeconds=max(0, min(900, int(delay_seconds))))
        return True
    except (BotoCoreError, ClientError) as e:
        log.warning("enqueue of %s %s/%s failed (%s); the reconciler will retry", plural, namespace, name, e)
        return False
