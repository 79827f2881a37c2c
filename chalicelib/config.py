"""Settings from the environment, read once per (warm) Lambda."""
import json
import os

TABLE_NAME = os.environ.get("TABLE_NAME", "vcp-objects")
JOBS_QUEUE_NAME = os.environ.get("JOBS_QUEUE_NAME", "vcp-jobs")
JOBS_QUEUE_URL = os.environ.get("JOBS_QUEUE_URL", "")
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
