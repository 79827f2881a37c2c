"""Starts and stops the local stack's parts in order; the tests start exactly the same thing."""
import json
import logging
import os
import secrets
import threading
from pathlib import Path

import yaml

from . import aws, https
from .hostemu import HostEmulator
from .worker import WorkerLoop


class Stack:
    def __init__(self, state_dir=".local", port=8443, stage="local"):
        self.state_dir = Path(state_dir).resolve()
        self.port = port
        self.stage = stage
        self.threads = []

    @property
    def url(self):
        return f"https://localhost:{self.port}"

    def start(self):
        logging.basicConfig(level=os.environ.get("LOG_LEVEL", "WARNING"))
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.moto, endpoint = aws.start_moto()
        aws.use_endpoint(endpoint)
        (self.state_dir / "aws-endpoint").write_text(endpoint + "\n")  # for tests and tools: moto's URL
        names = aws.create_resources(self.stage)
        os.environ["TABLE_NAME"] = names["ObjectsTable"]
        os.environ["JOBS_QUEUE_NAME"] = names["JobsQueue"]
        os.environ["JOBS_DLQ_NAME"] = names["JobsDeadLetterQueue"]
        self.host_description = self._host_cluster()
        self.snapshots = aws.Snapshots(self.state_dir / "dynamodb.json", names["ObjectsTable"])
        self.snapshots.restore()
        self.access_key = self._bootstrap()
        import app as lambdas  # after the environment points at the local AWS

        self.worker = WorkerLoop(lambdas, names["JobsQueue"], threads=int(os.environ.get("WORKER_THREADS", "2")),
                                 visibility_seconds=int(os.environ.get("LOCAL_VISIBILITY_SECONDS", "30")),
                                 sweep_seconds=float(os.environ.get("SWEEP_SECONDS", "60"))).start()
        self.snapshots.run_in_background()
        self._write_kubeconfig()
        (self.state_dir / "stack.json").write_text(json.dumps({
            "aws_endpoint": endpoint, "table": names["ObjectsTable"], "queue": names["JobsQueue"],
            "dlq": names["JobsDeadLetterQueue"], "host_emulator": self.emulator.url if self.emulator else None}))
        cert, key = https.ensure_certificate(self.state_dir)
        self.server = https.serve(lambdas.app, cert, key, self.port)
        self._thread(self.server.server.serve_forever, "https")  # last: /readyz answers once all is up

    def _host_cluster(self):
        """HOST_KUBECONFIG (and HOST_CONTEXT) points the worker at a real cluster; else our emulator."""
        self.emulator = None
        kubeconfig = os.environ.get("HOST_KUBECONFIG")
        if not kubeconfig:
            self.emulator = HostEmulator().start()
            kubeconfig = self.emulator.write_kubeconfig(self.state_dir / "host-kubeconfig")
        cluster = {"kubeconfig": str(kubeconfig)}
        if os.environ.get("HOST_CONTEXT"):
            cluster["context"] = os.environ["HOST_CONTEXT"]
        os.environ["HOST_CLUSTERS"] = json.dumps({os.environ.get("HOST_CLUSTER_NAME", "loft-cluster"): cluster})
        if self.emulator:
            return f"host cluster: built-in emulator at {self.emulator.url} (set HOST_KUBECONFIG for a real one)"
        return f"host cluster: {kubeconfig}" + (f" context {cluster['context']}" if "context" in cluster else "")

    def _thread(self, target, name):
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def _bootstrap(self):
        """The admin key: kept across restarts in .local/access-key, stored only as a hash."""
        from . import bootstrap

        path = self.state_dir / "access-key"
        key = path.read_text().strip() if path.exists() else ""
        if not key.startswith(bootstrap.KEY_NAME + "."):
            key = f"{bootstrap.KEY_NAME}.{secrets.token_urlsafe(32)}"
        path.write_text(key + "\n")
        path.chmod(0o600)
        bootstrap.run(key)
        return key

    def _write_kubeconfig(self):
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": "loft-local",
            "clusters": [{"name": "loft-local", "cluster": {"server": f"{self.url}/kubernetes/management", "insecure-skip-tls-verify": True}}],
            "users": [{"name": "loft-admin", "user": {"token": self.access_key}}],
            "contexts": [{"name": "loft-local", "context": {"cluster": "loft-local", "user": "loft-admin", "namespace": "loft-p-my-project"}}],
        }
        path = self.state_dir / "kubeconfig"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        path.chmod(0o600)

    def banner(self):
        return "\n".join([
            f"vCluster Platform API (serverless, local) on {self.url}  (GET /readyz)",
            self.host_description,
            "Paste these to use the seed's curl commands:",
            f"export LOFT_DOMAIN=localhost:{self.port}",
            f"export ACCESS_KEY={self.access_key}",
            f"export KUBECONFIG={self.state_dir / 'kubeconfig'}",
            "Ctrl-C stops; objects are kept in " + str(self.state_dir),
        ])

    def stop(self):
        self.worker.stop()
        self.server.shutdown()
        if self.emulator:
            self.emulator.stop()
        self.snapshots.stop()
        self.moto.stop()
