"""Host cluster connections through the official kubernetes client: EKS (describe + STS token) or a
kubeconfig. Kubernetes and urllib3 errors become TemporaryError/PermanentError here and go no further."""
import base64
import json
import tempfile
import threading
import time

from .. import config
from .errors import AlreadyExists, PermanentError, TemporaryError

EKS_TOKEN_SECONDS = 15 * 60
# A failed request is retried in place this many times (5xx, 429, dropped connections), with a short
# backoff that honours Retry-After: one flaky call must not cost the whole job a redelivery.
REQUEST_RETRIES = 4
RETRY_BASE_SECONDS = 0.05
RETRY_AFTER_CAP_SECONDS = 2.0
REFRESH_BEFORE_SECONDS = 5 * 60
_clients = {}
_lock = threading.Lock()


def eks_token(cluster_name, region, session=None):
    """The EKS bearer token: a presigned STS GetCallerIdentity URL, `k8s-aws-v1.` + base64url, no padding."""
    import botocore.session
    from botocore.signers import RequestSigner

    session = session or botocore.session.get_session()
    sts = session.create_client("sts", region_name=region)
    signer = RequestSigner(sts.meta.service_model.service_id, region, "sts", "v4", session.get_credentials(), session.get_component("event_emitter"))
    url = signer.generate_presigned_url(
        {"method": "GET", "url": f"https://sts.{region}.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15",
         "body": {}, "headers": {"x-k8s-aws-id": cluster_name}, "context": {}},
        region_name=region, expires_in=60, operation_name="")
    return "k8s-aws-v1." + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


def _eks_client(settings):
    import boto3
    from kubernetes import client

    eks = boto3.client("eks", region_name=settings.get("region"))
    cluster = eks.describe_cluster(name=settings["name"])["cluster"]
    configuration = client.Configuration()
    configuration.host = cluster["endpoint"]
    ca = tempfile.NamedTemporaryFile(delete=False, suffix=".crt")
    ca.write(base64.b64decode(cluster["certificateAuthority"]["data"]))
    ca.close()
    configuration.ssl_ca_cert = ca.name
    configuration.api_key = {"authorization": "Bearer " + eks_token(settings["name"], settings.get("region") or eks.meta.region_name)}
    return client.ApiClient(configuration)


def _kubeconfig_client(settings):
    from kubernetes import client, config as kube_config

    configuration = client.Configuration()
    kube_config.load_kube_config(config_file=settings["kubeconfig"], context=settings.get("context"),
                                 client_configuration=configuration, persist_config=False)
    configuration.retries = False
    return client.ApiClient(configuration)


def client_for(cluster):
    """An ApiClient for a configured host cluster, rebuilt before an EKS token could expire."""
    settings = config.HOST_CLUSTERS.get(cluster)
    if settings is None:
        raise PermanentError("ClusterNotFound", f'host cluster "{cluster}" is not configured')
    now = time.monotonic()
    with _lock:
        hit = _clients.get(cluster)
        if hit and hit[0] > now:
            return hit[1]
    try:
        api_client = _eks_client(settings["eks"]) if "eks" in settings else _kubeconfig_client(settings)
    except (KeyError, OSError, ValueError) as e:
        raise PermanentError("ClusterNotReady", f'host cluster "{cluster}" is misconfigured: {e}') from e
    except Exception as e:
        raise TemporaryError("ClusterNotReady", f'host cluster "{cluster}" unreachable: {e}') from e
    lifetime = EKS_TOKEN_SECONDS - REFRESH_BEFORE_SECONDS if "eks" in settings else 3600
    with _lock:
        _clients[cluster] = (now + lifetime, api_client)
    return api_client


class Host:
    """Raw JSON requests to one host cluster; the only place that touches the kubernetes client."""

    TIMEOUT = (3, 15)

    def __init__(self, cluster):
        self.cluster = cluster
        self.api = client_for(cluster)
        self.calls = 0

    def request(self, method, path, body=None, content_type="application/json", query=None):
        """The decoded answer, or None for 404. Raises TemporaryError/PermanentError otherwise.

        Every request the worker makes is idempotent (GET, create-if-missing, merge patch, delete),
        so transient failures are retried here; a create retried after its answer was lost comes
        back as AlreadyExists, which apply() turns into a read."""
        for retry in range(REQUEST_RETRIES + 1):
            try:
                return self._once(method, path, body, content_type, query)
            except _Transient as e:
                if retry == REQUEST_RETRIES:
                    raise e.error from e.__cause__
                time.sleep(min(RETRY_AFTER_CAP_SECONDS, e.retry_after or RETRY_BASE_SECONDS * (2 ** retry)))

    def _once(self, method, path, body, content_type, query):
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        self.calls += 1
        try:
            response = self.api.call_api(
                path, method, query_params=list((query or {}).items()),
                header_params={"Content-Type": content_type, "Accept": "application/json"},
                body=body, auth_settings=["BearerToken"], _preload_content=False,
                _return_http_data_only=True, _request_timeout=self.TIMEOUT)
            data = response.data
            return json.loads(data) if data else {}
        except ApiException as e:
            if e.status == 404:
                return None
            if e.status == 409 and _reason(e) == "AlreadyExists":
                raise AlreadyExists("AlreadyExists", f"{method} {path}: {_message(e)}") from e
            if e.status == 409:  # a resourceVersion conflict: the next delivery re-reads
                raise TemporaryError("HostError", f"{method} {path}: {e.status} {e.reason}") from e
            if e.status == 429 or e.status >= 500:
                raise _Transient(TemporaryError("HostError", f"{method} {path}: {e.status} {e.reason}"),
                                 _retry_after(e)) from e
            raise PermanentError("HostRejected", f"{method} {path}: {e.status} {_message(e)}") from e
        except (HTTPError, OSError) as e:
            raise _Transient(TemporaryError("HostUnreachable", f"{method} {path}: {e.__class__.__name__}")) from e


class _Transient(Exception):
    """Internal: a failure worth retrying in place; carries the TemporaryError to raise at the end."""

    def __init__(self, error, retry_after=None):
        super().__init__(error.message)
        self.error, self.retry_after = error, retry_after


def _retry_after(error):
    try:
        return float((error.headers or {}).get("Retry-After"))
    except (TypeError, ValueError):
        return None


def _reason(error):
    try:
        return json.loads(error.body).get("reason")
    except (TypeError, ValueError, AttributeError):
        return None


def _message(error):
    try:
        return json.loads(error.body).get("message") or error.reason
    except (TypeError, ValueError, AttributeError):
        return error.reason
