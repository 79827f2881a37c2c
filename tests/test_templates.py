"""VirtualClusterTemplate: the resource over HTTP, typed parameters checked on instances (each problem at
`spec.parameters.<variable>`), versions and ranges, inline templates, and rendering that substitutes
`{{ .Values.x }}` and nothing else (unit tests of the pure functions first, then the running stack)."""
import builtins
import json

import pytest

from chalicelib.resources.templates import TemplateError, check_parameters, render, render_text, resolve_version
from conftest import API, ok, status, suffix

TPL = f"{API}/virtualclustertemplates"
VCI = "virtualclusterinstances"
MERGE = "application/merge-patch+json"








def fields(answer):
    """The 422's cause fields, after checking it is an Invalid Status."""
    return sorted(c["field"] for c in status(answer, 422, "Invalid")["details"]["causes"])


# ---------------------------------------------------------------------------------------------------
# Rendering: exactly {{ .Values.<variable> }}; anything else is ErrorRenderingTemplate, never executed.

VALUES = {"a": "x", "n": 3, "flag": True, "empty": "", "db": {"host": "h", "port": 5432}, "obj": {"k": "v"},
          "loop": "{{ .Values.a }}", "loft": {"name": "vc", "user": {"name": "me"}}}


@pytest.mark.parametrize("text,expected", [
    ("plain text, no placeholders", "plain text, no placeholders"),
    ("{{ .Values.a }}", "x"),
    ("{{.Values.a}}", "x"),
    ("{{- .Values.a -}}", "x"),
    ("a: {{ .Values.a }}\nb: {{ .Values.n }}", "a: x\nb: 3"),
    ("{{ .Values.flag }}", "true"),
    ("[{{ .Values.empty }}]", "[]"),
    ("{{ .Values.db.host }}:{{ .Values.db.port }}", "h:5432"),
    ("{{ .Values.loft.name }}/{{ .Values.loft.user.name }}", "vc/me"),
    ("{{ .Values.loop }}", "{{ .Values.a }}"),  # a value is inserted, never rendered again
    ("only closes }} here", "only closes }} here"),
    ("", ""),
])
def test_render_text(text, expected):
    assert render_text(text, VALUES) == expected


