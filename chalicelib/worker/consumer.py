"""The SQS Lambda: a batch of jobs in, a partial batch response out (one bad job never redelivers
its neighbours: only the failed message ids are reported, SQS keeps just those)."""
import logging

from .. import jobs
from . import reconcile

log = logging.getLogger(__name__)


def consume(records):
    """records: (message id, body) pairs. Returns the Lambda partial batch response."""
    failures = []
    for message_id, body in records:
        job = jobs.decode(body)
        if job is None:
            log.warning("dropping message %s: not a job: %.200r", message_id, body)
            continue
        try:
            reconcile.process(job)
        except Exception:
            log.exception("job %s for %s/%s failed; SQS will redeliver it", message_id, job["namespace"], job["name"])
            failures.append({"itemIdentifier": message_id})
    return {"batchItemFailures": failures}
