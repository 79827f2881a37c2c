"""The first page of a list (limit=50) in a namespace of 100 objects vs one of 10,000.

The Chalice app runs in-process (chalice.test.Client) against moto (mock_aws); the objects are
written straight into the table with batch_write_item, in the item format of chalicelib/store.py.
Prints the median time per page at both sizes and their ratio (goal <= 1.5), the DynamoDB calls and
items read per page (from botocore events and the Query answers), and the time spent outside the
AWS calls (our code), since moto's Query reads a whole partition per call where DynamoDB does not.

    .venv/bin/python bench/list_scaling.py [--small 100] [--large 10000] [--runs 25]
"""
import argparse
import statistics
import time
import uuid

import _harness
from _harness import API, request

SPEC = {"displayName": "bench", "owner": {"user": "admin"}, "templateRef": {"name": "my-virtual-cluster-template"},
        "clusterRef": {"cluster": "loft-cluster", "namespace": "loft-bench-v-x", "virtualCluster": "x"}}


def seed(namespace, count):
    import boto3

    from chalicelib import config, store

    dynamodb = boto3.session.Session().client("dynamodb")
    items = []
    for i in range(count):
        rv = str(store.next_rv())
        obj = {"apiVersion": "management.loft.sh/v1", "kind": "VirtualClusterInstance",
               "metadata": {"name": f"vc-{i:05d}", "namespace": namespace, "uid": str(uuid.uuid4()),
                            "creationTimestamp": "2026-01-01T00:00:00Z", "generation": 1, "resourceVersion": rv,
                            "finalizers": ["loft.sh/cleanup"]},
               "spec": SPEC, "status": {}}
        items.append({**store._item("virtualclusterinstances", obj), "crv": {"N": rv}})  # as store.create writes it
    for start in range(0, len(items), 25):
        dynamodb.batch_write_item(RequestItems={config.TABLE_NAME: [{"PutRequest": {"Item": item}} for item in items[start:start + 25]]})


def measure(client, calls, namespace, runs):
    path = f"{API}/namespaces/{namespace}/virtualclusterinstances?limit=50"
    request(client, "GET", path)  # warm
    totals, outside, per_page = [], [], None
    for _ in range(runs):
        calls.reset()
        started = time.perf_counter()
        page = request(client, "GET", path)
        elapsed = time.perf_counter() - started
        totals.append(elapsed)
        outside.append(elapsed - calls.seconds)
        per_page = (len(page["items"]), bool(page["metadata"].get("continue")), calls.summary(), calls.items_read)
    return statistics.median(totals), statistics.median(outside), per_page


def bare_query(namespace, runs):
    """moto's own Query with Limit=50 on the partition, without our code: where the growth comes from."""
    import boto3

    from chalicelib import config

    dynamodb = boto3.session.Session().client("dynamodb")
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        dynamodb.query(TableName=config.TABLE_NAME, KeyConditionExpression="pk = :pk", Limit=50,
                       ExpressionAttributeValues={":pk": {"S": f"virtualclusterinstances#{namespace}"}})
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--large", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=25)
    args = parser.parse_args()
    client, calls, mock = _harness.start()
    try:
        results = {}
        for size in (args.small, args.large):
            namespace = f"loft-p-bench-{size}"
            started = time.perf_counter()
            seed(namespace, size)
            print(f"seeded {size} objects into {namespace} in {time.perf_counter() - started:.1f} s")
            results[size] = measure(client, calls, namespace, args.runs) + (bare_query(namespace, args.runs),)
        for size, (total, outside, (items, more, summary, read), bare) in results.items():
            print(f"N={size:>6}: first page median {total * 1000:7.2f} ms, of it outside AWS calls {outside * 1000:6.2f} ms; "
                  f"{items} items, continue={more}; per page: {summary}, {read} items read by DynamoDB; "
                  f"moto's bare Query(Limit=50) {bare * 1000:.2f} ms")
        small, large = results[args.small], results[args.large]
        ratio = large[0] / small[0]
        print(f"\nratio N={args.large} / N={args.small}, whole page          = {ratio:.2f}  (goal <= 1.5: {'met' if ratio <= 1.5 else 'NOT met'})")
        print(f"ratio N={args.large} / N={args.small}, our code (outside AWS) = {large[1] / small[1]:.2f}")
        print(f"ratio N={args.large} / N={args.small}, moto's bare Query      = {large[3] / small[3]:.2f}  "
              "(moto reads the whole partition per Query; DynamoDB reads only Limit items)")
    finally:
        mock.stop()


if __name__ == "__main__":
    main()