@pytest.mark.parametrize("text", [
    "{{ .Values.a | quote }}",
    "{{ printf \"%s\" .Values.a }}",
    "{{ .Release.Name }}",
    "{{ .Values }}",
    "{{ exec \"id\" }}",
    "{{ __import__('os').system('id') }}",
    "{{ .Values.a.__class__ }}",
    "{{ .Values.__class__ }}",
    "{{ template \"x\" . }}",
    "{{ define \"x\" }}y{{ end }}",
    "{{ if .Values.flag }}y{{ end }}",
    "{{ range .Values.obj }}y{{ end }}",
    "{{ $x := 1 }}",
    "{{/* a comment */}}",
    "{{ \"{{\" }}",
    "{{ .Values.missing }}",
    "{{ .Values.obj }}",
    "{{ .Values.db }}",
    "{{ .Values.a",
    "{{ .Values.a }} and {{",
    "{{}}",
])
def test_render_text_refuses_everything_else(text, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("rendering must never execute code")
    monkeypatch.setattr(builtins, "eval", never)
    monkeypatch.setattr(builtins, "exec", never)
    monkeypatch.setattr(builtins, "compile", never)
    with pytest.raises(TemplateError) as raised:
        render_text(text, VALUES)
    assert raised.value.reason == "ErrorRenderingTemplate"


def test_render_walks_the_whole_definition_and_keeps_non_strings():
    definition = {"helmRelease": {"chart": {"name": "vcluster"}, "values": "a: {{ .Values.a }}"},
                  "objects": ["n: {{ .Values.n }}", 7, None, True], "access": {"rules": [{"x": "{{ .Values.flag }}"}]}}
    assert render(definition, VALUES) == {"helmRelease": {"chart": {"name": "vcluster"}, "values": "a: x"},
                                          "objects": ["n: 3", 7, None, True], "access": {"rules": [{"x": "true"}]}}
    with pytest.raises(TemplateError):
        render({"deep": [{"deeper": "{{ .Values.nope }}"}]}, VALUES)


# ---------------------------------------------------------------------------------------------------
# Checking parameter values (unit): typed values back, or one cause per problem.

DECLARED = [
    {"variable": "name", "type": "string", "required": True, "validation": "^[a-z]+$", "invalidation": "^admin$"},
    {"variable": "replicas", "type": "number", "min": 1, "max": 5, "defaultValue": "1"},
    {"variable": "ha", "type": "boolean"},
    {"variable": "size", "options": ["small", "large"], "defaultValue": "small"},
    {"variable": "secret", "type": "password", "validation": ".{8,}"},
    {"variable": "notes", "type": "multiline"},
    {"variable": "version", "type": "string"},
    {"variable": "db.port", "type": "number", "defaultValue": "5432"},
]


def test_check_parameters_types_defaults_and_nesting():
    values = check_parameters(DECLARED, "name: abc\nreplicas: '3'\nha: True\nnotes: |\n  l1\n  l2\nversion: 1.20\ndb: {port: 10}")
    assert values == {"name": "abc", "replicas": 3, "ha": True, "size": "small", "secret": "", "notes": "l1\nl2\n",
                      "version": "1.20", "db": {"port": 10}}
    # Defaults fill what is missing or empty; a dotted variable may also be written flat.
    assert check_parameters(DECLARED, "name: abc\nsize: ''\ndb.port: 99") == {
        "name": "abc", "replicas": 1, "ha": "", "size": "small", "secret": "", "notes": "", "version": "", "db": {"port": 99}}
    # The declared type decides, not YAML's guesses: no octal, no floats eating zeros, no dates.
    assert check_parameters([{"variable": "v"}], "v: 010")["v"] == "010"
    assert check_parameters([{"variable": "v"}], "v: 2024-01-02")["v"] == "2024-01-02"
    assert check_parameters([{"variable": "v", "type": "number"}], "v: 010")["v"] == 10
    assert check_parameters([{"variable": "v", "type": "number"}], "v: 0.5")["v"] == 0.5
    assert check_parameters([], "") == {} and check_parameters([], "# nothing\n") == {}


@pytest.mark.parametrize("text,expected", [
    ("", {"spec.parameters.name": "FieldValueRequired"}),
    ("name: null", {"spec.parameters.name": "FieldValueRequired"}),
    ("name: ABC", {"spec.parameters.name": "FieldValueInvalid"}),
    ("name: admin", {"spec.parameters.name": "FieldValueInvalid"}),
    ("name: [a, b]", {"spec.parameters.name": "FieldValueInvalid"}),
    ("name: abc\nreplicas: 0", {"spec.parameters.replicas": "FieldValueInvalid"}),
    ("name: abc\nreplicas: 6", {"spec.parameters.replicas": "FieldValueInvalid"}),
    ("name: abc\nreplicas: two", {"spec.parameters.replicas": "FieldValueInvalid"}),
    ("name: abc\nreplicas: 1_000", {"spec.parameters.replicas": "FieldValueInvalid"}),
    ("name: abc\nreplicas: .nan", {"spec.parameters.replicas": "FieldValueInvalid"}),
    ("name: abc\nha: maybe", {"spec.parameters.ha": "FieldValueInvalid"}),
    ("name: abc\nha: yes", {"spec.parameters.ha": "FieldValueInvalid"}),
    ("name: abc\nsize: medium", {"spec.parameters.size": "FieldValueNotSupported"}),
    ("name: abc\nsecret: short", {"spec.parameters.secret": "FieldValueInvalid"}),
    ("name: abc\ndb: {port: x}", {"spec.parameters.db.port": "FieldValueInvalid"}),
    ("name: abc\nfoo: 1", {"spec.parameters.foo": "FieldValueNotSupported"}),
    ("name: abc\ndb: {user: x}", {"spec.parameters.db.user": "FieldValueNotSupported"}),
    ("name: ABC\nreplicas: 9\nsize: xl", {"spec.parameters.name": "FieldValueInvalid", "spec.parameters.replicas": "FieldValueInvalid",
                                          "spec.parameters.size": "FieldValueNotSupported"}),
    ("- a\n- b", {"spec.parameters": "FieldValueInvalid"}),
    ("name: [", {"spec.parameters": "FieldValueInvalid"}),
    ("name: !!python/object/apply:os.system ['id']", {"spec.parameters": "FieldValueInvalid"}),
    ("a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(f"b{i}: *a\n" for i in range(150)), {"spec.parameters": "FieldValueInvalid"}),
])
def test_check_parameters_causes(text, expected):
    with pytest.raises(TemplateError) as raised:
        check_parameters(DECLARED, text)
    assert raised.value.reason == "ErrorSyncingParameters"
    assert {c["field"]: c["reason"] for c in raised.value.causes} == expected


# ---------------------------------------------------------------------------------------------------
# Versions: X.Y.Z; a range (x for any part, missing parts are x) resolves to the newest match.

VERSIONED = {"template": {"objects": "top"}, "parameters": [{"variable": "top"}],
             "versions": [{"version": v, "template": {"objects": v}, "parameters": [{"variable": "p" + v.replace(".", "_")}]}
                          for v in ("1.0.0", "1.2.0", "1.2.5", "1.10.1", "2.0.0", "0.9.9")]}


@pytest.mark.parametrize("wanted,version", [
    (None, "2.0.0"), ("", "2.0.0"), ("x", "2.0.0"), ("x.x.x", "2.0.0"), ("1.x", "1.10.1"), ("1", "1.10.1"),
    ("1.x.x", "1.10.1"), ("1.2.x", "1.2.5"), ("1.2", "1.2.5"), ("1.2.0", "1.2.0"), ("1.x.0", "1.2.0"),
    ("x.x.1", "1.10.1"), ("0.x", "0.9.9"), ("2.0.0", "2.0.0"),
])
def test_resolve_version(wanted, version):
    got, definition, parameters = resolve_version(VERSIONED, wanted)
    assert (got, definition, parameters) == (version, {"objects": version}, [{"variable": "p" + version.replace(".", "_")}])


@pytest.mark.parametrize("wanted,reason", [
    ("3.x", "VersionNotFound"), ("1.3.x", "VersionNotFound"), ("1.2.4", "VersionNotFound"),
    ("latest", "VersionError"), ("v1.2.3", "VersionError"), ("1.2.3.4", "VersionError"), ("1..2", "VersionError"), ("*", "VersionError"),
])
def test_resolve_version_errors(wanted, reason):
    with pytest.raises(TemplateError) as raised:
        resolve_version(VERSIONED, wanted)
    assert raised.value.reason == reason


def test_resolve_version_without_versions():
    spec = {"template": {"objects": "top"}, "parameters": [{"variable": "top"}]}
    assert resolve_version(spec, None) == ("", {"objects": "top"}, [{"variable": "top"}])
    assert resolve_version(spec, "x") == ("", {"objects": "top"}, [{"variable": "top"}])
    with pytest.raises(TemplateError) as raised:
        resolve_version(spec, "1.0.0")
    assert raised.value.reason == "VersionNotFound"


# ---------------------------------------------------------------------------------------------------
# The resource over HTTP: same verbs and Status errors as instances, cluster-scoped.

def test_template_verbs_and_status_errors(stack):
    name = f"verbs-{suffix()}"
    body = {"apiVersion": "management.loft.sh/v1", "kind": "VirtualClusterTemplate", "metadata": {"name": name},
            "spec": {"displayName": "Verbs", "parameters": [{"variable": "x", "label": "X", "description": "an x", "type": "string",
                                                             "defaultValue": "y", "placeholder": "y", "section": "main"}],
                     "template": {"helmRelease": {"chart": {"name": "vcluster"}, "values": "x: {{ .Values.x }}"}},
                     "versions": [{"version": "1.0.0", "template": {"objects": ""}, "parameters": []}]}}
    created = ok(stack.request("POST", TPL, body), 201)
    assert created["kind"] == "VirtualClusterTemplate" and "namespace" not in created["metadata"]
    assert created["spec"] == body["spec"]
    again = status(stack.request("POST", TPL, body), 409, "AlreadyExists")
    assert again["message"] == f'virtualclustertemplates.management.loft.sh "{name}" already exists'
    got = ok(stack.request("GET", f"{TPL}/{name}"))
    assert got["metadata"]["uid"] == created["metadata"]["uid"]
    listed = ok(stack.request("GET", TPL))
    assert listed["kind"] == "VirtualClusterTemplateList" and name in {o["metadata"]["name"] for o in listed["items"]}
    # PUT with the current resourceVersion, then with a stale one.
    got["spec"]["description"] = "put"
    put = ok(stack.request("PUT", f"{TPL}/{name}", got))
    assert put["spec"]["description"] == "put" and put["metadata"]["generation"] == 2
    status(stack.request("PUT", f"{TPL}/{name}", got), 409, "Conflict")
    # The seed's JSON patch (annotation on an object without annotations), and a merge patch.
    patched = ok(stack.request("PATCH", f"{TPL}/{name}", '[{"op": "add", "path": "/metadata/annotations/my-annotation", "value": "my-value"}]',
                               content_type="application/json-patch+json"))
    assert patched["metadata"]["annotations"] == {"my-annotation": "my-value"}
    patched = ok(stack.request("PATCH", f"{TPL}/{name}", json.dumps({"spec": {"displayName": "merged"}}), content_type=MERGE))
    assert patched["spec"]["displayName"] == "merged"
    # Table for kubectl get.
    table = ok(stack.request("GET", f"{TPL}?fieldSelector=metadata.name%3D{name}",
                             headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}))
    assert [c["name"] for c in table["columnDefinitions"]][:3] == ["Name", "Display Name", "Versions"]
    assert table["rows"][0]["cells"][:3] == [name, "merged", "1.0.0"]
    # Cluster-scoped: no namespaced route.
    status(stack.request("GET", f"{API}/namespaces/loft-p-my-project/virtualclustertemplates/{name}"), 404, "NotFound")
    # Delete, then it is gone.
    ok(stack.request("DELETE", f"{TPL}/{name}"))
    gone = status(stack.request("GET", f"{TPL}/{name}"), 404, "NotFound")
    assert gone["message"] == f'virtualclustertemplates.management.loft.sh "{name}" not found'
    status(stack.request("DELETE", f"{TPL}/{name}"), 404, "NotFound")
    status(stack.request("POST", TPL, {**body, "kind": "VirtualClusterInstance"}), 400, "BadRequest")
    assert fields(stack.request("POST", TPL, {"metadata": {"name": "Bad_Name"}})) == ["metadata.name"]


@pytest.mark.parametrize("spec,expected", [
    ({"versions": [{"version": "1.0"}]}, ["spec.versions[0].version"]),
    ({"versions": [{"version": "1.0.0"}, {"version": "1.0.0"}]}, ["spec.versions[1].version"]),
    ({"parameters": [{"variable": "a b"}]}, ["spec.parameters[0].variable"]),
    ({"parameters": [{"variable": "a"}, {"variable": "a"}]}, ["spec.parameters[1].variable"]),
    ({"parameters": [{"variable": "loft.name"}]}, ["spec.parameters[0].variable"]),
    ({"parameters": [{"variable": "a", "validation": "("}]}, ["spec.parameters[0].validation"]),
    ({"parameters": [{"variable": "a", "invalidation": "[z-a]"}]}, ["spec.parameters[0].invalidation"]),
    ({"parameters": [{"variable": "a", "type": "number", "min": 5, "max": 1}]}, ["spec.parameters[0].min"]),
    ({"parameters": [{"variable": "a", "type": "number", "defaultValue": "many"}]}, ["spec.parameters[0].defaultValue"]),
    ({"parameters": [{"variable": "a", "type": "number", "max": 3, "defaultValue": "4"}]}, ["spec.parameters[0].defaultValue"]),
    ({"parameters": [{"variable": "a", "options": ["x"], "defaultValue": "y"}]}, ["spec.parameters[0].defaultValue"]),
    ({"parameters": [{"variable": "a", "type": "boolean", "defaultValue": "on"}]}, ["spec.parameters[0].defaultValue"]),
    ({"parameters": [{"variable": "a", "type": "float"}]}, ["spec.parameters.0.type"]),
    ({"versions": [{"version": "1.0.0", "parameters": [{"variable": "-x"}]}]}, ["spec.versions[0].parameters[0].variable"]),
    ({"template": {"helmRelease": {"values": "a: {{ .Values.a | quote }}"}}}, ["spec.template.helmRelease.values"]),
    ({"template": {"objects": "{{ exec \"id\" }}"}}, ["spec.template.objects"]),
    ({"template": {"spaceTemplate": {"objects": "x: {{ .Values.a"}}}, ["spec.template.spaceTemplate.objects"]),
    ({"versions": [{"version": "1.0.0", "template": {"objects": "{{ .Release.Name }}"}}]}, ["spec.versions[0].template.objects"]),
])
def test_template_admission(stack, spec, expected):
    answer = stack.request("POST", TPL + "?dryRun=All", {"metadata": {"name": f"bad-{suffix()}"}, "spec": spec})
    assert fields(answer) == expected
    if any("template" in f and "parameters" not in f and f.endswith(("values", "objects")) for f in expected):
        assert "ErrorRenderingTemplate" in answer.json()["message"]


# ---------------------------------------------------------------------------------------------------
# Instances against their template, over HTTP (dry runs: all of admission, no write, no worker).

HTTP_DECLARED = DECLARED + [{"variable": "ratio", "type": "number", "min": 0, "max": 1}]
HTTP_VALUES = ("name: {{ .Values.name }}\nreplicas: {{ .Values.replicas }}\nha: {{ .Values.ha }}\nsize: {{ .Values.size }}\n"
               "port: {{ .Values.db.port }}\nproject: {{ .Values.loft.project }}\nme: {{ .Values.loft.user.name }}\n"
               "cluster: {{ .Values.loft.cluster }}\nns: {{ .Values.loft.virtualClusterNamespace }}\n")


@pytest.fixture(scope="module")
def params(stack):
    """A template with every kind of parameter, and a project (short name: host namespaces stay < 63)."""
    s = suffix()
    template = f"params-{s}"
    ok(stack.request("POST", TPL, {"metadata": {"name": template}, "spec": {
        "parameters": HTTP_DECLARED, "template": {"helmRelease": {"values": HTTP_VALUES}}}}), 201)
    project = f"tp-{s}"
    ok(stack.request("POST", f"{API}/projects", {"metadata": {"name": project}}), 201)
    return template, f"loft-p-{project}"


def post_instance(stack, namespace, spec, key=None, dry=True, name=None):
    body = {"apiVersion": "management.loft.sh/v1", "kind": "VirtualClusterInstance",
            "metadata": {"name": name or f"i-{suffix()}"}, "spec": spec}
    return stack.request("POST", f"{API}/namespaces/{namespace}/{VCI}" + ("?dryRun=All" if dry else ""), body, key=key)


PARAMETER_CASES = [
    ("name: abc", []),
    ("name: abc\nreplicas: 5\nha: true\nsize: large\nsecret: longenough\nratio: 0.5\ndb: {port: 80}\nversion: 1.20", []),
    ("name: abc\nnotes: |\n  line one\n  line two\n", []),
    ("name: abc\nreplicas: '3'", []),
    ("name: abc\ndb.port: 99", []),
    ("", ["spec.parameters.name"]),
    ("name: ''", ["spec.parameters.name"]),
    ("name: ABC", ["spec.parameters.name"]),
    ("name: admin", ["spec.parameters.name"]),
    ("name: {a: b}", ["spec.parameters.name"]),
    ("name: abc\nreplicas: 0", ["spec.parameters.replicas"]),
    ("name: abc\nreplicas: 6", ["spec.parameters.replicas"]),
    ("name: abc\nreplicas: many", ["spec.parameters.replicas"]),
    ("name: abc\nratio: 1.5", ["spec.parameters.ratio"]),
    ("name: abc\nratio: -0.1", ["spec.parameters.ratio"]),
    ("name: abc\nha: maybe", ["spec.parameters.ha"]),
    ("name: abc\nsize: medium", ["spec.parameters.size"]),
    ("name: abc\nsecret: short", ["spec.parameters.secret"]),
    ("name: abc\ndb: {port: x}", ["spec.parameters.db.port"]),
    ("name: abc\nunknown: 1", ["spec.parameters.unknown"]),
    ("name: abc\ndb: {host: h}", ["spec.parameters.db.host"]),
    ("name: ABC\nreplicas: 9\nsize: xl\nha: 2", ["spec.parameters.ha", "spec.parameters.name", "spec.parameters.replicas", "spec.parameters.size"]),
    ("[name, abc]", ["spec.parameters"]),
    ("name: [abc", ["spec.parameters"]),
    ("name: !!python/object/apply:os.system ['touch /tmp/pwned-by-parameters']", ["spec.parameters"]),
    ("a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(f"b{i}: *a\n" for i in range(150)), ["spec.parameters"]),
]


@pytest.mark.parametrize("text,expected", PARAMETER_CASES, ids=[f"case{i}" for i in range(len(PARAMETER_CASES))])
def test_instance_parameters_against_template(stack, params, text, expected):
    template, namespace = params
    answer = post_instance(stack, namespace, {"templateRef": {"name": template}, "parameters": text})
    if not expected:
        assert ok(answer, 201)["spec"]["parameters"] == text
        return
    assert fields(answer) == expected
    message = answer.json()["message"]
    assert message.startswith('VirtualClusterInstance.management.loft.sh "'), message
    for field in expected:
        assert f"{field}: " in message


def test_parameters_checked_on_update_too(stack, params):
    template, namespace = params
    name = f"u-{suffix()}"
    ok(post_instance(stack, namespace, {"templateRef": {"name": template}, "parameters": "name: abc"}, dry=False, name=name), 201)
    answer = stack.request("PATCH", f"{API}/namespaces/{namespace}/{VCI}/{name}", json.dumps({"spec": {"parameters": "name: abc\nreplicas: 10"}}),
                           content_type=MERGE)
    assert fields(answer) == ["spec.parameters.replicas"]
    path = f"{API}/namespaces/{namespace}/{VCI}/{name}"
    assert ok(stack.request("GET", path))["spec"]["parameters"] == "name: abc"
    for _ in range(10):  # the worker writes status too: a PUT that lost that race (409) is retried
        current = ok(stack.request("GET", path))
        current["spec"]["parameters"] = "name: admin"
        answer = stack.request("PUT", path, current)
        if answer.status != 409:
            break
    assert fields(answer) == ["spec.parameters.name"]
    ok(stack.request("PATCH", f"{API}/namespaces/{namespace}/{VCI}/{name}", json.dumps({"spec": {"parameters": "name: xyz\nreplicas: 4"}}),
                     content_type=MERGE))


@pytest.fixture(scope="module")
def versioned(stack):
    name = f"versioned-{suffix()}"
    ok(stack.request("POST", TPL, {"metadata": {"name": name}, "spec": {
        "parameters": [{"variable": "top", "required": True}],
        "versions": [{"version": v, "parameters": [{"variable": "p" + v.replace(".", "_"), "required": True}],
                      "template": {"helmRelease": {"values": "v: {{ .Values.p" + v.replace(".", "_") + " }}"}}}
                     for v in ("1.0.0", "1.2.0", "1.2.5", "1.10.1", "2.0.0")]}}), 201)
    return name


@pytest.mark.parametrize("wanted,version", [
    (None, "2.0.0"), ("x", "2.0.0"), ("1.x", "1.10.1"), ("1.2.x", "1.2.5"), ("1.2.0", "1.2.0"), ("x.x.1", "1.10.1"), ("1", "1.10.1"),
])
def test_template_ref_version_ranges(stack, params, versioned, wanted, version):
    """Each version declares one required parameter of its own: the 422 names the one that was resolved."""
    _, namespace = params
    ref = {"name": versioned, **({"version": wanted} if wanted is not None else {})}
    variable = "p" + version.replace(".", "_")
    answer = post_instance(stack, namespace, {"templateRef": ref})
    causes = status(answer, 422, "Invalid")["details"]["causes"]
    assert causes == [{"reason": "FieldValueRequired", "field": f"spec.parameters.{variable}", "message": "Required value"}]
    ok(post_instance(stack, namespace, {"templateRef": ref, "parameters": f"{variable}: set"}), 201)


@pytest.mark.parametrize("ref,field,reason", [
    ({"name": "no-such-template"}, "spec.templateRef.name", "TemplateNotFound"),
    ({"version": "3.x"}, "spec.templateRef.version", "VersionNotFound"),
    ({"version": "1.2.4"}, "spec.templateRef.version", "VersionNotFound"),
    ({"version": "latest"}, "spec.templateRef.version", "VersionError"),
])
def test_unknown_template_or_version(stack, params, versioned, ref, field, reason):
    _, namespace = params
    answer = post_instance(stack, namespace, {"templateRef": {"name": versioned, **ref}})
    causes = status(answer, 422, "Invalid")["details"]["causes"]
    assert [c["field"] for c in causes] == [field] and reason in causes[0]["message"], causes


def test_rendering_errors_refuse_the_instance(stack, params):
    """A template may reference a value no parameter declares: the instance using it cannot render."""
    _, namespace = params
    name = f"undeclared-{suffix()}"
    ok(stack.request("POST", TPL, {"metadata": {"name": name}, "spec": {
        "parameters": [{"variable": "a"}], "template": {"helmRelease": {"values": "x: {{ .Values.b }}"}}}}), 201)
    answer = post_instance(stack, namespace, {"templateRef": {"name": name}, "parameters": "a: 1"})
    causes = status(answer, 422, "Invalid")["details"]["causes"]
    assert [c["field"] for c in causes] == ["spec.templateRef"]
    assert "ErrorRenderingTemplate" in causes[0]["message"] and '"b"' in causes[0]["message"]
    # An optional parameter left empty renders as empty, and built-ins are there.
    ok(stack.request("PATCH", f"{TPL}/{name}", json.dumps({"spec": {"template": {"helmRelease": {
        "values": "x: '{{ .Values.a }}'\nname: {{ .Values.loft.name }}\nvc: {{ .Values.loft.virtualClusterName }}"}}}}),
        content_type=MERGE))
    ok(post_instance(stack, namespace, {"templateRef": {"name": name}}), 201)


def test_the_seed_template_and_parameters(stack, params):
    _, namespace = params
    ok(post_instance(stack, namespace, {"templateRef": {"name": "my-virtual-cluster-template"}, "parameters": "my-parameter: my-value"}), 201)
    ok(post_instance(stack, namespace, {"templateRef": {"name": "my-virtual-cluster-template"}}), 201)
    assert fields(post_instance(stack, namespace, {"templateRef": {"name": "my-virtual-cluster-template"}, "parameters": "other: 1"})) == \
        ["spec.parameters.other"]


# ---------------------------------------------------------------------------------------------------
# Inline templates

INLINE = {"helmRelease": {"chart": {"name": "vcluster"}, "values": "name: {{ .Values.loft.name }}"}}


def _member(stack, project, role="loft-management-project-user"):
    user = f"inl-{suffix()}"
    ok(stack.request("POST", f"{API}/users", {"metadata": {"name": user}}), 201)
    ok(stack.request("PATCH", f"{API}/projects/{project}", json.dumps({"spec": {"members": [
        {"kind": "User", "name": user, "clusterRole": role}]}}), content_type=MERGE))
    return ok(stack.request("POST", f"{API}/ownedaccesskeys", {"metadata": {"name": user}, "spec": {"user": user}}), 201)["spec"]["key"]


def test_inline_template(stack, params):
    template, namespace = params
    # The platform admin may use an inline template (no templateRef).
    ok(post_instance(stack, namespace, {"template": INLINE}), 201)
    # Never both.
    for key in (None,):
        answer = post_instance(stack, namespace, {"template": INLINE, "templateRef": {"name": template}, "parameters": "name: abc"}, key=key)
        assert "spec.template and spec.templateRef cannot be used together" in status(answer, 403, "Forbidden")["message"]
    # Inline templates render like any other: only .Values references, and they must be set.
    answer = post_instance(stack, namespace, {"template": {"helmRelease": {"values": "{{ .Values.loft.name | upper }}"}}})
    causes = status(answer, 422, "Invalid")["details"]["causes"]
    assert [c["field"] for c in causes] == ["spec.template"] and "ErrorRenderingTemplate" in causes[0]["message"]
    answer = post_instance(stack, namespace, {"template": INLINE, "parameters": "a: 1"})
    assert fields(answer) == ["spec.parameters.a"]
    # An inline template has a template's shape.
    assert fields(post_instance(stack, namespace, {"template": {"helmRelease": {"values": 3}}})) == ["spec.template.helmRelease.values"]
    assert fields(post_instance(stack, namespace, {"template": {"nonsense": True}})) == ["spec.template.nonsense"]


def test_inline_template_for_members_needs_require_template_disabled(stack, params):
    template, _ = params
    project = f"it-{suffix()}"
    ok(stack.request("POST", f"{API}/projects", {"metadata": {"name": project}}), 201)
    namespace = f"loft-p-{project}"
    key = _member(stack, project)
    answer = post_instance(stack, namespace, {"template": INLINE}, key=key)
    message = status(answer, 403, "Forbidden")["message"]
    assert f'project "{project}" requires a template' in message, message
    answer = post_instance(stack, namespace, {"template": INLINE, "templateRef": {"name": template}, "parameters": "name: abc"}, key=key)
    status(answer, 403, "Forbidden")
    ok(post_instance(stack, namespace, {"templateRef": {"name": template}, "parameters": "name: abc"}, key=key), 201)
    ok(stack.request("PATCH", f"{API}/projects/{project}", json.dumps({"spec": {"requireTemplate": {"disabled": True}}}), content_type=MERGE))
    ok(post_instance(stack, namespace, {"template": INLINE}, key=key), 201)
    answer = post_instance(stack, namespace, {"template": INLINE, "templateRef": {"name": template}, "parameters": "name: abc"}, key=key)
    status(answer, 403, "Forbidden")
