"""The worker against the host emulator: Kubernetes API round trips, drain rate, memory, readiness lag.

Runs the local stack exactly as `make run` does (a subprocess: API, moto, SQS poller, worker, sweep),
its host cluster an emulator in this process (so the emulator's memory is not the worker's). Prints
figures measured in this one run; asserts nothing. Run:
`.venv/bin/python bench/bench_worker.py [instances=200] [worker-threads=4]`

1. Round trips per provision (create -> Ready, readiness polls included) and per no-op reconcile of
   a Ready instance (duplicate jobs sent straight to SQS), read from the emulator's /_emulator/stats.
2. N instances created at once: instances/second to Ready, the stack process's peak RSS (VmHWM),
   and the lag from host-ready (StatefulSet rolled out, seen in the emulator) to phase Ready (seen
   through the API), then the same N deleted.
"""
import json
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
import boto3  # noqa: E402

from conftest import API, start_stack, stop_stack  # noqa: E402  (the tests' stack launcher)
from local.hostemu import HostEmulator  # noqa: E402

VCI = "virtualclusterinstances"
TEMPLATE = {"helmRelease": {"values": "sync:\n  toHost:\n    pods:\n      enabled: true\n"}}
WRITES = ("create", "update", "patch", "delete", "deletecollection")


def rss_kib(pid, field):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def emulator_stats(emu, reset=False):
    with urllib.request.urlopen(urllib.request.Request(emu.url + "/_emulator/stats",
                                                       method="POST" if reset else "GET"), timeout=10) as r:
        return json.loads(r.read())


def summary(stats):
    verbs = {k: v for k, v in stats["by_verb"].items() if v}
    writes = sum(stats["by_verb"].get(v, 0) for v in WRITES)
    return stats["requests"], writes, verbs


def settle(emu, quiet=1.0, timeout=60):
    """Wait until the host saw no request for `quiet` seconds."""
    deadline = time.monotonic() + timeout
    last = emulator_stats(emu)["requests"]
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = emulator_stats(emu)["requests"]
        if now == last:
            return
        last = now


def phase(stack, ns, name):
    answer = stack.request("GET", f"{API}/namespaces/{ns}/{VCI}/{name}")
    return ((answer.json().get("status") or {}).get("phase")) if answer.status == 200 else None


