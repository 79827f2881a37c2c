"""Latency of the host emulator through the real kubernetes client, batch by batch.

Why: kmock's latency grew with every request; this shows ours stays flat. Run:
`.venv/bin/python bench/bench_hostemu.py [requests-per-batch] [batches] [threads]`
"""
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from kubernetes import client, config  # noqa: E402

from local.hostemu import HostEmulator  # noqa: E402


def timed(fn, *args, **kwargs):
    started = time.perf_counter()
    fn(*args, **kwargs)
    return (time.perf_counter() - started) * 1000


def main():
    defaults = [200, 5, 4]
    per_batch, batches, threads = [int(a) for a in sys.argv[1:4]] + defaults[len(sys.argv[1:4]):]
    emu = HostEmulator().start()
    core = client.CoreV1Api(config.new_client_from_config_dict(emu.kubeconfig_dict()))
    core.create_namespace({"metadata": {"name": "bench"}})
    n = iter(range(10**9))
    print(f"{'batch':>5} {'objects':>7} {'verb':>6} {'p50 ms':>7} {'p99 ms':>7}")
    for batch in range(batches):
        samples = {"create": [], "get": [], "patch": [], "list": []}
        for _ in range(per_batch):
            name = f"cm-{next(n)}"
            samples["create"].append(timed(core.create_namespaced_config_map, "bench",
                                           {"metadata": {"name": name, "labels": {"b": str(batch)}}}))
            samples["get"].append(timed(core.read_namespaced_config_map, name, "bench"))
            samples["patch"].append(timed(core.patch_namespaced_config_map, name, "bench", {"data": {"k": "v"}}))
            samples["list"].append(timed(core.list_namespaced_config_map, "bench", label_selector=f"b={batch}",
                                         limit=1))
        objects = len(emu.list_objects("configmaps", "bench"))
        for verb, values in samples.items():
            values.sort()
            print(f"{batch:>5} {objects:>7} {verb:>6} {statistics.median(values):7.2f} "
                  f"{values[int(len(values) * 0.99) - 1]:7.2f}")

    def reader(count):
        for _ in range(count):
            core.read_namespaced_config_map("cm-0", "bench")
    workers = [threading.Thread(target=reader, args=(per_batch,)) for _ in range(threads)]
    started = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - started
    print(f"{threads} threads x {per_batch} gets: {threads * per_batch / elapsed:.0f} req/s")
    print("stats:", emu.stats()["by_verb"])
    emu.stop()


if __name__ == "__main__":
    main()
