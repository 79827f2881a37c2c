"""Settings from the environment, read once per (warm) Lambda."""
import json
import os

TABLE_NAME = os.environ.get("TABLE_NAME", "vcp-objects")
JOBS_QUEUE_NAME = os.environ.get("JOBS_QUEUE_NAME", "vcp-jobs")
JOBS_QUEUE_URL = os.environ.get("JOBS_QUEUE_URL", "")
JOBS_DLQ_NAME = os.environ.get("JOBS_DLQ_NAME", "vcp-jobs-dlq")
# Worker retry policy: temporary host errors back off exponentially, then the job is dead-lettered.
WORKER_MAX_ATTEMPTS = int(os.environ.get("WORKER_MAX_ATTEMPTS", "8"))
WORKER_BACKOFF_BASE_SECONDS = float(os.environ.get("WORKER_BACKOFF_BASE_SECONDS", "1"))
WORKER_BACKOFF_CAP_SECONDS = float(os.environ.get("WORKER_BACKOFF_CAP_SECONDS", "60"))
# The sweep re-enqueues instances stuck in a non-terminal phase for longer than this.
STUCK_SECONDS = int(os.environ.get("STUCK_SECONDS", "300"))
# Every converged instance is checked against its host once per this many minutes (0: never).
RESYNC_MINUTES = int(os.environ.get("RESYNC_MINUTES", "10"))
API_PREFIX = "/kubernetes/management"
GROUP = "management.loft.sh"
VERSION = "v1"
PROJECT_NAMESPACE_PREFIX = os.environ.get("PROJECT_NAMESPACE_PREFIX", "loft-p-")
MAX_BODY_BYTES = int(os.environ.get("MAX_BODY_BYTES", str(1024 * 1024)))
# How long a watch request may stay open; API Gateway cuts integrations at 29 s.
WATCH_MAX_SECONDS = float(os.environ.get("WATCH_MAX_SECONDS", "25"))
WATCH_POLL_SECONDS = float(os.environ.get("WATCH_POLL_SECONDS", "0.5"))
# Warm Lambdas cache access-key lookups this long; a revoked key stops working within it.
AUTH_CACHE_SECONDS = float(os.environ.get("AUTH_CACHE_SECONDS", "5"))
# Deleted objects stay as tombstones this long so watchers see the DELETED event.
TOMBSTONE_SECONDS = int(os.environ.get("TOMBSTONE_SECONDS", "3600"))
LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
# Host clusters instances may run on: name -> {"eks": {"name", "region"}} or {"kubeconfig", "context"}.
HOST_CLUSTERS = json.loads(os.environ.get("HOST_CLUSTERS") or '{"loft-cluster": {}}')
DEFAULT_CLUSTER = next(iter(HOST_CLUSTERS), "")
# Server URL written into vcluster kubeconfigs ({name}, {namespace}, {cluster}); empty keeps the vcluster's own.
VCLUSTER_SERVER_URL = os.environ.get("VCLUSTER_SERVER_URL", "")
