"""The deployable template (issue 6): `make package` for every stage, cfn-lint, a deploy into moto's
CloudFormation that the code then really uses, IAM policies that name only what the code calls, and the
local stack creating the same resources from the same definition.

Packaging runs once per module on a copy of the project without requirements.txt: the Lambda dependencies
only fill deployment.zip (they never change the template) and would need PyPI. `make package` includes them.
"""
import copy
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from infra import cfn, package  # noqa: E402
from local import aws as local_aws  # noqa: E402

STAGES = ("dev", "prod")
# moto's CloudFormation skips, with a warning, the types it does not emulate (alarms, access entry, secret...).
pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS::")
CONFIG = json.loads((ROOT / ".chalice" / "config.json").read_text())
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's
FUNCTIONS = {"APIHandler": ("api_handler", "ApiRole", "ApiLogGroup"), "Worker": ("worker", "WorkerRole", "WorkerLogGroup"),
             "Sweep": ("sweep", "SweepRole", "SweepLogGroup")}
API = "/kubernetes/management/apis/management.loft.sh/v1"


def function_setting(stage, function, key):
    settings = CONFIG["stages"][stage].get("lambda_functions", {}).get(function, {})
    return settings.get(key, CONFIG["stages"][stage].get(key, CONFIG.get(key)))


# ----------------------------------------------------------------------------------------------- packaging
@pytest.fixture(scope="module")
def packaged(tmp_path_factory):
    """stage -> (template dict, path of sam.yaml); packaged by infra/package.py as `make package` does."""
    project = tmp_path_factory.mktemp("project")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copy2(ROOT / "app.py", project / "app.py")
    shutil.copytree(ROOT / "chalicelib", project / "chalicelib", ignore=ignore)
    shutil.copytree(ROOT / "infra", project / "infra", ignore=ignore)
    (project / ".chalice").mkdir()
    shutil.copy2(ROOT / ".chalice" / "config.json", project / ".chalice" / "config.json")
    result = {}
    for stage in STAGES:
        path = package.package(stage, project / "dist" / stage, project)
        result[stage] = (yaml.safe_load(path.read_text()), path)
    return result


@pytest.mark.parametrize("stage", STAGES)
def test_package_pins_the_stage_and_agrees_with_the_chalice_config(packaged, stage):
    template, path = packaged[stage]
    assert (path.parent / "deployment.zip").exists()
    assert package.problems(template, stage) == []
    assert template["Parameters"]["Stage"]["Default"] == stage
    assert template["Parameters"]["Stage"]["AllowedValues"] == [stage]
    assert template["Transform"] == "AWS::Serverless-2016-10-31"
    worker = template["Resources"]["Worker"]["Properties"]
    source = worker["Events"]["WorkerSqsEventSource"]["Properties"]
    assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert source["ScalingConfig"]["MaximumConcurrency"] == worker["ReservedConcurrentExecutions"] \
        == function_setting(stage, "worker", "reserved_concurrency")


@pytest.mark.parametrize("stage", STAGES)
def test_cfn_lint_passes(packaged, stage):
    from cfnlint.api import lint_file

    matches = lint_file(packaged[stage][1])
    assert [str(m) for m in matches] == []


def test_drift_is_refused(packaged):
    """The checks `make package` runs catch a renamed table, a short visibility timeout, a lost patch."""
    template = copy.deepcopy(packaged["prod"][0])
    resources = template["Resources"]
    resources["ObjectsTable"]["Properties"]["TableName"] = {"Fn::Sub": "objects-${Stage}"}
    resources["JobsQueue"]["Properties"]["VisibilityTimeout"] = 300
    resources["Workr"] = {"Properties": {"Role": "x"}}
    found = "\n".join(package.problems(template, "prod"))
    assert "TABLE_NAME='vcp-objects-prod'" in found and "VisibilityTimeout 300" in found and "Workr" in found


