"""A small, stateful Kubernetes API emulator that plays the HOST cluster in local runs and tests.

Why it exists: there is no Docker/kind here and kmock is unfit (LIBRARIES.md). It serves the API
subset the worker needs (core v1, apps/v1, rbac v1) over real HTTP so the official client runs end
to end, with the semantics that bite in production: uid, resourceVersion conflicts, Status errors,
immutable fields, namespace termination. It also plays vcluster (a StatefulSet becomes ready and
the `vc-<name>` kubeconfig Secret appears) and injects faults on demand. Not part of the Lambda
bundle. Usage: `emu = HostEmulator().start()`, or `python -m local.hostemu --port 6443`.
Not emulated: watch, kinds beyond RESOURCES (no pods), authn/authz, ownerReference garbage
collection, finalizers other than the namespace's, strategic-merge list merging and server-side
apply field ownership (both are plain merge patches here; apply creates when missing).
"""
import argparse
import base64
import heapq
import itertools
import json
import random
import re
import secrets
import threading
import time
import traceback
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import NamedTuple
from urllib.parse import parse_qs, unquote, urlsplit


class Res(NamedTuple):
    group: str
    plural: str
    kind: str
    namespaced: bool
    short: tuple = ()
    version: str = "v1"

    @property
    def api_version(self):
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self):  # how kube names the resource in error messages: "statefulsets.apps"
        return f"{self.plural}.{self.group}" if self.group else self.plural


RBAC = "rbac.authorization.k8s.io"
RESOURCES = [
    Res("", "namespaces", "Namespace", False, ("ns",)),
    Res("", "secrets", "Secret", True),
    Res("", "configmaps", "ConfigMap", True, ("cm",)),
    Res("", "serviceaccounts", "ServiceAccount", True, ("sa",)),
    Res("", "services", "Service", True, ("svc",)),
    Res("apps", "statefulsets", "StatefulSet", True, ("sts",)),
    Res(RBAC, "roles", "Role", True),
    Res(RBAC, "rolebindings", "RoleBinding", True),
    Res(RBAC, "clusterroles", "ClusterRole", False),
    Res(RBAC, "clusterrolebindings", "ClusterRoleBinding", False),
]
BY_PATH = {(r.group, r.version, r.plural): r for r in RESOURCES}
BY_PLURAL = {r.plural: r for r in RESOURCES}
SUBRESOURCES = {"namespaces": ("status",), "services": ("status",), "statefulsets": ("status", "scale")}
VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update"]
PROTECTED_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
# StatefulSet spec fields an update may change; anything else is 422 Forbidden, as in kube.
STS_MUTABLE = {"replicas", "ordinals", "template", "updateStrategy", "persistentVolumeClaimRetentionPolicy",
               "minReadySeconds", "revisionHistoryLimit", "podManagementPolicy"}
EXTRA_FIELDS = {"secrets": {"type"}, "namespaces": {"status.phase"}}
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
QUALIFIED = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
DATA_KEY = re.compile(r"[-._a-zA-Z0-9]+")
REASONS = {400: "BadRequest", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed", 409: "Conflict",
           410: "Expired", 415: "UnsupportedMediaType", 422: "Invalid", 429: "TooManyRequests",
           500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout"}
FAULT_DEFAULTS = {"error_rate": 0.0, "error_codes": [500], "latency_ms": 0, "drop_rate": 0.0,
                  "drop_after_rate": 0.0, "verbs": None, "path_contains": None, "max_faults": None,
                  "retry_after": 1}  # seconds in the Retry-After of injected 429s; urllib3 honours it (3 retries)


class ApiError(Exception):
    """Becomes a Kubernetes `Status` answer (the client raises ApiException with .status = code)."""

    def __init__(self, code, message, reason=None, details=None, headers=None):
        super().__init__(message)
        self.code, self.message, self.reason = code, message, reason or REASONS.get(code, "InternalError")
        self.details, self.headers = details or {}, headers or {}

    def status(self):
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": self.message,
                "reason": self.reason, "details": self.details, "code": self.code}


def _details(res, name, **more):
    return {"name": name, "group": res.group, "kind": res.plural, **more} if res.group else \
        {"name": name, "kind": res.plural, **more}


def not_found(res, name):
    return ApiError(404, f'{res.qualified} "{name}" not found', details=_details(res, name))


def conflict(res, name):
    return ApiError(409, f'Operation cannot be fulfilled on {res.qualified} "{name}": the object has been modified; '
                    "please apply your changes to the latest version and try again", details=_details(res, name))


def invalid(res, name, causes):
    kind = f"{res.kind}.{res.group}" if res.group else res.kind
    text = ", ".join(f"{f}: {m}" for f, m in causes)
    details = {"name": name, "group": res.group, "kind": res.kind,
               "causes": [{"reason": "FieldValueInvalid", "message": m, "field": f} for f, m in causes]}
    return ApiError(422, f'{kind} "{name}" is invalid: {text}', details=details)


def clone(obj):
    """Stored objects are never mutated in place, so a reference can be serialised outside the lock."""
    return json.loads(json.dumps(obj))


def now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def b64(text):
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


