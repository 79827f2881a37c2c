"""Reading infra/resources.yaml outside CloudFormation: short-form tags (!Sub, !GetAtt, !If, ...) become
the long form ({"Fn::Sub": ...}), exactly as `chalice package --merge-template` reads them, and the few
intrinsics the local stack needs are resolved here."""
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
RESOURCES = ROOT / "infra" / "resources.yaml"


class _Loader(yaml.SafeLoader):
    """A SafeLoader that knows CloudFormation's short-form intrinsic functions."""


def _intrinsic(loader, suffix, node):
    name = suffix if suffix in ("Ref", "Condition") else "Fn::" + suffix
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_Loader.add_multi_constructor("!", _intrinsic)


def load(path=RESOURCES):
    with open(path) as f:
        return yaml.load(f, Loader=_Loader)


def loads(text):
    return yaml.load(text, Loader=_Loader)


def sub(value, variables):
    """Resolve a plain string or a one-argument {"Fn::Sub": "..."} with ${Name} variables."""
    if isinstance(value, dict) and "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
        text = value["Fn::Sub"]
        for name, replacement in variables.items():
            text = text.replace("${%s}" % name, replacement)
        if "${" in text:
            raise ValueError(f"unresolved variable in {value['Fn::Sub']!r}")
        return text
    if isinstance(value, str):
        return value
    raise ValueError(f"cannot resolve {value!r} outside CloudFormation")


def typed_resources(template):
    """The complete resources (with a Type); the others only patch what `chalice package` generates."""
    return {k: v for k, v in template["Resources"].items() if "Type" in v}