def wait_ready(stack, ns, name, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if phase(stack, ns, name) == "Ready":
            return
        time.sleep(0.05)
    raise RuntimeError(f"{name} not Ready after {timeout}s")


def create(stack, ns, name):
    answer = stack.request("POST", f"{API}/namespaces/{ns}/{VCI}",
                           {"metadata": {"name": name}, "spec": {"template": TEMPLATE}})
    assert answer.status == 201, answer.body


def host_ready(sts):
    status, meta = sts.get("status") or {}, sts["metadata"]
    return (status.get("observedGeneration") or 0) >= meta.get("generation", 1) and (status.get("readyReplicas") or 0) >= 1


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    emu = HostEmulator().start()
    state = Path(tempfile.mkdtemp(prefix="bench-worker-"))
    kubeconfig = emu.write_kubeconfig(state / "host-kubeconfig")
    stack = start_stack(state, env={"HOST_KUBECONFIG": kubeconfig, "WORKER_THREADS": str(threads), "LOG_LEVEL": "ERROR"})
    pid = stack.process.pid
    info = json.loads((state / "stack.json").read_text())
    sqs = boto3.client("sqs", endpoint_url=info["aws_endpoint"], region_name="us-east-1",
                       aws_access_key_id="local", aws_secret_access_key="local")
    queue = sqs.get_queue_url(QueueName=info["queue"])["QueueUrl"]
    try:
        answer = stack.request("POST", API + "/projects", {"metadata": {"name": "bench"}})
        assert answer.status == 201, answer.body
        ns = "loft-p-bench"
        print(f"stack pid {pid}, worker threads {threads}, emulator ready_delay {emu.ready_delay}s, "
              f"worker backoff base 1s (defaults)")

        # 1. Round trips -----------------------------------------------------------------------------
        emulator_stats(emu, reset=True)
        started = time.monotonic()
        create(stack, ns, "probe")
        host_at = None
        while phase(stack, ns, "probe") != "Ready":
            sts = emu.get_object("statefulsets", "probe", "loft-bench-v-probe")
            if host_at is None and sts and host_ready(sts):
                host_at = time.monotonic()
            time.sleep(0.02)
        ready_at = time.monotonic()
        settle(emu, quiet=0.5)
        requests, writes, verbs = summary(emulator_stats(emu))
        lag = f"{ready_at - host_at:.2f}s" if host_at else "n/a"
        print(f"\nprovision (create -> Ready {ready_at - started:.2f}s, host-ready -> Ready {lag}): "
              f"{requests} host requests, {writes} writes  {verbs}")

        jobs = 20
        emulator_stats(emu, reset=True)
        body = json.dumps({"attempt": 0, "failures": 0, "kind": VCI, "name": "probe", "namespace": ns, "reason": "bench"},
                          sort_keys=True)
        for _ in range(jobs):
            sqs.send_message(QueueUrl=queue, MessageBody=body)
        settle(emu, quiet=1.0)
        requests, writes, verbs = summary(emulator_stats(emu))
        print(f"no-op reconcile of a Ready instance ({jobs} duplicate jobs): {requests / jobs:.1f} host requests "
              f"and {writes / jobs:.1f} writes per job  {verbs}")

        emulator_stats(emu, reset=True)
        answer = stack.request("PATCH", f"{API}/namespaces/{ns}/{VCI}/probe",
                               json.dumps({"spec": {"description": "a new generation, same host objects"}}),
                               content_type="application/merge-patch+json")
        assert answer.status == 200, answer.body
        settle(emu, quiet=1.0)
        requests, writes, verbs = summary(emulator_stats(emu))
        print(f"new generation without host drift (full compare): {requests} host requests, {writes} writes  {verbs}")

        # 2. N at once -------------------------------------------------------------------------------
        names = [f"vc-{i:04d}" for i in range(count)]
        hwm_before, rss_before = rss_kib(pid, "VmHWM"), rss_kib(pid, "VmRSS")
        emulator_stats(emu, reset=True)
        host_seen, ready_seen = {}, {}
        done = threading.Event()

        def watch_host():
            while not done.is_set():
                now = time.monotonic()
                for sts in emu.list_objects("statefulsets"):
                    name = sts["metadata"]["name"]
                    if name not in host_seen and host_ready(sts):
                        host_seen[name] = now
                time.sleep(0.2)

        watcher = threading.Thread(target=watch_host, daemon=True)
        watcher.start()
        started = time.monotonic()
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda n: create(stack, ns, n), names))
        created = time.monotonic() - started
        deadline = started + 600
        while len(ready_seen) < count and time.monotonic() < deadline:
            answer = stack.request("GET", f"{API}/namespaces/{ns}/{VCI}?limit=500")
            now = time.monotonic()
            for item in answer.json()["items"]:
                name = item["metadata"]["name"]
                if name in names and name not in ready_seen and (item.get("status") or {}).get("phase") == "Ready":
                    ready_seen[name] = now
            time.sleep(0.5)
        drained = time.monotonic() - started
        done.set()
        watcher.join()
        hwm_after = rss_kib(pid, "VmHWM")
        requests, writes, verbs = summary(emulator_stats(emu))
        lags = [ready_seen[n] - host_seen[n] for n in ready_seen if n in host_seen]
        firsts = sorted(ready_seen.values())
        print(f"\n{count} instances created at once (API: {created:.1f}s for the creates, "
              f"{count / created:.0f}/s)")
        print(f"  all Ready after {drained:.1f}s: {len(ready_seen) / drained:.1f} instances/s "
              f"({len(ready_seen)}/{count} Ready; first Ready after {firsts[0] - started:.1f}s, "
              f"half after {firsts[len(firsts) // 2] - started:.1f}s)")
        print(f"  host requests: {requests} ({requests / count:.1f} per instance, {writes / count:.1f} writes)  {verbs}")
        if lags:
            print(f"  host-ready -> phase Ready: median {statistics.median(lags):.2f}s, p95 {pct(lags, 95):.2f}s, "
                  f"max {max(lags):.2f}s (observed by polling: host every 0.2s, API every 0.5s)")
        print(f"  stack process (API + moto + worker) peak RSS: {hwm_before / 1024:.0f} MiB before -> "
              f"{hwm_after / 1024:.0f} MiB after (RSS before {rss_before / 1024:.0f} MiB; "
              f"+{(hwm_after - hwm_before) / 1024:.0f} MiB for {count} instances)")

        started = time.monotonic()
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda n: stack.request("DELETE", f"{API}/namespaces/{ns}/{VCI}/{n}"), names))
        while time.monotonic() - started < 600:
            left = [i for i in stack.request("GET", f"{API}/namespaces/{ns}/{VCI}?limit=500").json()["items"]
                    if i["metadata"]["name"] in names]
            if not left:
                break
            time.sleep(0.2)
        gone = time.monotonic() - started
        print(f"  deleted (host namespaces gone, finalizers released) in {gone:.1f}s: {count / gone:.1f} instances/s; "
              f"host namespaces left: {sum(1 for n in emu.list_objects('namespaces') if n['metadata']['name'].startswith('loft-bench-v-vc-'))}")
    finally:
        stop_stack(stack)
        emu.stop()


if __name__ == "__main__":
    main()
