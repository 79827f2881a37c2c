"""Host cluster connections: the EKS bearer token and client built from eks:DescribeCluster (moto)."""
import base64
from urllib.parse import parse_qs, urlparse

import boto3
import pytest
from moto import mock_aws

from chalicelib import config
from chalicelib.worker import hosts
from chalicelib.worker.errors import PermanentError


@pytest.fixture
def aws(monkeypatch):
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "eu-west-1"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield


def test_eks_token_is_a_presigned_get_caller_identity(aws):
    token = hosts.eks_token("prod-hosts", "eu-west-1")
    assert token.startswith("k8s-aws-v1.") and "=" not in token
    url = urlparse(base64.urlsafe_b64decode(token[len("k8s-aws-v1."):] + "==").decode())
    query = parse_qs(url.query)
    assert url.netloc == "sts.eu-west-1.amazonaws.com"
    assert query["Action"] == ["GetCallerIdentity"] and query["X-Amz-Expires"] == ["60"]
    assert "x-k8s-aws-id" in query["X-Amz-SignedHeaders"][0]


def test_eks_client_from_describe_cluster(aws, monkeypatch):
    iam = boto3.client("iam")
    role = iam.create_role(RoleName="eks", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    boto3.client("eks").create_cluster(name="prod-hosts", roleArn=role, resourcesVpcConfig={})
    monkeypatch.setattr(config, "HOST_CLUSTERS", {"prod": {"eks": {"name": "prod-hosts", "region": "eu-west-1"}}})
    monkeypatch.setattr(hosts, "_clients", {})
    api_client = hosts.client_for("prod")
    described = boto3.client("eks").describe_cluster(name="prod-hosts")["cluster"]
    assert api_client.configuration.host == described["endpoint"]
    assert api_client.configuration.api_key["authorization"].startswith("Bearer k8s-aws-v1.")
    assert hosts.client_for("prod") is api_client  # cached until shortly before the token expires


def test_unknown_cluster_is_permanent(monkeypatch):
    monkeypatch.setattr(config, "HOST_CLUSTERS", {})
    with pytest.raises(PermanentError):
        hosts.client_for("nowhere")
