"""The local stack, started once per test session exactly as `make run` starts it (in a subprocess)."""
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import uuid
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT.parent / "shared" / "spec"
API = "/kubernetes/management/apis/management.loft.sh/v1"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_INSECURE = ssl.create_default_context()
_INSECURE.check_hostname = False
_INSECURE.verify_mode = ssl.CERT_NONE


@dataclass
class Answer:
    status: int
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)


@dataclass
class LocalStack:
    url: str
    domain: str
    access_key: str
    kubeconfig: Path
    state_dir: Path
    process: subprocess.Popen

    def request(self, method, path, body=None, headers=None, key=None, content_type=None):
        """One HTTPS request as curl would make it; never raises on HTTP errors."""
        headers = dict(headers or {})
        if key is not False:
            headers.setdefault("Authorization", f"Bearer {key or self.access_key}")
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            headers.setdefault("Content-Type", content_type or "application/json")
        elif isinstance(body, str):
            body = body.encode()
        if content_type:
            headers["Content-Type"] = content_type
        req = urllib.request.Request(self.url + path, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, context=_INSECURE, timeout=60) as resp:
                return Answer(resp.status, dict(resp.headers), resp.read())
        except urllib.error.HTTPError as e:
            return Answer(e.code, dict(e.headers), e.read())


def start_stack(state_dir, env=None):
    port = free_port()
    environment = {**os.environ, "PORT": str(port), "STATE_DIR": str(state_dir), "WATCH_MAX_SECONDS": "3",
                   "PYTHONUNBUFFERED": "1", **(env or {})}
    process = subprocess.Popen([sys.executable, "-m", "local"], cwd=ROOT, env=environment,
                               stdout=open(Path(state_dir) / "stack.log", "w"), stderr=subprocess.STDOUT,
                               start_new_session=True)
    url = f"https://localhost:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("local stack exited:\n" + (Path(state_dir) / "stack.log").read_text())
        try:
            with urllib.request.urlopen(url + "/readyz", context=_INSECURE, timeout=2) as resp:
                if resp.status == 200:
                    break
        except OSError:
            time.sleep(0.2)
    else:
        process.kill()
        raise RuntimeError("local stack did not become ready")
    state_dir = Path(state_dir)
    return LocalStack(url=url, domain=f"localhost:{port}", access_key=(state_dir / "access-key").read_text().strip(),
                      kubeconfig=state_dir / "kubeconfig", state_dir=state_dir, process=process)


def stop_stack(stack):
    if stack.process.poll() is None:
        os.killpg(stack.process.pid, signal.SIGINT)
        try:
            stack.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(stack.process.pid, signal.SIGKILL)
            stack.process.wait()


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    running = start_stack(tmp_path_factory.mktemp("stack"))
    yield running
    stop_stack(running)


@pytest.fixture
def namespace(stack, request):
    """A fresh project (and so a fresh namespace) per test, so tests never see each other's objects."""
    project = "".join(c if c.isalnum() else "-" for c in request.node.name.lower())[:40].strip("-") + f"-{free_port()}"
    created = stack.request("POST", API + "/projects", {"metadata": {"name": project}})
    assert created.status == 201, created.body
    return f"loft-p-{project}"


@pytest.fixture
def ns(namespace):
    """The short name the kubectl and client tests use for their project namespace."""
    return namespace


def suffix():
    return uuid.uuid4().hex[:6]


def ok(answer, code=None):
    """The JSON body of a successful answer (of exactly `code` when given)."""
    assert (answer.status == code) if code else (200 <= answer.status < 300), (answer.status, answer.body[:2000])
    return answer.json()


def status(answer, code, reason):
    """The body of a Kubernetes Status failure with this code and reason."""
    assert answer.status == code, (answer.status, answer.body[:2000])
    body = answer.json()
    assert (body["kind"], body["status"], body["code"], body["reason"]) == ("Status", "Failure", code, reason), body
    return body


def seed_commands(program):
    """Every `program` command line of the seed's API page, with its backslash continuations, in page order."""
    lines = (SPEC / "virtualclusterinstance-api.txt").read_text().splitlines()
    commands, i = [], 0
    while i < len(lines):
        if lines[i].startswith(program + " "):
            command = [lines[i]]
            while command[-1].rstrip().endswith("\\"):
                i += 1
                command.append(lines[i])
            commands.append("\n".join(command))
        i += 1
    return commands
