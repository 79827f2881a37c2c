"""The SQS job envelope. Jobs are level-triggered: "reconcile <kind> <namespace>/<name>".

The worker always re-reads the latest object, so duplicate, late or reordered deliveries are
harmless, and a standard queue can use per-message DelaySeconds for readiness polling (FIFO cannot).
"""
import json
import logging
import math

from . import aws, config

log = logging.getLogger(__name__)
_queue_urls = {}


def queue_url(name=None):
    """The jobs queue's URL (or another queue's by name), looked up once per warm Lambda."""
    if name is None and config.JOBS_QUEUE_URL:
        return config.JOBS_QUEUE_URL
    name = name or config.JOBS_QUEUE_NAME
    if name not in _queue_urls:
        _queue_urls[name] = aws.client("sqs").get_queue_url(QueueName=name)["QueueUrl"]
    return _queue_urls[name]


def encode(plural, namespace, name, reason, attempt=0, failures=0):
    """attempt counts looks at the object (readiness backoff); failures counts temporary errors."""
    return json.dumps({"kind": plural, "namespace": namespace or "", "name": name,
                       "reason": reason, "attempt": attempt, "failures": failures}, sort_keys=True)


def decode(body):
    """A job dict, or None for a body that is not one of ours (it is dropped, with a log line)."""
    try:
        job = json.loads(body)
        if all(isinstance(job.get(k), str) for k in ("kind", "namespace", "name", "reason")):
            job["attempt"] = int(job.get("attempt") or 0)
            job["failures"] = int(job.get("failures") or 0)
            return job
    except (ValueError, TypeError, AttributeError):
        pass
    return None


def enqueue(plural, namespace, name, reason, delay_seconds=0, attempt=0, failures=0):
    """Send one job. Returns False instead of raising: the write already happened, and the periodic
    reconciler re-enqueues objects whose status lags their generation, so a lost send converges."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        aws.client("sqs").send_message(QueueUrl=queue_url(), MessageBody=encode(plural, namespace, name, reason, attempt, failures),
                               DelaySeconds=max(0, min(900, math.ceil(delay_seconds))))
        return True
    except (BotoCoreError, ClientError) as e:
        log.warning("enqueue of %s %s/%s failed (%s); the reconciler will retry", plural, namespace, name, e)
        return False


def dead_letter(job, error):
    """Park a job that exhausted its retries on the DLQ, with the last error, for an operator to redrive."""
    body = json.loads(encode(job["kind"], job["namespace"], job["name"], job["reason"], job["attempt"], job.get("failures", 0)))
    body["error"] = error
    aws.client("sqs").send_message(QueueUrl=queue_url(config.JOBS_DLQ_NAME), MessageBody=json.dumps(body, sort_keys=True))
