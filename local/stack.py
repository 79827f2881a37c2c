"""Starts and stops the local stack's parts in order; the tests start exactly the same thing."""
import logging
import os
import secrets
import threading
from pathlib import Path

import yaml

from . import aws, https


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
        names = aws.create_resources(self.stage)
        os.environ["TABLE_NAME"] = names["ObjectsTable"]
        os.environ["JOBS_QUEUE_NAME"] = names["JobsQueue"]
        self.snapshots = aws.Snapshots(self.state_dir / "dynamodb.json", names["ObjectsTable"])
        self.snapshots.restore()
        self.access_key = self._bootstrap()
        from app import app  # after the environment points at the local AWS

        cert, key = https.ensure_certificate(self.state_dir)
        self.server = https.serve(app, cert, key, self.port)
        self._thread(self.server.server.serve_forever, "https")
        self.snapshots.run_in_background()
        self._write_kubeconfig()

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
            "Paste these to use the seed's curl commands:",
            f"export LOFT_DOMAIN=localhost:{self.port}",
            f"export ACCESS_KEY={self.access_key}",
            f"export KUBECONFIG={self.state_dir / 'kubeconfig'}",
            "Ctrl-C stops; objects are kept in " + str(self.state_dir),
        ])

    def stop(self):
        self.server.shutdown()
        self.snapshots.stop()
        self.moto.stop()
