"""AWS calls per API operation, counted with botocore `before-call` events on every boto3 client.

The Chalice app runs in-process (chalice.test.Client) against moto (mock_aws). Each operation runs
once and then again (clients made, caches filled: the second count is what a warm Lambda pays). Goals: GET and a list page = 1 DynamoDB call; create = 1 DynamoDB write + 1 SQS send.

    .venv/bin/python bench/aws_calls.py
"""
import _harness
from _harness import API, request, vci

NS = "loft-p-my-project"
COLL = f"{API}/namespaces/{NS}/virtualclusterinstances"
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}


def main():
    client, calls, mock = _harness.start()
    try:
        for i in range(60):
            request(client, "POST", COLL, vci(f"seed-{i:02d}"))
        counter = iter(range(1000))
        operations = [
            ("GET an instance", lambda: request(client, "GET", f"{COLL}/seed-01")),
            ("list page (limit=50)", lambda: request(client, "GET", f"{COLL}?limit=50")),
            ("list page, all namespaces (limit=50)", lambda: request(client, "GET", f"{API}/virtualclusterinstances?limit=50")),
            ("create", lambda: request(client, "POST", COLL, vci(f"new-{next(counter)}"))),
            ("merge patch of labels", lambda: request(client, "PATCH", f"{COLL}/seed-02",
                                                       {"metadata": {"labels": {"n": str(next(counter))}}}, "application/merge-patch+json")),
            ("merge patch of spec", lambda: request(client, "PATCH", f"{COLL}/seed-03",
                                                     {"spec": {"description": str(next(counter))}}, "application/merge-patch+json")),
            ("delete", lambda: request(client, "DELETE", f"{COLL}/seed-{10 + next(counter) % 40:02d}")),
        ]
        print(f"{'operation':<40} {'first':>5} {'again':>5}  again: DynamoDB reads/writes, SQS; calls (what they read)")
        for label, run in operations:
            calls.reset()
            run()
            cold = len(calls.calls)
            calls.reset()
            run()
            warm = calls.calls
            dynamo = [c for c in warm if c[0] == "dynamodb"]
            writes = sum(1 for c in dynamo if c[1] in WRITES)
            auth = sum(1 for c in dynamo if c[2].startswith(("ownedaccesskeys#", "users#")))
            sqs = sum(1 for c in warm if c[0] == "sqs")
            print(f"{label:<40} {cold:>5} {len(warm):>5}  {len(dynamo) - writes} reads ({auth} for the access key/user) / "
                  f"{writes} writes, {sqs} SQS; {calls.summary()} ({', '.join(t for _, _, t in dynamo if t)})")
    finally:
        mock.stop()


if __name__ == "__main__":
    main()
