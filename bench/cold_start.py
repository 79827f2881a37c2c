"""Cold start: the time to import the API's Lambda module (`app`) vs importing chalice and boto3 alone.

Each sample is a fresh interpreter (as a cold Lambda), timing only the import statement inside it
(interpreter start-up is the same for both and is left out). Prints medians and their ratio.
Goal: app / (chalice + boto3) <= 1.2.

    .venv/bin/python bench/cold_start.py [--runs 9]
"""
import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROBE = "import time; t = time.perf_counter(); {stmt}; print(time.perf_counter() - t)"
CASES = {
    "import chalice, boto3": "import chalice, boto3",
    "import app": "import app",
    "import app, then the first client (boto3 + DynamoDB client)": "import app; from chalicelib import aws; aws.client('dynamodb')",
    "import chalice, boto3, then a DynamoDB client": "import chalice, boto3; boto3.session.Session().client('dynamodb')",
}


def sample(stmt):
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run([sys.executable, "-c", PROBE.format(stmt=stmt)], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    for stmt in CASES.values():  # warm the OS file cache and .pyc files once
        sample(stmt)
    medians = {}
    # Interleave the cases so machine noise hits them alike.
    samples = {label: [] for label in CASES}
    for _ in range(args.runs):
        for label, stmt in CASES.items():
            samples[label].append(sample(stmt))
    for label, values in samples.items():
        medians[label] = statistics.median(values)
        print(f"{label:<62} median {medians[label] * 1000:7.1f} ms  (min {min(values) * 1000:.1f}, max {max(values) * 1000:.1f}, n={len(values)})")
    base = medians["import chalice, boto3"]
    ratio = medians["import app"] / base
    print(f"\nratio import app / import chalice, boto3 = {ratio:.2f}  (goal <= 1.2: {'met' if ratio <= 1.2 else 'NOT met'})")
    with_client = medians["import app, then the first client (boto3 + DynamoDB client)"] / medians["import chalice, boto3, then a DynamoDB client"]
    print(f"ratio with the first DynamoDB client made on both sides = {with_client:.2f}")


if __name__ == "__main__":
    main()