def merge_patch(target, patch):
    """RFC 7386; strategic-merge and apply are treated the same (lists replace, null deletes)."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):  # strategic-merge directives ($patch, $setElementOrder/...) are dropped
            continue
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def parse_label_selector(text):
    """Returns [(key, op, values)]; op in =, !=, in, notin, exists, !exists. Bad syntax -> 400."""
    reqs = []
    for term in re.split(r",(?![^()]*\))", text or ""):
        term = term.strip()
        if not term:
            continue
        m = re.fullmatch(r"(\S+)\s+(in|notin)\s+\(([^)]*)\)", term)
        if m:
            key, op, vals = m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",") if v.strip()}
        elif term.startswith("!"):
            key, op, vals = term[1:].strip(), "!exists", set()
        elif "!=" in term:
            key, _, v = term.partition("!=")
            op, vals = "!=", {v.strip()}
        elif "=" in term:
            key, _, v = term.partition("==" if "==" in term else "=")
            op, vals = "=", {v.strip()}
        else:
            key, op, vals = term, "exists", set()
        key = key.strip()
        if not re.fullmatch(r"([a-z0-9.-]+/)?" + QUALIFIED.pattern, key):
            raise ApiError(400, f"unable to parse requirement: invalid label key {key!r}")
        reqs.append((key, op, vals))
    return reqs


def labels_match(labels, reqs):
    for key, op, vals in reqs:
        has, value = key in labels, labels.get(key)
        if op in ("=", "in") and (not has or value not in vals) or op in ("!=", "notin") and has and value in vals \
                or op == "exists" and not has or op == "!exists" and has:
            return False
    return True


def field_value(obj, path):
    for part in path.split("."):
        obj = obj.get(part) if isinstance(obj, dict) else None
    return "" if obj is None else str(obj)


def fake_pem(label):
    body = base64.b64encode(secrets.token_bytes(96)).decode()
    return f"-----BEGIN {label}-----\n" + "\n".join(body[i:i + 64] for i in range(0, len(body), 64)) + \
        f"\n-----END {label}-----\n"


def _dump_yaml(obj):
    try:
        import yaml
        return yaml.safe_dump(obj, sort_keys=False)
    except ImportError:  # JSON is YAML
        return json.dumps(obj, indent=2)


class HostEmulator:
    """The host cluster: object store + Kubernetes semantics + vcluster stand-in + faults, behind one lock."""

    def __init__(self, host="127.0.0.1", port=0, ready_delay=0.3, terminate_delay=0.2, seed=None):
        self.host, self.port = host, port
        self.ready_delay, self.terminate_delay = ready_delay, terminate_delay
        self._lock = threading.RLock()
        self._cv = threading.Condition(self._lock)
        self._rng = random.Random(seed)
        self._rv = 0
        self._ip = itertools.count(10)
        self._seq = itertools.count()
        self._timers = []
        self._server = self._threads = None
        self._stopping = False
        self.reset()

    # ---- lifecycle and Python API -------------------------------------------------------------
    def start(self):
        handler = type("Handler", (_Handler,), {"emu": self})
        self._server = ThreadingHTTPServer((self.host, self.port), handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._stopping = False
        self._threads = [threading.Thread(target=self._server.serve_forever, name="hostemu-http", daemon=True),
                         threading.Thread(target=self._timer_loop, name="hostemu-timers", daemon=True)]
        for t in self._threads:
            t.start()
        return self

    def stop(self):
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def url(self):
        return f"http://{self.host}:{self.port}"

    def kubeconfig_dict(self, namespace="default"):
        return {"apiVersion": "v1", "kind": "Config", "current-context": "hostemu", "preferences": {},
                "clusters": [{"name": "hostemu", "cluster": {"server": self.url}}],
                "users": [{"name": "hostemu", "user": {"token": "hostemu-token"}}],
                "contexts": [{"name": "hostemu", "context": {"cluster": "hostemu", "user": "hostemu",
                                                              "namespace": namespace}}]}

    def write_kubeconfig(self, path):
        with open(path, "w") as f:
            f.write(_dump_yaml(self.kubeconfig_dict()))
        return str(path)

    def set_faults(self, **faults):
        """Replaces the fault settings (unset keys go back to 'no fault'); returns the effective settings."""
        unknown = set(faults) - set(FAULT_DEFAULTS)
        if unknown:
            raise ValueError(f"unknown fault settings: {sorted(unknown)}")
        with self._lock:
            self._faults = {**FAULT_DEFAULTS, **faults}
            self._faults["error_codes"] = [int(c) for c in self._faults["error_codes"] or [500]]
            if isinstance(self._faults["verbs"], str):
                self._faults["verbs"] = [self._faults["verbs"]]
            self._injected = 0
            return dict(self._faults)

    def clear_faults(self):
        return self.set_faults()

    def configure(self, ready_delay=..., terminate_delay=...):
        """ready_delay=None means StatefulSets never become ready (to test timeouts)."""
        with self._lock:
            if ready_delay is not ...:
                self.ready_delay = ready_delay
            if terminate_delay is not ...:
                self.terminate_delay = terminate_delay
            return {"ready_delay": self.ready_delay, "terminate_delay": self.terminate_delay}

    def reset(self):
        """Forget every object, pending timer, fault and counter; recreate the default namespaces."""
        with self._lock:
            self._objs = {r.plural: {} for r in RESOURCES}
            self._timers.clear()
            self.set_faults()
            self.reset_stats()
            for name in PROTECTED_NAMESPACES:
                self._create(BY_PLURAL["namespaces"], None, {"metadata": {"name": name}}, {})

    def stats(self):
        with self._lock:
            return clone(self._stats)

    def reset_stats(self):
        with self._lock:
            self._stats = {"requests": 0, "by_verb": {v: 0 for v in ("get", "list", "create", "update", "patch",
                                                                      "delete", "deletecollection", "discovery")},
                           "by_resource": {}, "faults": {"errors": 0, "drops": 0, "drops_after": 0}}

    def get_object(self, plural, name, namespace=None):
        with self._lock:
            obj = self._objs[plural].get((namespace or "", name))
            return clone(obj) if obj else None

    def list_objects(self, plural, namespace=None):
        with self._lock:
            return [clone(o) for (ns, _), o in sorted(self._objs[plural].items()) if namespace in (None, ns)]

    # ---- timers (vcluster readiness, namespace termination) -----------------------------------
    def _schedule(self, delay, fn, *args):
        with self._cv:
            heapq.heappush(self._timers, (time.monotonic() + delay, next(self._seq), fn, args))
            self._cv.notify()

    def _timer_loop(self):
        while True:
            with self._cv:
                while not self._stopping and (not self._timers or self._timers[0][0] > time.monotonic()):
                    self._cv.wait(self._timers[0][0] - time.monotonic() if self._timers else None)
                if self._stopping:
                    return
                _, _, fn, args = heapq.heappop(self._timers)
                try:
                    fn(*args)
                except Exception:  # a bug in a controller must not kill the timer thread
                    traceback.print_exc()

    def _sts_reconcile(self, key, generation):
        """Plays vcluster: writes the vc-<name> kubeconfig Secret, then reports all replicas ready."""
        sts = self._objs["statefulsets"].get(key)
        if not sts or sts["metadata"].get("generation") != generation:
            return  # deleted, or a newer spec has its own timer
        ns, name = key
        replicas = sts["spec"].get("replicas", 1)
        namespace = self._objs["namespaces"].get(("", ns))
        if replicas > 0 and namespace and namespace["status"]["phase"] == "Active" \
                and (ns, f"vc-{name}") not in self._objs["secrets"]:
            self._create(BY_PLURAL["secrets"], ns, self._vc_secret(ns, name), {})
        new = clone(sts)
        revision = f"{name}-{abs(hash(json.dumps(sts['spec'].get('template'), sort_keys=True))) % 10**10:x}"
        new["status"] = {"observedGeneration": generation, "replicas": replicas, "readyReplicas": replicas,
                         "availableReplicas": replicas, "currentReplicas": replicas, "updatedReplicas": replicas,
                         "currentRevision": revision, "updateRevision": revision, "collisionCount": 0}
        self._store(BY_PLURAL["statefulsets"], new)

    def _vc_secret(self, ns, name):
        ca, cert, key, token = fake_pem("CERTIFICATE"), fake_pem("CERTIFICATE"), fake_pem("EC PRIVATE KEY"), \
            secrets.token_hex(24)
        kubeconfig = {"apiVersion": "v1", "kind": "Config", "current-context": "Default", "preferences": {},
                      "clusters": [{"name": "my-vcluster", "cluster": {"server": "https://localhost:8443",
                                                                       "certificate-authority-data": b64(ca)}}],
                      "users": [{"name": "my-vcluster", "user": {"client-certificate-data": b64(cert),
                                                                 "client-key-data": b64(key)}}],
                      "contexts": [{"name": "Default", "context": {"cluster": "my-vcluster", "user": "my-vcluster"}}]}
        data = {"config": _dump_yaml(kubeconfig), "certificate-authority": ca, "client-certificate": cert,
                "client-key": key, "token": token}
        return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": {"name": f"vc-{name}", "namespace": ns},
                "data": {k: b64(v) for k, v in data.items()}}

    def _purge_namespace(self, name, uid):
        ns = self._objs["namespaces"].get(("", name))
        if not ns or ns["metadata"]["uid"] != uid:
            return
        for res in RESOURCES:
            if res.namespaced:
                store = self._objs[res.plural]
                for key in [k for k in store if k[0] == name]:
                    del store[key]
        del self._objs["namespaces"][("", name)]
        self._rv += 1

    # ---- semantics ----------------------------------------------------------------------------
    def _store(self, res, obj):
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        meta = obj["metadata"]
        self._objs[res.plural][(meta.get("namespace", ""), meta["name"])] = obj
        return obj

    def _get(self, res, ns, name):
        obj = self._objs[res.plural].get((ns or "", name))
        if obj is None:
            raise not_found(res, name)
        return obj

    def _check_namespace(self, res, ns, name):
        if not res.namespaced:
            return
        nsobj = self._objs["namespaces"].get(("", ns))
        if nsobj is None:
            raise not_found(BY_PLURAL["namespaces"], ns)
        if nsobj["status"]["phase"] == "Terminating":
            raise ApiError(403, f'{res.qualified} "{name}" is forbidden: unable to create new content in namespace '
                           f"{ns} because it is being terminated", details=_details(res, name))

    def _identify(self, res, ns, body, name=None):
        """Checks kind/apiVersion/name/namespace of a request body against the URL."""
        if not isinstance(body, dict):
            raise ApiError(400, "the body of the request was not a JSON object")
        body.setdefault("apiVersion", res.api_version)
        body.setdefault("kind", res.kind)
        if (body["apiVersion"], body["kind"]) != (res.api_version, res.kind):
            raise ApiError(400, f"the API version in the data ({body['apiVersion']}) does not match the expected "
                           f"API version ({res.api_version}) or kind {body['kind']!r} is not {res.kind!r}")
        meta = body.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise ApiError(400, "metadata must be an object")
        if res.namespaced:
            if meta.get("namespace") not in (None, "", ns):
                raise ApiError(400, "the namespace of the provided object does not match the namespace sent on "
                               "the request")
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)
        if name is not None and meta.get("name") not in (None, "", name):
            raise ApiError(400, f"the name of the object ({meta['name']}) does not match the name on the URL ({name})")
        if name is not None:
            meta["name"] = name
        return body

    def _validate(self, res, obj, old=None):
        """The checks a real apiserver would make that a buggy worker is likely to trip: 422 Invalid."""
        meta, spec, causes = obj["metadata"], obj.get("spec") or {}, []
        name = meta.get("name") or ""
        bad = lambda field, msg: causes.append((field, msg))  # noqa: E731
        if res.group == RBAC:
            if name in (".", "..") or "/" in name or "%" in name:
                bad("metadata.name", f'Invalid value: "{name}": may not contain "/" or "%"')
        elif len(name) > (63 if res.plural in ("namespaces", "services") else 253) or not (
                DNS_LABEL if res.plural in ("namespaces", "services") else DNS_SUBDOMAIN).fullmatch(name):
            bad("metadata.name", f'Invalid value: "{name}": must be a lowercase RFC 1123 name')
        for key, value in (meta.get("labels") or {}).items():
            prefix, _, short = key.rpartition("/")
            if len(short) > 63 or not QUALIFIED.fullmatch(short) or prefix and not DNS_SUBDOMAIN.fullmatch(prefix):
                bad("metadata.labels", f'Invalid value: "{key}": not a valid label key')
            if not isinstance(value, str) or len(value) > 63 or value and not QUALIFIED.fullmatch(value):
                bad("metadata.labels", f'Invalid value: "{value}": a valid label must be an empty string or '
                    "consist of alphanumeric characters, '-', '_' or '.' (at most 63)")
        for field in ("data", "binaryData") if res.plural in ("secrets", "configmaps") else ():
            for key, value in (obj.get(field) or {}).items():
                if not DATA_KEY.fullmatch(key):
                    bad(f"{field}[{key}]", f'Invalid value: "{key}": not a valid config key')
                try:  # the apiserver fails to decode these, hence 400 rather than 422
                    assert isinstance(value, str)
                    if res.plural == "secrets" or field == "binaryData":
                        base64.b64decode(value, validate=True)
                except (AssertionError, ValueError):
                    raise ApiError(400, f'{res.kind} in version "v1" cannot be handled as a {res.kind}: illegal '
                                   f"base64 data or non-string value in {field}[{key}]")
        if res.plural == "statefulsets":
            match = (spec.get("selector") or {}).get("matchLabels") or {}
            tmpl = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
            if not spec.get("selector") or any(tmpl.get(k) != v for k, v in match.items()):
                bad("spec.template.metadata.labels", "Invalid value: `selector` does not match template `labels`")
            if not isinstance(spec.get("replicas"), int) or spec["replicas"] < 0:
                bad("spec.replicas", "Invalid value: must be greater than or equal to 0")
            if old and any(spec.get(k) != old["spec"].get(k) for k in (set(spec) | set(old["spec"])) - STS_MUTABLE):
                bad("spec", "Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', "
                    "'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' "
                    "are forbidden")
        if res.plural == "services":
            if not spec.get("ports") and spec.get("clusterIP") != "None":
                bad("spec.ports", "Required value")
            if old and spec.get("clusterIP") != old["spec"].get("clusterIP"):
                bad("spec.clusterIPs[0]", f'Invalid value: "{spec.get("clusterIP")}": may not change once set')
        if res.plural in ("rolebindings", "clusterrolebindings"):
            if not obj.get("roleRef") or old and obj["roleRef"] != old.get("roleRef"):
                bad("roleRef", "Invalid value: roleRef is required and cannot change")
        if causes:
            raise invalid(res, name, causes)

    def _defaults(self, res, obj, old):
        """Server-side defaulting, applied to creates and updates alike so comparisons are stable."""
        meta, spec = obj["metadata"], obj.get("spec")
        if res.plural == "namespaces":
            meta["labels"] = {**(meta.get("labels") or {}), "kubernetes.io/metadata.name": meta["name"]}
            obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
            obj["status"] = old["status"] if old else {"phase": "Active"}
        elif res.plural == "secrets":
            string_data = obj.pop("stringData", None) or {}
            obj.setdefault("type", "Opaque")
            obj.setdefault("data", {}).update({k: b64(v) for k, v in string_data.items()})
        elif res.plural == "statefulsets":
            spec = obj.setdefault("spec", {})
            spec.setdefault("replicas", 1)
            spec.setdefault("podManagementPolicy", "OrderedReady")
            spec.setdefault("revisionHistoryLimit", 10)
            spec.setdefault("persistentVolumeClaimRetentionPolicy", {"whenDeleted": "Retain", "whenScaled": "Retain"})
            strategy = spec.setdefault("updateStrategy", {"type": "RollingUpdate"})
            if strategy.get("type", "RollingUpdate") == "RollingUpdate":
                strategy.update(type="RollingUpdate", rollingUpdate=strategy.get("rollingUpdate") or {"partition": 0})
            obj["status"] = old["status"] if old else {"replicas": 0, "availableReplicas": 0}
        elif res.plural == "services":
            spec = obj.setdefault("spec", {})
            old_spec = old["spec"] if old else {}
            spec.setdefault("type", "ClusterIP")
            spec.setdefault("sessionAffinity", "None")
            if not spec.get("clusterIP"):
                n = next(self._ip)
                spec["clusterIP"] = old_spec.get("clusterIP") or f"10.{96 + n // 65536}.{n // 256 % 256}.{n % 256}"
            spec.update(clusterIPs=[spec["clusterIP"]], ipFamilies=spec.get("ipFamilies") or ["IPv4"],
                        ipFamilyPolicy=spec.get("ipFamilyPolicy") or "SingleStack")
            old_ports = {p.get("port"): p for p in old_spec.get("ports") or []}
            for port in spec.get("ports") or []:
                port.setdefault("protocol", "TCP")
                port.setdefault("targetPort", port.get("port"))
                if spec["type"] in ("NodePort", "LoadBalancer") and not port.get("nodePort"):
                    port["nodePort"] = old_ports.get(port.get("port"), {}).get("nodePort") or 30000 + next(self._ip) % 2768
            obj["status"] = old["status"] if old else {"loadBalancer": {}}

    def _create(self, res, ns, body, query, status=201):
        body = self._identify(res, ns, clone(body))
        meta = body["metadata"]
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(self._rng.choices("bcdfghjklmnpqrstvwxz2456789", k=5))
        if not meta.get("name"):
            raise invalid(res, "", [("metadata.name", "Required value: name or generateName is required")])
        with self._lock:
            self._check_namespace(res, ns, meta["name"])
            if (ns or "", meta["name"]) in self._objs[res.plural]:
                raise ApiError(409, f'{res.qualified} "{meta["name"]}" already exists', reason="AlreadyExists",
                               details=_details(res, meta["name"]))
            for key in ("resourceVersion", "deletionTimestamp", "managedFields", "selfLink"):
                meta.pop(key, None)
            meta.update(uid=str(uuid.uuid4()), creationTimestamp=now())
            self._defaults(res, body, None)
            self._validate(res, body)
            if res.plural == "statefulsets":
                meta["generation"] = 1
            if query.get("dryRun") == "All":
                return status, body
            self._store(res, body)
            if res.plural == "statefulsets" and self.ready_delay is not None:
                self._schedule(self.ready_delay, self._sts_reconcile, (ns, meta["name"]), 1)
            return status, body

    def _update(self, res, ns, name, body, query, sub=None):
        """PUT, and every PATCH after the patch is applied: conflicts, immutables, generation, no-op detection."""
        with self._lock:
            if sub is None:  # kube checks the body against the URL before looking the object up
                body = self._identify(res, ns, clone(body), name)
            old = self._get(res, ns, name)
            if sub == "scale":
                scale = body
                body = clone(old)
                body["spec"]["replicas"] = (scale.get("spec") or {}).get("replicas", 0)
                body["metadata"]["resourceVersion"] = (scale.get("metadata") or {}).get("resourceVersion")
            elif sub == "status":
                given = body
                body = clone(old)
                body["status"] = clone(given.get("status"))
                body["metadata"]["resourceVersion"] = (given.get("metadata") or {}).get("resourceVersion")
            body = self._identify(res, ns, clone(body), name)
            rv = body["metadata"].get("resourceVersion")
            if rv and rv != old["metadata"]["resourceVersion"]:
                raise conflict(res, name)
            meta, old_meta = body["metadata"], old["metadata"]
            for key in ("uid", "creationTimestamp", "deletionTimestamp", "generation", "resourceVersion"):
                if key in old_meta:
                    meta[key] = old_meta[key]
                else:
                    meta.pop(key, None)
            if sub == "status":
                self._defaults(res, body, {"spec": old.get("spec", {}), "status": body.get("status")})
            else:
                self._defaults(res, body, old)
            self._validate(res, body, old)
            if res.plural == "statefulsets" and body["spec"] != old["spec"]:
                meta["generation"] = old_meta.get("generation", 1) + 1
            if body == old or query.get("dryRun") == "All":
                return 200, body
            self._store(res, body)
            if meta.get("generation") != old_meta.get("generation") and self.ready_delay is not None:
                self._schedule(self.ready_delay, self._sts_reconcile, (ns, name), meta["generation"])
            return 200, body

    def _patch(self, res, ns, name, raw, ctype, query, sub=None):
        with self._lock:
            old = self._objs[res.plural].get((ns or "", name))
            if ctype == "application/apply-patch+yaml":
                if not query.get("fieldManager"):
                    raise ApiError(422, "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: "
                                   "is required for apply patch")
                patch = _load_body(raw, yaml_ok=True)
                if not isinstance(patch, dict) or not patch.get("apiVersion") or not patch.get("kind"):
                    raise ApiError(400, "apply patches must be objects with apiVersion and kind")
                if old is None and sub is None:
                    return self._create(res, ns, self._identify(res, ns, patch, name), query, status=201)
            else:
                patch = _load_body(raw)
            if old is None:
                raise not_found(res, name)
            base = self._scale(old) if sub == "scale" else old
            if ctype == "application/json-patch+json":
                import jsonpatch  # only this patch type needs it
                try:
                    patched = jsonpatch.apply_patch(clone(base), patch)
                except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError) as e:
                    raise ApiError(422, f"the server rejected our request due to an error in our request: {e}")
            elif ctype in ("application/merge-patch+json", "application/strategic-merge-patch+json",
                           "application/apply-patch+yaml"):
                if not isinstance(patch, dict):
                    raise ApiError(400, "merge patches must be JSON objects")
                patched = merge_patch(clone(base), patch)
            else:
                raise ApiError(415, f"the body of the request was in an unknown format - accepted media types "
                               f"include: application/json-patch+json, application/merge-patch+json, "
                               f"application/apply-patch+yaml (got {ctype!r})")
            code, obj = self._update(res, ns, name, patched, query, sub)
            return code, self._scale(obj) if sub == "scale" else obj

    def _scale(self, sts):
        meta = sts["metadata"]
        labels = (sts["spec"].get("selector") or {}).get("matchLabels") or {}
        return {"kind": "Scale", "apiVersion": "autoscaling/v1", "spec": {"replicas": sts["spec"].get("replicas", 1)},
                "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")},
                "status": {"replicas": sts.get("status", {}).get("replicas", 0),
                           "selector": ",".join(f"{k}={v}" for k, v in labels.items())}}

    def _delete(self, res, ns, name, raw, query):
        options = _load_body(raw) if raw.strip() else {}
        with self._lock:
            obj = self._get(res, ns, name)
            pre = (options or {}).get("preconditions") or {}
            if pre.get("uid") not in (None, obj["metadata"]["uid"]) or \
                    pre.get("resourceVersion") not in (None, obj["metadata"]["resourceVersion"]):
                raise conflict(res, name)
            if query.get("dryRun") == "All":
                return 200, obj
            if res.plural == "namespaces":
                if name in PROTECTED_NAMESPACES:
                    raise ApiError(403, f'namespaces "{name}" is forbidden: this namespace may not be deleted',
                                   details=_details(res, name))
                if obj["status"]["phase"] != "Terminating":
                    obj = clone(obj)
                    obj["metadata"]["deletionTimestamp"] = now()
                    obj["status"] = {"phase": "Terminating"}
                    self._store(res, obj)
                    self._schedule(self.terminate_delay, self._purge_namespace, name, obj["metadata"]["uid"])
                return 200, obj
            del self._objs[res.plural][(ns or "", name)]
            self._rv += 1
            return 200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                         "details": _details(res, name, uid=obj["metadata"]["uid"])}

    def _list(self, res, ns, query):
        reqs = parse_label_selector(query.get("labelSelector"))
        fields = []
        for term in filter(None, (query.get("fieldSelector") or "").split(",")):
            m = re.fullmatch(r"\s*([\w.]+)\s*(==|!=|=)\s*(.*?)\s*", term)
            if not m or m.group(1) not in {"metadata.name", "metadata.namespace"} | EXTRA_FIELDS.get(res.plural, set()):
                raise ApiError(400, f'"{term}" is not a known field selector: only "metadata.name", '
                               '"metadata.namespace"')
            fields.append((m.group(1), m.group(2) == "!=", m.group(3)))
        with self._lock:
            rv = str(self._rv)
            items = [o for (ons, _), o in sorted(
                (k, o) for k, o in self._objs[res.plural].items()
                if ns in (None, k[0]) and labels_match(o["metadata"].get("labels") or {}, reqs)
                and all((field_value(o, f) == v) != negate for f, negate, v in fields))]
        meta = {"resourceVersion": rv}
        limit, token = query.get("limit") or "0", query.get("continue")
        if not limit.isdigit():
            raise ApiError(400, f"limit must be a non-negative integer, not {limit!r}")
        limit = int(limit)
        if token:
            try:
                after = json.loads(base64.urlsafe_b64decode(token))
            except ValueError:
                raise ApiError(400, "continue key is not valid")
            items = [o for o in items if [o["metadata"].get("namespace", ""), o["metadata"]["name"]] > after]
        if limit and len(items) > limit:
            last = items[limit - 1]["metadata"]
            meta["continue"] = base64.urlsafe_b64encode(json.dumps([last.get("namespace", ""), last["name"]])
                                                        .encode()).decode()
            meta["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        items = [{k: v for k, v in o.items() if k not in ("apiVersion", "kind")} for o in items]
        return 200, {"kind": f"{res.kind}List", "apiVersion": res.api_version, "metadata": meta, "items": items}

    # ---- HTTP plumbing --------------------------------------------------------------------------
    def _route(self, path):
        """'/apis/apps/v1/namespaces/x/statefulsets/y/scale' -> (Res, ns, name, sub); unknown paths are 404."""
        parts = [unquote(p) for p in path.split("/") if p]
        if parts[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return None
        ns = None
        if len(rest) >= 3 and rest[0] == "namespaces" and (group, version, rest[2]) in BY_PATH:
            ns, rest = rest[1], rest[2:]
        res = BY_PATH.get((group, version, rest[0])) if rest else None
        if not res or len(rest) > 3 or (res.namespaced and ns is None and len(rest) > 1) \
                or (not res.namespaced and ns is not None):
            return None
        sub = rest[2] if len(rest) == 3 else None
        if sub and sub not in SUBRESOURCES.get(res.plural, ()):
            return None
        return res, ns, (rest[1] if len(rest) > 1 else None), sub

    def _discovery(self, path):
        parts = [p for p in path.split("/") if p]
        groups = {}
        for r in RESOURCES:
            groups.setdefault(r.group, []).append(r)
        if parts == ["version"]:
            return {"major": "1", "minor": "31", "gitVersion": "v1.31.0+hostemu", "gitCommit": "hostemu",
                    "gitTreeState": "clean", "buildDate": "2024-08-13T00:00:00Z", "goVersion": "go1.22.5",
                    "compiler": "gc", "platform": "linux/amd64"}
        if parts == ["api"]:
            return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": f"{self.host}:{self.port}"}]}

        def group_doc(g):
            gv = {"groupVersion": f"{g}/v1", "version": "v1"}
            return {"name": g, "versions": [gv], "preferredVersion": gv}
        if parts == ["apis"]:
            return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [group_doc(g) for g in groups if g]}
        if len(parts) == 2 and parts[0] == "apis" and parts[1] in groups and parts[1]:
            return {"kind": "APIGroup", "apiVersion": "v1", **group_doc(parts[1])}
        group = "" if parts == ["api", "v1"] else parts[1] if len(parts) == 3 and parts[0] == "apis" \
            and parts[2] == "v1" and parts[1] else None
        if group is None or group not in groups:
            return None
        resources = []
        for r in groups[group]:
            resources.append({"name": r.plural, "singularName": r.kind.lower(), "namespaced": r.namespaced,
                              "kind": r.kind, "verbs": VERBS, "shortNames": list(r.short)})
            for sub in SUBRESOURCES.get(r.plural, ()):
                doc = {"name": f"{r.plural}/{sub}", "singularName": "", "namespaced": r.namespaced, "kind": r.kind,
                       "verbs": ["get", "patch", "update"]}
                if sub == "scale":
                    doc.update(group="autoscaling", version="v1", kind="Scale")
                resources.append(doc)
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": groups[group][0].api_version,
                "resources": resources}

    def _classify(self, method, path, query):
        route = self._route(path)
        if route is None:
            return "discovery" if method == "GET" else method.lower(), "other"
        res, ns, name, sub = route
        verb = {"GET": "get" if name else "list", "POST": "create", "PUT": "update", "PATCH": "patch",
                "DELETE": "delete" if name else "deletecollection"}.get(method, method.lower())
        return verb, res.plural + (f"/{sub}" if sub else "")

    def _api(self, method, path, query, raw, ctype):
        route = self._route(path)
        if route is None:
            doc = self._discovery(path) if method == "GET" else None
            if doc is None:
                if path in ("/healthz", "/readyz", "/livez"):
                    return 200, "ok"
                raise ApiError(404, "the server could not find the requested resource")
            return 200, doc
        res, ns, name, sub = route
        if query.get("watch") in ("true", "1"):
            raise ApiError(405, "watch is not supported by the host emulator")
        if name is None:
            if method == "GET":
                return self._list(res, ns, query)
            if method == "POST" and (ns or not res.namespaced):
                return self._create(res, ns, _load_body(raw), query)
            if method == "DELETE":
                _, listed = self._list(res, ns, query)
                for item in listed["items"]:
                    self._delete(res, item["metadata"].get("namespace"), item["metadata"]["name"], b"", query)
                return 200, listed
        elif method == "GET":
            with self._lock:
                obj = self._get(res, ns, name)
            return 200, self._scale(obj) if sub == "scale" else obj
        elif method == "PUT":
            code, obj = self._update(res, ns, name, _load_body(raw), query, sub)
            return code, self._scale(obj) if sub == "scale" else obj
        elif method == "PATCH":
            return self._patch(res, ns, name, raw, ctype, query, sub)
        elif method == "DELETE" and sub is None:
            return self._delete(res, ns, name, raw, query)
        raise ApiError(405, f"the server does not allow this method on the requested resource ({method})")

    def _roll_fault(self, verb, path):
        """Returns (fault, latency_s); fault is None, an HTTP code, 'drop' or 'drop_after'."""
        with self._lock:
            f = self._faults
            if f["verbs"] and verb not in f["verbs"] or f["path_contains"] and f["path_contains"] not in path:
                return None, 0
            latency = f["latency_ms"] / 1000.0
            if f["max_faults"] is not None and self._injected >= f["max_faults"]:
                return None, latency
            fault = None
            if self._rng.random() < f["drop_rate"]:
                fault, counter = "drop", "drops"
            elif self._rng.random() < f["error_rate"]:
                fault, counter = self._rng.choice(f["error_codes"]), "errors"
            elif self._rng.random() < f["drop_after_rate"]:
                fault, counter = "drop_after", "drops_after"
            if fault is not None:
                self._injected += 1
                self._stats["faults"][counter] += 1
            return fault, latency

    def _admin(self, method, path, raw):
        """/_emulator/*: control plane for tests and benchmarks; faults never apply here."""
        route = path[len("/_emulator"):].strip("/")
        body = _load_body(raw) if raw.strip() else {}
        if route == "faults":
            if method in ("POST", "PUT"):
                try:
                    return 200, self.set_faults(**body)
                except (TypeError, ValueError) as e:
                    raise ApiError(400, str(e))
            if method == "DELETE":
                return 200, self.clear_faults()
            with self._lock:
                return 200, dict(self._faults)
        if route == "stats":
            if method in ("POST", "DELETE"):
                self.reset_stats()
            return 200, self.stats()
        if route == "stats/reset" and method == "POST":
            self.reset_stats()
            return 200, self.stats()
        if route == "reset" and method == "POST":
            self.reset()
            return 200, {"status": "reset"}
        if route == "config":
            return 200, self.configure(**{k: body[k] for k in ("ready_delay", "terminate_delay") if k in body})
        if route == "objects" and method == "GET":
            with self._lock:
                return 200, {p: [o for _, o in sorted(s.items())] for p, s in self._objs.items()}
        raise ApiError(404, f"unknown emulator endpoint {path}")

    def _serve(self, h):
        url = urlsplit(h.path)
        path = url.path.rstrip("/") or "/"
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        raw = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        ctype = (h.headers.get("Content-Type") or "application/json").split(";")[0].strip().lower()
        if path.startswith("/_emulator"):
            try:
                return self._send(h, *self._admin(h.command, path, raw))
            except ApiError as e:
                return self._send(h, e.code, e.status())
        verb, kind = self._classify(h.command, path, query)
        with self._lock:
            self._stats["requests"] += 1
            self._stats["by_verb"][verb] = self._stats["by_verb"].get(verb, 0) + 1
            per = self._stats["by_resource"].setdefault(kind, {})
            per[verb] = per.get(verb, 0) + 1
        fault, latency = self._roll_fault(verb, path)
        if latency:
            time.sleep(latency)
        if fault == "drop":
            h.close_connection = True
            return
        if isinstance(fault, int):
            wait = self._faults["retry_after"] if fault == 429 else None
            e = ApiError(fault, f"injected fault: {REASONS.get(fault, 'error')}",
                         details={} if wait is None else {"retryAfterSeconds": wait},
                         headers={} if wait is None else {"Retry-After": str(wait)})
            return self._send(h, e.code, e.status(), e.headers)
        try:
            code, obj, headers = *self._api(h.command, path, query, raw, ctype), {}
        except ApiError as e:
            code, obj, headers = e.code, e.status(), e.headers
        except Exception as e:
            traceback.print_exc()
            code, obj, headers = 500, ApiError(500, f"hostemu bug: {e!r}").status(), {}
        if fault == "drop_after":  # the change happened, but the client never hears about it
            h.close_connection = True
            return
        self._send(h, code, obj, headers)

    @staticmethod
    def _send(h, code, obj, headers=None):
        data = obj.encode() if isinstance(obj, str) else json.dumps(obj).encode()
        h.send_response(code)
        h.send_header("Content-Type", "text/plain" if isinstance(obj, str) else "application/json")
        h.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)


def _load_body(raw, yaml_ok=False):
    try:
        return json.loads(raw or b"null")
    except ValueError:
        if yaml_ok:
            import yaml
            try:
                return yaml.safe_load(raw)
            except yaml.YAMLError as e:
                raise ApiError(400, f"error decoding YAML: {e}")
        raise ApiError(400, "the body of the request could not be decoded as JSON")


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive plus TCP_NODELAY, so small answers don't wait on delayed ACKs."""
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 120
    server_version = "hostemu/1"
    emu = None

    def log_message(self, *args):
        pass

    def do_GET(self):
        try:
            self.emu._serve(self)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET


def main(argv=None):
    p = argparse.ArgumentParser(description="Kubernetes host-cluster emulator (see local/hostemu.py)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=6443)
    p.add_argument("--ready-delay", type=float, default=0.3)
    p.add_argument("--terminate-delay", type=float, default=0.2)
    p.add_argument("--kubeconfig", help="write a kubeconfig for the emulator here")
    args = p.parse_args(argv)
    emu = HostEmulator(args.host, args.port, args.ready_delay, args.terminate_delay).start()
    print(f"host emulator on {emu.url}", flush=True)
    if args.kubeconfig:
        print("kubeconfig:", emu.write_kubeconfig(args.kubeconfig), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        emu.stop()


if __name__ == "__main__":
    main()
