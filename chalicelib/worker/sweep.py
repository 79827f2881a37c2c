"""The scheduled reconciler: finds instances that need the worker and were not (or no longer are)
queued, so a lost enqueue, a crashed worker or an inactive cluster still converges. Also enforces
sleep mode's sleep-after and delete-after. Never imports the kubernetes client."""
import logging
import time
import zlib
from datetime import datetime, timezone

from .. import config, jobs, objects
from ..errors import ApiError
from ..resources.instances import INSTANCES
from .reconcile import SLEEPING_SINCE, WORKER

log = logging.getLogger(__name__)
SLEEP_AFTER = "sleepmode.loft.sh/sleep-after"
DELETE_AFTER = "sleepmode.loft.sh/delete-after"
LAST_ACTIVITY = "sleepmode.loft.sh/last-activity"
SLEEP_TYPE = "sleepmode.loft.sh/sleep-type"


def _epoch(timestamp):
    return datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()


def _last_activity(instance):
    annotations = instance["metadata"].get("annotations") or {}
    try:
        return float(annotations[LAST_ACTIVITY])
    except (KeyError, ValueError):
        return _epoch(instance["metadata"]["creationTimestamp"])


def _seconds(annotations, key):
    try:
        return int(annotations.get(key) or 0)
    except ValueError:
        return 0


# Failed for these reasons means the worker gave up on a host that misbehaved, not on a bad spec:
# the sweep tries again after STUCK_SECONDS. Permanent failures (bad template, host rejected an
# object) stay Failed until the spec changes.
TEMPORARY_REASONS = ("HostError", "HostUnreachable", "ClusterNotReady", "NamespaceTerminating", "AlreadyExists")


def _stuck(instance, now):
    status = instance.get("status") or {}
    retryable = status.get("phase") == "Failed" and status.get("reason") in TEMPORARY_REASONS
    if status.get("phase") not in (None, "", "Pending") and not retryable:
        return False
    times = [_epoch(c["lastTransitionTime"]) for c in status.get("conditions") or [] if c.get("lastTransitionTime")]
    since = max(times) if times else _epoch(instance["metadata"]["creationTimestamp"])
    return now - since > config.STUCK_SECONDS


def _quiet(instance, now):
    """Unchanged for STUCK_SECONDS: its own job (sent with the write) had time to run. resourceVersion
    is a microsecond clock, so it dates the last write without another attribute."""
    try:
        return now - int(instance["metadata"]["resourceVersion"]) / 1e6 > config.STUCK_SECONDS
    except (KeyError, TypeError, ValueError):
        return True


def needs_work(instance, now):
    """Deleting, or a generation the worker never saw, and quiet since; or stuck. Not every lagging
    object: a fresh one has its job in flight, and a second delivery would only race it."""
    meta, status = instance["metadata"], instance.get("status") or {}
    lagging = bool(meta.get("deletionTimestamp")) or status.get("observedGeneration") != meta.get("generation")
    return lagging and _quiet(instance, now) or _stuck(instance, now)


def resync_due(instance, now):
    """Converged instances get a host check every RESYNC_MINUTES (objects deleted or changed by hand
    on the host come back), spread over the period by uid so no minute gets them all."""
    period = config.RESYNC_MINUTES
    if not period or (instance.get("status") or {}).get("phase") not in ("Ready", "Sleeping"):
        return False
    return int(now // 60) % period == zlib.crc32(instance["metadata"]["uid"].encode()) % period


def _sleep(instance, now):
    def mark(current):
        annotations = current["metadata"].setdefault("annotations", {})
        annotations[SLEEPING_SINCE] = str(int(now))
        annotations[SLEEP_TYPE] = "inactivity"
        return current
    objects.update(INSTANCES, instance["metadata"]["namespace"], instance["metadata"]["name"], mark, WORKER, objects.Options())


def run(now=None):
    """One sweep over every instance. Returns counts, for logs and tests."""
    now = now or time.time()
    counts = {"seen": 0, "enqueued": 0, "slept": 0, "deleted": 0}
    token = None
    while True:
        page, token, _ = objects.list_objects(INSTANCES, None, limit=200, continue_token=token)
        for instance in page:
            counts["seen"] += 1
            meta = instance["metadata"]
            annotations = meta.get("annotations") or {}
            idle = now - _last_activity(instance)
            try:
                if not meta.get("deletionTimestamp") and _seconds(annotations, DELETE_AFTER) and idle > _seconds(annotations, DELETE_AFTER):
                    objects.delete(INSTANCES, meta["namespace"], meta["name"], WORKER, objects.Options())
                    counts["deleted"] += 1
                    continue
                if not annotations.get(SLEEPING_SINCE) and _seconds(annotations, SLEEP_AFTER) and idle > _seconds(annotations, SLEEP_AFTER):
                    _sleep(instance, now)
                    counts["slept"] += 1
                    continue
            except ApiError as e:
                log.warning("sleep mode for %s/%s: %s", meta["namespace"], meta["name"], e.message)
            if (needs_work(instance, now) or resync_due(instance, now)) and jobs.enqueue(INSTANCES.plural, meta["namespace"], meta["name"], "sweep"):
                counts["enqueued"] += 1
        if not token:
            return counts
