"""First-run data so the seed's commands work verbatim: an admin user and key, project my-project and
template my-virtual-cluster-template (declaring my-parameter). Idempotent; runs on every start."""
from chalicelib import objects
from chalicelib.auth import Principal
from chalicelib.errors import AlreadyExists
from chalicelib.resources.accesskeys import ACCESS_KEYS, digest, split_key
from chalicelib.resources.projects import PROJECTS
from chalicelib.resources.templates import TEMPLATES
from chalicelib.resources.users import PLATFORM_ADMIN, USERS

ADMIN = Principal(user="admin", admin=True)
KEY_NAME = "bootstrap-admin"

SEED_TEMPLATE_VALUES = """\
# The vcluster chart values; placeholders name template parameters.
controlPlane:
  statefulSet:
    labels:
      my-parameter: "{{ .Values.my-parameter }}"
"""


def _ensure(kind, body):
    try:
        objects.create(kind, None, body, ADMIN, objects.Options())
    except AlreadyExists:
        pass


def run(key):
    """Ensure the seed objects exist and `key` (`bootstrap-admin.<secret>`) is the admin's key."""
    _ensure(USERS, {"metadata": {"name": "admin"}, "spec": {"username": "admin", "displayName": "Platform admin",
                                                            "clusterRoles": [{"name": PLATFORM_ADMIN}]}})
    _ensure(PROJECTS, {"metadata": {"name": "my-project"}, "spec": {"displayName": "My Project", "owner": {"user": "admin"}}})
    _ensure(TEMPLATES, {"metadata": {"name": "my-virtual-cluster-template"}, "spec": {
        "displayName": "My virtual cluster template",
        "parameters": [{"variable": "my-parameter", "label": "My parameter", "type": "string", "defaultValue": "my-value"}],
        "template": {"helmRelease": {"chart": {"name": "vcluster", "repo": "https://charts.loft.sh", "version": "0.20.0"},
                                     "values": SEED_TEMPLATE_VALUES}}}})
    _ensure(ACCESS_KEYS, {"metadata": {"name": KEY_NAME}, "spec": {"user": "admin", "displayName": "make run admin key"}})
    _, secret = split_key(key)
    objects.update(ACCESS_KEYS, None, KEY_NAME, lambda obj: {**obj, "status": {"keyHash": digest(secret)}},
                   ADMIN, objects.Options(), status_only=True)
