"""`make package STAGE=prod`: the deployable template of one stage, dist/<stage>/sam.yaml (+ deployment.zip).

    python -m infra.package --stage prod [--out dist/prod] [--project-dir .]

Runs `chalice package --stage S --merge-template infra/resources.yaml`, then
- pins the Stage parameter to S (its default and only allowed value): the template cannot be deployed as
  another stage, whose resource names would not match the names in .chalice/config.json;
- caps the worker's SQS event source at the worker's reserved concurrency (ScalingConfig.MaximumConcurrency),
  so Lambda never polls more batches than the function may run: throttled batches count towards the
  queue's maxReceiveCount and would end on the DLQ;
- refuses to write a template that drifted from .chalice/config.json (see `problems`).
"""
import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
MERGE_TEMPLATE = Path("infra") / "resources.yaml"
FUNCTIONS = {"APIHandler": "ApiRole", "Worker": "WorkerRole", "Sweep": "SweepRole"}
# Environment variable -> the resource whose name it must be.
NAMES = {"TABLE_NAME": ("ObjectsTable", "TableName"), "JOBS_QUEUE_NAME": ("JobsQueue", "QueueName"),
         "JOBS_DLQ_NAME": ("JobsDeadLetterQueue", "QueueName")}
API_GATEWAY_TIMEOUT = 29  # seconds; REST API integrations are cut there
VISIBILITY_FACTOR = 6  # AWS: SQS visibility timeout >= 6x the function timeout for an event source mapping


def chalice_package(project_dir, stage, out):
    """Run the Chalice CLI of this interpreter; returns the generated template (merged)."""
    out = Path(out).resolve()
    for name in ("sam.yaml", "deployment.zip"):
        (out / name).unlink(missing_ok=True)
    env = dict(os.environ)
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")  # chalice wants one; the template does not depend on it
    subprocess.run([sys.executable, "-c", "import sys; from chalice.cli import main; sys.exit(main())",
                    "--project-dir", str(project_dir), "package", "--stage", stage,
                    "--merge-template", str(Path(project_dir) / MERGE_TEMPLATE), "--template-format", "yaml",
                    str(out)], check=True, env=env, cwd=project_dir)
    return yaml.safe_load((out / "sam.yaml").read_text())


def finalize(template, stage):
    """The stage-specific settings infra/resources.yaml cannot know (one file serves every stage)."""
    template["Parameters"]["Stage"].update({"Default": stage, "AllowedValues": [stage]})
    template["Parameters"]["Stage"].pop("AllowedPattern", None)
    # With one allowed Stage, cfn-lint rightly sees the other branch of every stage condition as unreachable.
    template.setdefault("Metadata", {})["cfn-lint"] = {"config": {"ignore_checks": ["W1028"]}}
    worker = template["Resources"]["Worker"]["Properties"]
    reserved = worker.get("ReservedConcurrentExecutions")
    if reserved:
        source = worker["Events"]["WorkerSqsEventSource"]["Properties"]
        source["ScalingConfig"] = {"MaximumConcurrency": max(2, int(reserved))}
    return template


def _resolve_name(value, stage):
    from .cfn import sub

    return sub(value, {"Stage": stage})


def problems(template, stage):
    """What would make the packaged stage not work as configured; empty when it is consistent."""
    found = []
    resources = template.get("Resources", {})
    for logical, resource in resources.items():
        if "Type" not in resource:
            found.append(f"{logical}: infra/resources.yaml patches a resource `chalice package` did not generate")
    functions = {k: v for k, v in resources.items() if v.get("Type") == "AWS::Serverless::Function"}
    if set(functions) != set(FUNCTIONS):
        found.append(f"functions are {sorted(functions)}, infra/resources.yaml has roles for {sorted(FUNCTIONS)}")
    for logical, function in functions.items():
        props = function["Properties"]
        variables = props.get("Environment", {}).get("Variables", {})
        for variable, (resource, name_property) in NAMES.items():
            expected = _resolve_name(resources[resource]["Properties"][name_property], stage)
            if variables.get(variable) != expected:
                found.append(f"{logical}: {variable}={variables.get(variable)!r} in .chalice/config.json, "
                             f"but the {stage} stage's {resource} is named {expected!r}")
        if props.get("Role") != {"Fn::GetAtt": [FUNCTIONS.get(logical), "Arn"]}:
            found.append(f"{logical}: Role is {props.get('Role')!r}, not its own role from infra/resources.yaml")
        try:
            clusters = json.loads(variables.get("HOST_CLUSTERS") or "{}")
        except ValueError:
            clusters = None
        if not isinstance(clusters, dict) or not clusters or not all(
                isinstance(c, dict) and isinstance(c.get("eks"), dict) and c["eks"].get("name") for c in clusters.values()):
            found.append(f"{logical}: HOST_CLUSTERS must map cluster names to {{\"eks\": {{\"name\", \"region\"}}}} "
                         "(a kubeconfig file does not exist in Lambda)")
    api = functions.get("APIHandler", {}).get("Properties", {})
    if api.get("Timeout", 0) > API_GATEWAY_TIMEOUT + 1:
        found.append(f"APIHandler: timeout {api.get('Timeout')} s, but API Gateway answers 504 after {API_GATEWAY_TIMEOUT} s")
    worker = functions.get("Worker", {}).get("Properties", {})
    visibility = resources.get("JobsQueue", {}).get("Properties", {}).get("VisibilityTimeout", 0)
    if int(visibility) < VISIBILITY_FACTOR * int(worker.get("Timeout", 0)):
        found.append(f"JobsQueue: VisibilityTimeout {visibility} s < {VISIBILITY_FACTOR} x the worker's timeout "
                     f"({worker.get('Timeout')} s)")
    source = worker.get("Events", {}).get("WorkerSqsEventSource", {}).get("Properties", {})
    if source.get("Queue") != {"Fn::Sub": "${JobsQueue.Arn}"}:
        found.append(f"Worker: consumes {source.get('Queue')!r}, not the JobsQueue")
    if "ReportBatchItemFailures" not in (source.get("FunctionResponseTypes") or []):
        found.append("Worker: the SQS event source lacks FunctionResponseTypes: [ReportBatchItemFailures]")
    return found


def package(stage, out=None, project_dir=ROOT):
    """Package one stage; returns the path of its template. Raises SystemExit on drift."""
    project_dir = Path(project_dir).resolve()
    stages = json.loads((project_dir / ".chalice" / "config.json").read_text())["stages"]
    if stage not in stages:
        raise SystemExit(f"unknown stage {stage!r}; .chalice/config.json has {sorted(stages)}")
    out = Path(out or project_dir / "dist" / stage).resolve()
    template = finalize(chalice_package(project_dir, stage, out), stage)
    found = problems(template, stage)
    if found:
        raise SystemExit("infra/resources.yaml and .chalice/config.json disagree:\n  " + "\n  ".join(found))
    path = out / "sam.yaml"
    path.write_text(yaml.safe_dump(template, sort_keys=False, allow_unicode=True))
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", required=True)
    parser.add_argument("--out", help="default: dist/<stage>")
    parser.add_argument("--project-dir", default=str(ROOT))
    args = parser.parse_args(argv)
    path = package(args.stage, args.out, args.project_dir)
    print(f"packaged stage {args.stage}: {path} (+ {path.parent / 'deployment.zip'})")


if __name__ == "__main__":
    main()