# ----------------------------------------------------------------------------------------------- template content
@pytest.mark.parametrize("stage", STAGES)
def test_functions_have_the_configured_memory_timeouts_and_concurrency(packaged, stage):
    resources = packaged[stage][0]["Resources"]
    for logical, (function, _, _) in FUNCTIONS.items():
        props = resources[logical]["Properties"]
        assert props["MemorySize"] == function_setting(stage, function, "lambda_memory_size")
        assert props["Timeout"] == function_setting(stage, function, "lambda_timeout")
        short = {"api_handler": "api"}.get(function, function)
        assert props["FunctionName"] == {"Fn::Sub": "vcp-%s-${Stage}" % short}
    assert resources["APIHandler"]["Properties"]["Timeout"] <= 30  # API Gateway cuts integrations at 29 s
    assert resources["Worker"]["Properties"]["Timeout"] >= 120  # a provisioning step
    assert resources["Sweep"]["Properties"]["Timeout"] < 60  # runs every minute; no overlapping sweeps
    assert "ReservedConcurrentExecutions" in resources["Worker"]["Properties"]
    visibility = resources["JobsQueue"]["Properties"]["VisibilityTimeout"]
    assert visibility >= 6 * resources["Worker"]["Properties"]["Timeout"]


def test_table_queues_bucket_secret_and_events_are_defined_as_the_issue_asks(packaged):
    resources = packaged["prod"][0]["Resources"]
    table = resources["ObjectsTable"]["Properties"]
    assert table["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["DeletionProtectionEnabled"] == {"Fn::If": ["IsProd", True, False]}
    assert packaged["prod"][0]["Conditions"]["IsProd"] == {"Fn::Equals": [{"Ref": "Stage"}, "prod"]}
    assert resources["ObjectsTable"]["DeletionPolicy"] == "Retain"
    redrive = resources["JobsQueue"]["Properties"]["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["JobsDeadLetterQueue", "Arn"]} and redrive["maxReceiveCount"] >= 3
    bucket = resources["GitOpsBucket"]["Properties"]
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"]
    assert all(bucket["PublicAccessBlockConfiguration"].values()) and len(bucket["PublicAccessBlockConfiguration"]) == 4
    assert resources["SlackSigningSecret"]["Type"] == "AWS::SecretsManager::Secret"
    assert "SecretString" not in resources["SlackSigningSecret"]["Properties"]
    assert resources["EventBus"]["Type"] == "AWS::Events::EventBus"
    assert resources["NotifyRule"]["Properties"]["EventBusName"] == {"Fn::GetAtt": ["EventBus", "Name"]}
    assert resources["NotificationsTopic"]["Type"] == "AWS::SNS::Topic"
    entry = resources["HostClusterAccessEntry"]
    assert entry["Type"] == "AWS::EKS::AccessEntry" and entry["Condition"] == "HasAccessEntry"
    assert entry["Properties"]["PrincipalArn"] == {"Fn::GetAtt": ["WorkerRole", "Arn"]}
    assert entry["Properties"]["ClusterName"] == {"Ref": "HostClusterName"}
    alarms = {k for k, v in resources.items() if v["Type"] == "AWS::CloudWatch::Alarm"}
    assert {"DeadLettersAlarm", "WorkerErrorsAlarm", "ApiErrorsAlarm"} <= alarms
    # No secret in any function's environment.
    for logical in FUNCTIONS:
        variables = resources[logical]["Properties"]["Environment"]["Variables"]
        assert not [k for k in variables if re.search("SECRET|TOKEN|PASSWORD|SIGNING", k)]


def _status_body(template_text):
    return json.loads(template_text.replace("$context.error.messageString", json.dumps("an API Gateway message")))


def test_api_gateway_answers_with_kubernetes_status_objects(packaged):
    body = packaged["prod"][0]["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    responses = body["x-amazon-apigateway-gateway-responses"]
    unknown = responses["MISSING_AUTHENTICATION_TOKEN"]
    assert unknown["statusCode"] == "404"
    assert _status_body(unknown["responseTemplates"]["application/json"]) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "the server could not find the requested resource", "reason": "NotFound", "details": {}, "code": 404}
    assert {"DEFAULT_4XX", "DEFAULT_5XX", "THROTTLED", "REQUEST_TOO_LARGE", "INTEGRATION_TIMEOUT"} <= set(responses)
    for kind, response in responses.items():
        status = _status_body(response["responseTemplates"]["application/json"])
        assert status["kind"] == "Status" and status["apiVersion"] == "v1" and status["status"] == "Failure", kind
        assert status["reason"] and isinstance(status["code"], int), kind
        if "statusCode" in response:
            assert status["code"] == int(response["statusCode"]), kind
        assert response["responseParameters"]["gatewayresponse.header.Content-Type"] == "'application/json'"
    assert body["info"]["title"] == {"Fn::Sub": "vcp-api-${Stage}"}  # the ApiName of the 5xx alarm
    # Chalice's routes are all still there: the patch only added a key to the definition.
    assert f"{API}/namespaces/{{namespace}}/{{plural}}" in body["paths"]


# ----------------------------------------------------------------------------------------------- IAM
def _code_calls(*patterns):
    """The AWS operations chalicelib makes, as IAM action names (get_item -> GetItem), found by the patterns."""
    source = "\n".join(p.read_text() for p in (ROOT / "chalicelib").rglob("*.py"))
    names = {name for pattern in patterns for name in re.findall(pattern, source)}
    return {re.sub(r"(?:^|_)(\w)", lambda m: m.group(1).upper(), name) for name in names}


def _resource_key(value):
    """A canonical name for a policy Resource: GetAtt X.Arn -> X, Sub "${X.Arn}/index/i" -> X/index/i, Ref P -> P."""
    if isinstance(value, dict) and "Fn::GetAtt" in value and value["Fn::GetAtt"][1] == "Arn":
        return value["Fn::GetAtt"][0]
    if isinstance(value, dict) and "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
        return re.sub(r"\$\{(\w+)\.Arn\}", r"\1", value["Fn::Sub"])
    if isinstance(value, dict) and "Ref" in value:
        return value["Ref"]
    raise AssertionError(f"policy resource {value!r} is not one of this template's resources or parameters")


def role_grants(template, role):
    """{(action, resource key)} a role's policies allow: its inline policies and the managed ones attached."""
    resources = template["Resources"]
    props = resources[role]["Properties"]
    statements = [s for policy in props.get("Policies", []) for s in policy["PolicyDocument"]["Statement"]]
    for arn in props.get("ManagedPolicyArns", []):
        assert set(arn) == {"Ref"} and resources[arn["Ref"]]["Type"] == "AWS::IAM::ManagedPolicy", \
            f"{role}: only this template's own managed policies, got {arn!r}"
        statements += resources[arn["Ref"]]["Properties"]["PolicyDocument"]["Statement"]
    grants = set()
    for statement in statements:
        if "Fn::If" in statement:  # an optional statement: [condition, statement, AWS::NoValue]
            condition, statement, otherwise = statement["Fn::If"]
            assert otherwise == {"Ref": "AWS::NoValue"}
        assert statement["Effect"] == "Allow" and not {"NotAction", "NotResource", "Principal"} & set(statement)
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        targets = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for action in actions:
            assert "*" not in action, f"{role}: wildcard action {action}"
            for target in targets:
                assert target != "*", f"{role}: {action} on every resource"
                grants.add((action, _resource_key(target)))
    return grants


@pytest.mark.parametrize("stage", STAGES)
def test_iam_policies_name_only_what_the_code_uses(packaged, stage):
    template = packaged[stage][0]
    resources = template["Resources"]
    # Every boto3 client the Lambda code makes is accounted for below (sts only presigns the EKS token).
    clients = set(re.findall(r"client\(\s*\"(\w+)\"", "\n".join(p.read_text() for p in (ROOT / "chalicelib").rglob("*.py"))))
    assert clients <= {"dynamodb", "sqs", "eks", "sts"}, f"new AWS service used by chalicelib: {clients}; grant it in infra/"
    # store.py runs every DynamoDB call through _call("operation", ...); jobs.py calls aws.client("sqs").operation(...).
    table_calls = _code_calls(r"\b_call\(\s*\"(\w+)\"", r"client\(\s*\"dynamodb\"\s*\)\.(\w+)\(")
    queue_calls = _code_calls(r"client\(\s*\"sqs\"\s*\)\.(\w+)\(")
    eks_calls = _code_calls(r"client\(\s*\"eks\"\s*\)\.(\w+)\(", r"\beks\.(\w+)\(")
    assert table_calls and queue_calls and eks_calls  # the patterns still find the calls
    indexes = {i["IndexName"] for i in resources["ObjectsTable"]["Properties"]["GlobalSecondaryIndexes"]}

    table = {(f"dynamodb:{call}", "ObjectsTable") for call in table_calls}
    table |= {("dynamodb:Query", f"ObjectsTable/index/{index}") for index in indexes}
    enqueue = {(f"sqs:{call}", "JobsQueue") for call in queue_calls}

    def logs(group):
        return {("logs:CreateLogStream", group), ("logs:PutLogEvents", group)}

    expected = {
        "ApiRole": table | enqueue | logs("ApiLogGroup"),
        "SweepRole": table | enqueue | logs("SweepLogGroup"),
        # + the event source mapping's calls, jobs.dead_letter, and DescribeCluster on the parameterised ARNs.
        "WorkerRole": table | enqueue | logs("WorkerLogGroup")
        | {("sqs:ReceiveMessage", "JobsQueue"), ("sqs:DeleteMessage", "JobsQueue"), ("sqs:GetQueueAttributes", "JobsQueue")}
        | {("sqs:SendMessage", "JobsDeadLetterQueue"), ("sqs:GetQueueUrl", "JobsDeadLetterQueue")}
        | {(f"eks:{call}", "HostClusterArns") for call in eks_calls},
    }
    for role, grants in expected.items():
        assert role_grants(template, role) == grants, role
    assert not [a for a, _ in role_grants(template, "ApiRole") if a.startswith("eks:")]
    # One role per function, and no other IAM identity or policy in the template.
    for logical, (_, role, _) in FUNCTIONS.items():
        assert resources[logical]["Properties"]["Role"] == {"Fn::GetAtt": [role, "Arn"]}
        trust = resources[role]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert trust == [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]
    iam = {k: v["Type"] for k, v in resources.items() if v["Type"].startswith("AWS::IAM::")}
    assert iam == {"ApiRole": "AWS::IAM::Role", "WorkerRole": "AWS::IAM::Role", "SweepRole": "AWS::IAM::Role",
                   "ObjectsTablePolicy": "AWS::IAM::ManagedPolicy", "EnqueueJobsPolicy": "AWS::IAM::ManagedPolicy"}
    assert template["Parameters"]["HostClusterArns"]["Type"] == "CommaDelimitedList"


# ----------------------------------------------------------------------------------------------- deployed into moto
def expand_sam(template, code_bucket, code_key):
    """The part of the SAM transform this template needs, for moto (which has no SAM): functions with SQS and
    Schedule events, and the REST API. `aws cloudformation deploy` runs the real transform on AWS."""
    template = copy.deepcopy(template)
    template.pop("Transform")
    resources = template["Resources"]
    for logical, resource in list(resources.items()):
        props = resource["Properties"]
        if resource["Type"] == "AWS::Serverless::Function":
            events = props.pop("Events", {})
            props.pop("CodeUri")
            props["Code"] = {"S3Bucket": code_bucket, "S3Key": code_key}  # what `aws cloudformation package` does
            props["TracingConfig"] = {"Mode": props.pop("Tracing", "PassThrough")}
            props["Tags"] = [{"Key": k, "Value": v} for k, v in props.get("Tags", {}).items()]
            resource["Type"] = "AWS::Lambda::Function"
            for name, event in events.items():
                source = event["Properties"]
                if event["Type"] == "SQS":
                    resources[logical + name] = {"Type": "AWS::Lambda::EventSourceMapping", "Properties": {
                        "EventSourceArn": source["Queue"], "FunctionName": {"Ref": logical},
                        **{k: source[k] for k in ("BatchSize", "MaximumBatchingWindowInSeconds", "FunctionResponseTypes",
                                                  "ScalingConfig") if k in source}}}
                elif event["Type"] == "Schedule":
                    resources[logical + name] = {"Type": "AWS::Events::Rule", "Properties": {
                        "ScheduleExpression": source["Schedule"], "Targets": [{"Id": logical, "Arn": {"Fn::GetAtt": [logical, "Arn"]}}]}}
                    resources[logical + name + "Permission"] = {"Type": "AWS::Lambda::Permission", "Properties": {
                        "Action": "lambda:InvokeFunction", "FunctionName": {"Ref": logical},
                        "Principal": "events.amazonaws.com", "SourceArn": {"Fn::GetAtt": [logical + name, "Arn"]}}}
                else:
                    raise AssertionError(f"no moto translation for {event['Type']} events: extend expand_sam")
        elif resource["Type"] == "AWS::Serverless::Api":
            # moto imports no methods from a Body, so the Deployment/Stage SAM adds cannot be created there.
            resource["Type"] = "AWS::ApiGateway::RestApi"
            resource["Properties"] = {"Name": props["Name"], "Body": props["DefinitionBody"],
                                      "EndpointConfiguration": {"Types": [props["EndpointConfiguration"]]}}
        elif resource["Type"].startswith("AWS::Serverless::"):
            raise AssertionError(f"no moto translation for {resource['Type']}: extend expand_sam")
    return template


class Moto:
    def __init__(self):
        self.server, self.endpoint = local_aws.start_moto()
        self.options = dict(endpoint_url=self.endpoint, region_name=REGION, aws_access_key_id="testing",
                            aws_secret_access_key="testing")

    def client(self, service):
        return boto3.client(service, **self.options)


@pytest.fixture(scope="module")
def moto():
    server = Moto()
    yield server
    server.server.stop()


@pytest.fixture(scope="module")
def deployed(packaged, moto):
    """stage -> {logical id: physical id} of the packaged template, deployed into moto's CloudFormation."""
    s3, cloudformation = moto.client("s3"), moto.client("cloudformation")
    s3.create_bucket(Bucket="artifacts")
    stacks = {}
    for stage, (template, path) in packaged.items():
        s3.upload_file(str(path.parent / "deployment.zip"), "artifacts", f"{stage}/deployment.zip")
        cloudformation.create_stack(
            StackName=f"loft-serverless-{stage}", TemplateBody=json.dumps(expand_sam(template, "artifacts", f"{stage}/deployment.zip")),
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
            Parameters=[{"ParameterKey": "HostClusterArns", "ParameterValue": f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/vcp-host-{stage}"},
                        {"ParameterKey": "HostClusterName", "ParameterValue": f"vcp-host-{stage}"}])
        stack = cloudformation.describe_stacks(StackName=f"loft-serverless-{stage}")["Stacks"][0]
        assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
        summaries = cloudformation.list_stack_resources(StackName=stack["StackName"])["StackResourceSummaries"]
        stacks[stage] = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in summaries}
        stacks[stage]["outputs"] = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    return stacks


@pytest.mark.parametrize("stage", STAGES)
def test_deployed_functions_point_at_the_deployed_resources(deployed, moto, stage):
    physical = deployed[stage]
    lambda_, sqs, iam = moto.client("lambda"), moto.client("sqs"), moto.client("iam")
    jobs_url = physical["JobsQueue"]
    jobs_arn = sqs.get_queue_attributes(QueueUrl=jobs_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for logical, (function, role, log_group) in FUNCTIONS.items():
        configuration = lambda_.get_function_configuration(FunctionName=physical[logical])
        variables = configuration["Environment"]["Variables"]
        assert variables["TABLE_NAME"] == physical["ObjectsTable"]
        assert variables["JOBS_QUEUE_NAME"] == jobs_url.rsplit("/", 1)[1]
        assert variables["JOBS_QUEUE_URL"] == jobs_url
        assert variables["JOBS_DLQ_NAME"] == physical["JobsDeadLetterQueue"].rsplit("/", 1)[1]
        assert configuration["Role"] == iam.get_role(RoleName=physical[role])["Role"]["Arn"]
        assert configuration["Timeout"] == function_setting(stage, function, "lambda_timeout")
        assert physical[log_group] == f"/aws/lambda/{configuration['FunctionName']}"
    mappings = lambda_.list_event_source_mappings(FunctionName=physical["Worker"])["EventSourceMappings"]
    assert len(mappings) == 1
    assert mappings[0]["EventSourceArn"] == jobs_arn
    assert mappings[0]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mappings[0]["BatchSize"] == 10


@pytest.mark.parametrize("stage", STAGES)
def test_deployed_table_queues_and_bucket(deployed, moto, stage):
    physical = deployed[stage]
    dynamodb, sqs, s3 = moto.client("dynamodb"), moto.client("sqs"), moto.client("s3")
    table = dynamodb.describe_table(TableName=physical["ObjectsTable"])["Table"]
    assert table["TableName"] == f"vcp-objects-{stage}"
    assert {i["IndexName"] for i in table["GlobalSecondaryIndexes"]} == {"by-kind", "by-rv"}
    assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    jobs = sqs.get_queue_attributes(QueueUrl=physical["JobsQueue"], AttributeNames=["All"])["Attributes"]
    dlq = sqs.get_queue_attributes(QueueUrl=physical["JobsDeadLetterQueue"], AttributeNames=["All"])["Attributes"]
    assert json.loads(jobs["RedrivePolicy"])["deadLetterTargetArn"] == dlq["QueueArn"]
    assert int(jobs["VisibilityTimeout"]) >= 6 * function_setting(stage, "worker", "lambda_timeout")
    bucket = physical["GitOpsBucket"]
    assert bucket == f"vcp-gitops-{ACCOUNT}-{REGION}-{stage}"
    # moto's CloudFormation applies a bucket's encryption but not its versioning (the template test checks it).
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert deployed[stage]["outputs"]["TableName"] == table["TableName"]


SMOKE = """
import json, sys
from chalice.test import Client
import app
from local import bootstrap

key = "bootstrap-admin.smoke-test-secret"
bootstrap.run(key)
body = {"apiVersion": "management.loft.sh/v1", "kind": "VirtualClusterInstance", "metadata": {"name": "smoke"}}
with Client(app.app) as client:
    unauthenticated = client.http.get(sys.argv[1] + "/namespaces/loft-p-my-project/virtualclusterinstances")
    created = client.http.post(sys.argv[1] + "/namespaces/loft-p-my-project/virtualclusterinstances", body=json.dumps(body),
                               headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"})
print(json.dumps({"unauthenticated": unauthenticated.status_code, "status": created.status_code, "body": created.json_body}))
"""


@pytest.mark.parametrize("stage", STAGES)
def test_the_code_works_against_the_deployed_resources(deployed, moto, stage):
    """The API Lambda's deployed environment, in a fresh interpreter: bootstrap, create an instance, and the
    worker's job is on the deployed queue."""
    physical = deployed[stage]
    lambda_, sqs = moto.client("lambda"), moto.client("sqs")
    # moto would run the worker Lambda in Docker on every send; SQS is what we check, so turn the mapping off.
    for mapping in lambda_.list_event_source_mappings(FunctionName=physical["Worker"])["EventSourceMappings"]:
        lambda_.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
    variables = lambda_.get_function_configuration(FunctionName=physical["APIHandler"])["Environment"]["Variables"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(variables)
    env.update({"AWS_ENDPOINT_URL": moto.endpoint, "AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing", "PYTHONPATH": str(ROOT)})
    done = subprocess.run([sys.executable, "-c", SMOKE, API], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["unauthenticated"] == 401
    assert answer["status"] == 201, answer
    assert answer["body"]["metadata"]["namespace"] == "loft-p-my-project"
    messages = sqs.receive_message(QueueUrl=physical["JobsQueue"], MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
    jobs = [json.loads(m["Body"]) for m in messages]
    assert [job for job in jobs if (job.get("kind"), job.get("namespace"), job.get("name"))
            == ("virtualclusterinstances", "loft-p-my-project", "smoke")], jobs


# ----------------------------------------------------------------------------------------------- one definition
def test_the_local_stack_creates_the_same_resources(deployed, moto, monkeypatch):
    """local/aws.py (make run) reads infra/resources.yaml too: its table and queues match the deployed ones."""
    for key, value in {"AWS_ENDPOINT_URL": moto.endpoint, "AWS_DEFAULT_REGION": REGION,
                       "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(key, value)
    names = local_aws.create_resources("local")
    assert names == {"ObjectsTable": "vcp-objects-local", "JobsQueue": "vcp-jobs-local",
                     "JobsDeadLetterQueue": "vcp-jobs-dlq-local", "GitOpsBucket": f"vcp-gitops-{ACCOUNT}-{REGION}-local"}
    dynamodb, sqs, s3 = moto.client("dynamodb"), moto.client("sqs"), moto.client("s3")

    def table_shape(name):
        table = dynamodb.describe_table(TableName=name)["Table"]
        indexes = sorted((i["IndexName"], json.dumps(i["KeySchema"]), i["Projection"]["ProjectionType"])
                         for i in table["GlobalSecondaryIndexes"])
        return (table["KeySchema"], sorted(table["AttributeDefinitions"], key=json.dumps), indexes,
                table["StreamSpecification"], table["BillingModeSummary"]["BillingMode"])

    def queue_shape(url):
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        redrive = json.loads(attributes.get("RedrivePolicy", "{}"))
        return (attributes["VisibilityTimeout"], attributes["MessageRetentionPeriod"], redrive.get("maxReceiveCount"),
                redrive.get("deadLetterTargetArn", "").rsplit(":", 1)[-1].rsplit("-", 1)[0])

    prod = deployed["prod"]
    assert table_shape(names["ObjectsTable"]) == table_shape(prod["ObjectsTable"])
    # moto's CloudFormation ignores TimeToLiveSpecification; the local table has the defined one.
    ttl = dynamodb.describe_time_to_live(TableName=names["ObjectsTable"])["TimeToLiveDescription"]
    assert ttl["AttributeName"] == cfn.load()["Resources"]["ObjectsTable"]["Properties"]["TimeToLiveSpecification"]["AttributeName"]
    for logical in ("JobsQueue", "JobsDeadLetterQueue"):
        assert queue_shape(sqs.get_queue_url(QueueName=names[logical])["QueueUrl"]) == queue_shape(prod[logical])
    assert s3.get_bucket_versioning(Bucket=names["GitOpsBucket"])["Status"] == "Enabled"


def test_infra_definition_is_self_contained():
    """The file local/aws.py and `chalice package` read: patches only for the three functions and the API."""
    template = cfn.load()
    patches = {k for k, v in template["Resources"].items() if "Type" not in v}
    assert patches == {"APIHandler", "Worker", "Sweep", "RestAPI"}
    assert {"ObjectsTable", "JobsQueue", "JobsDeadLetterQueue"} <= set(cfn.typed_resources(template))


# ----------------------------------------------------------------------------------------------- configuration docs
def _config_py_variables():
    return set(re.findall(r"os\.environ\.get\(\s*\"(\w+)\"", (ROOT / "chalicelib" / "config.py").read_text()))


def test_chalice_config_sets_only_variables_the_code_reads():
    read = _config_py_variables()
    assert {"TABLE_NAME", "JOBS_QUEUE_NAME", "JOBS_DLQ_NAME", "HOST_CLUSTERS", "LOG_LEVEL"} <= read
    levels = [CONFIG] + list(CONFIG["stages"].values()) + [f for s in CONFIG["stages"].values()
                                                          for f in s.get("lambda_functions", {}).values()]
    for level in levels:
        assert set(level.get("environment_variables", {})) <= read
    for stage, settings in CONFIG["stages"].items():
        assert {"TABLE_NAME", "JOBS_QUEUE_NAME", "JOBS_DLQ_NAME", "HOST_CLUSTERS"} <= set(settings["environment_variables"]), stage
        assert set(settings["lambda_functions"]) == {"api_handler", "worker", "sweep"}
    assert CONFIG["manage_iam_role"] is False


def test_deploy_docs_cover_every_setting():
    docs = (ROOT / "README.md").read_text()
    for variable in _config_py_variables() | {"JOBS_QUEUE_URL"}:
        assert f"`{variable}`" in docs, variable
    keys = {k for s in CONFIG["stages"].values() for f in s["lambda_functions"].values() for k in f}
    keys |= {k for k in CONFIG if k not in ("version", "app_name", "stages", "environment_variables")}
    for key in keys:
        assert f"`{key}`" in docs, key
    for parameter in packaged_parameters():
        assert f"`{parameter}`" in docs, parameter
    for needed in ("start-message-move-task", "AccessEntry", "make package", "make deploy", "API Gateway"):
        assert needed in docs, needed


def packaged_parameters():
    return set(cfn.load()["Parameters"])
