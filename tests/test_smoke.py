from conftest import API


def test_create_then_get(stack, namespace):
    body = {"apiVersion": "management.loft.sh/v1", "kind": "VirtualClusterInstance", "metadata": {"name": "a"}}
    created = stack.request("POST", f"{API}/namespaces/{namespace}/virtualclusterinstances", body)
    assert created.status == 201, created.body
    got = stack.request("GET", f"{API}/namespaces/{namespace}/virtualclusterinstances/a")
    assert got.json()["metadata"]["uid"] == created.json()["metadata"]["uid"]
