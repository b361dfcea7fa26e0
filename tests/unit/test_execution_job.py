"""The batch/v1 Job of an execution: what the pod runs, as the job will see it.

Kubernetes expands ``$(VAR)`` in a container's command, args and env values before the
process starts. These tests replay that expansion (the rules of Kubernetes'
``third_party/forked/golang/expansion``) and the supervisor's own argument parsing on
the built manifest, so they check the argv and environment the job really receives.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

import pytest

from overseer import errors
from overseer.core import bundle, execution_account, execution_job, names
from overseer.crd import execution
from overseer_library import settings as supervisor_settings

JOB = "a-job-e2cabde14e"
EXECUTION_ID = "1489895624.840211"
NAME = names.execution_resource_name(JOB, EXECUTION_ID)
COMMIT = "0123456789abcdef0123456789abcdef01234567"
BIN_FILES = [("run", 0o755, b"#!/bin/sh\necho run\n"), ("lib/common.sh", 0o644, b"x=1\n")]
_BUILT = bundle.build_bundle("ops", "team-a", COMMIT, BIN_FILES)
assert _BUILT is not None
BUNDLE_MAP: dict[str, Any] = _BUILT
BUNDLE = BUNDLE_MAP["metadata"]["name"]
ITEMS = tuple(bundle.volume_items(BUNDLE_MAP))
HOSTILE = [
    "a b",
    ";id",
    "$(id)",
    "$(HOME)",
    "$(OVERSEER_JOB)",
    "$$",
    "$",
    "a$",
    "$$(HOME)",
    "$(",
    "line one\nline two",
    "'\"`\\",
    "\ue000",
    "é ü 日本",
    "x" * 100 * 1024,
]


# --- Kubernetes and the supervisor, replayed ---------------------------------------------


def k8s_expand(text: str, variables: Mapping[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: ``$$`` is ``$``, ``$(NAME)`` the variable's value
    when it is defined and left as it is otherwise; any other ``$`` stays."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == "$" and i + 1 < len(text):
            following = text[i + 1]
            if following == "$":
                out.append("$")
                i += 2
                continue
            if following == "(":
                close = text.find(")", i + 2)
                if close >= 0:
                    name = text[i + 2 : close]
                    out.append(variables.get(name, f"$({name})"))
                    i = close + 1
                    continue
                out.append("$(")
                i += 2
                continue
            out.append("$" + following)
            i += 2
            continue
        out.append(text[i])
        i += 1
    return "".join(out)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Cases from Kubernetes' own expansion tests.
        ("$(VAR_A)", "A"),
        ("$$(VAR_B)_$(VAR_A)", "$(VAR_B)_A"),
        ("f000-$$VAR_A", "f000-$VAR_A"),
        ("$(VAR_A$(VAR_B))", "$(VAR_A$(VAR_B))"),
        ("foo$(VAR_Awhoops!", "foo$(VAR_Awhoops!"),
        ("$?_boo_$!", "$?_boo_$!"),
        ("$(VAR_DNE)", "$(VAR_DNE)"),
        ("$$$$$$(BIG_MONEY)", "$$$(BIG_MONEY)"),
        ("$$$$$$$(VAR_A)", "$$$A"),
        ("$(VAR_B)_______$(A", "B_______$(A"),
        ("$(VAR_A)foobarzab$", "Afoobarzab$"),
        ("--$($($($($--", "--$($($($($--"),
        ("$(foo$$var)", "$(foo$$var)"),
    ],
)
def test_the_expansion_replay_follows_kubernetes(text: str, expected: str) -> None:
    assert k8s_expand(text, {"VAR_A": "A", "VAR_B": "B"}) == expected


def kubelet(
    job: Mapping[str, Any], secret: Mapping[str, Any] | None = None
) -> tuple[list[str], list[str], dict[str, str]]:
    """The command, args and environment the container starts with."""
    container = job["spec"]["template"]["spec"]["containers"][0]
    data = {
        key: base64.b64decode(value).decode("utf-8")
        for key, value in (secret or {}).get("data", {}).items()
    }
    env: dict[str, str] = {}
    for variable in container.get("env", []):
        if "value" in variable:
            env[variable["name"]] = k8s_expand(variable["value"], dict(env))
        else:
            ref = variable["valueFrom"]["secretKeyRef"]
            assert secret is not None and ref["name"] == secret["metadata"]["name"]
            env[variable["name"]] = data[ref["key"]]
    command = [k8s_expand(part, env) for part in container["command"]]
    args = [k8s_expand(part, env) for part in container.get("args", [])]
    return command, args, env


def run(
    ctx: execution_job.ExecutionContext,
) -> tuple[supervisor_settings.Settings, dict[str, str]]:
    """What the supervisor is asked to run, and the environment it (and the job) gets."""
    job = execution_job.build_execution_job(ctx)
    command, args, env = kubelet(job, execution_job.build_parameters_secret(ctx))
    assert command == [execution_job.SUPERVISOR]
    return supervisor_settings.parse_settings(args, env), env


def argv(ctx: execution_job.ExecutionContext) -> list[str]:
    return list(run(ctx)[0].command)


def context(
    definition: Mapping[str, Any],
    parameters: Mapping[str, str] | None = None,
    *,
    bundle: bool = True,
) -> execution_job.ExecutionContext:
    spec = execution.ExecutionSpec.model_validate(
        {
            "job": JOB,
            "executionId": EXECUTION_ID,
            "parameters": dict(parameters or {}),
            "trigger": {"type": "api"},
            "commit": COMMIT,
            "definition": {"name": "A job", **definition},
        }
    )
    return execution_job.ExecutionContext(
        namespace="team-a",
        name=NAME,
        uid="5f6c-uid",
        spec=spec,
        bundle_name=BUNDLE if bundle else None,
        bundle_items=ITEMS if bundle else (),
    )


def pod_spec(job: Mapping[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = job["spec"]["template"]["spec"]
    return spec


def container(job: Mapping[str, Any]) -> dict[str, Any]:
    (only,) = pod_spec(job)["containers"]
    assert only["name"] == "job"
    return dict(only)


# --- identity, labels, ownership -------------------------------------------------------


def test_job_is_named_after_the_execution_labelled_and_owned_by_it() -> None:
    job = execution_job.build_execution_job(context({}))
    metadata = job["metadata"]
    assert (job["apiVersion"], job["kind"]) == ("batch/v1", "Job")
    assert metadata["name"] == NAME and names.is_dns_label(metadata["name"])
    assert metadata["namespace"] == "team-a"
    assert metadata["labels"] == {
        "overseer.dev/execution": NAME,
        "overseer.dev/execution-uid": context({}).uid,
        "overseer.dev/job": JOB,
        "app.kubernetes.io/managed-by": "overseer",
        "app.kubernetes.io/component": "execution",
    }
    assert job["spec"]["template"]["metadata"]["labels"] == metadata["labels"]
    assert metadata["annotations"] == {"overseer.dev/execution-id": EXECUTION_ID}
    assert metadata["ownerReferences"] == [
        {
            "apiVersion": "overseer.dev/v1alpha1",
            "kind": "OverseerExecution",
            "name": NAME,
            "uid": "5f6c-uid",
            "controller": True,
            "blockOwnerDeletion": False,
        }
    ]


def test_the_same_execution_always_gives_the_same_manifests() -> None:
    definition = {
        "script": "echo $1",
        "parameters": {"b": {}, "a": {"default": "x"}, "tok": {"secret": True}},
        "env": {"Z": "1", "A": "2"},
    }
    first = context(definition, {"b": "1", "tok": "t"})
    # The same execution as the API server hands it back: keys sorted, camelCase.
    body = {
        "metadata": {"namespace": "team-a", "name": NAME, "uid": "5f6c-uid"},
        "spec": json.loads(json.dumps(first.spec.model_dump(mode="json"), sort_keys=True)),
    }
    second = execution_job.ExecutionContext.from_body(body, BUNDLE_MAP)
    for build in (execution_job.build_execution_job, execution_job.build_parameters_secret):
        assert json.dumps(build(first)) == json.dumps(build(second))
        assert build(first) == build(first)


@pytest.mark.parametrize("bad", ["Has-Capitals", "x" * 64, "-lead", ""])
def test_job_names_must_be_execution_names(bad: str) -> None:
    with pytest.raises(ValueError, match="execution resource name"):
        execution_job.job_name(bad)


def test_long_execution_names_still_fit() -> None:
    name = names.execution_resource_name("j" * 62, EXECUTION_ID)
    assert execution_job.job_name(name) == name and len(name) <= 63
    assert execution_job.parameters_secret_name(name) == f"{name}-params"


# --- the pod: security, volumes, resources, timeouts -----------------------------------

RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}


def restricted_violations(pod: Mapping[str, Any]) -> list[str]:
    """What the Pod Security Standard ``restricted`` (and ``baseline``) would refuse."""
    problems = []
    pod_context = pod.get("securityContext", {})
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(flag):
            problems.append(flag)
    for volume in pod.get("volumes", []):
        if not set(volume) - {"name"} <= RESTRICTED_VOLUMES:
            problems.append(f"volume {volume['name']}")
    for each in [*pod["containers"], *pod.get("initContainers", [])]:
        own = each.get("securityContext", {})
        effective = {**pod_context, **own}
        if own.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{each['name']}: allowPrivilegeEscalation")
        capabilities = own.get("capabilities", {})
        if "ALL" not in capabilities.get("drop", []):
            problems.append(f"{each['name']}: capabilities not dropped")
        if set(capabilities.get("add", [])) - {"NET_BIND_SERVICE"}:
            problems.append(f"{each['name']}: capabilities added")
        if own.get("privileged"):
            problems.append(f"{each['name']}: privileged")
        if effective.get("runAsNonRoot") is not True or effective.get("runAsUser") == 0:
            problems.append(f"{each['name']}: may run as root")
        if effective.get("seccompProfile", {}).get("type") not in {"RuntimeDefault", "Localhost"}:
            problems.append(f"{each['name']}: seccomp")
        if any(port.get("hostPort") for port in each.get("ports", [])):
            problems.append(f"{each['name']}: hostPort")
    return problems


@pytest.mark.parametrize(
    "definition",
    [
        {},
        {"image": "python:3.12-slim", "user": 1000, "group": 0},
        {"cmdspec": "run x", "parameters": {"x": {"secret": True}}},
    ],
)
def test_the_pod_passes_the_restricted_pod_security_standard(definition: dict[str, Any]) -> None:
    ctx = context(definition, {"x": "1"} if "cmdspec" in definition else None)
    pod = pod_spec(execution_job.build_execution_job(ctx))
    assert restricted_violations(pod) == []
    assert pod["restartPolicy"] == "Never"
    assert pod["automountServiceAccountToken"] is False
    assert pod["enableServiceLinks"] is False
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["serviceAccountName"] == execution_job.EXECUTION_SERVICE_ACCOUNT


def test_the_pod_always_runs_as_the_execution_service_account_without_a_token() -> None:
    # The namespace's default ServiceAccount may hold RoleBindings of its own: never it.
    job = execution_job.build_execution_job(context({"image": "python:3.12-slim"}))
    pod = pod_spec(job)
    assert pod["serviceAccountName"] == "overseer-execution"
    assert pod["automountServiceAccountToken"] is False
    assert not [v for v in pod["volumes"] if "projected" in v or "serviceAccountToken" in str(v)]


def test_a_definition_cannot_name_a_service_account() -> None:
    for field in ("serviceAccountName", "serviceAccount"):
        with pytest.raises(ValueError, match=field):
            context({field: "admin"})


def test_the_execution_service_account_mounts_no_token_and_says_what_it_is() -> None:
    account = execution_account.build_service_account("team-a")
    assert account["kind"] == "ServiceAccount"
    assert account["metadata"]["name"] == "overseer-execution"
    assert account["metadata"]["namespace"] == "team-a"
    assert account["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "overseer"
    assert account["automountServiceAccountToken"] is False


def test_the_checker_itself_catches_a_root_pod() -> None:
    pod = pod_spec(execution_job.build_execution_job(context({})))
    pod["securityContext"]["runAsUser"] = 0
    pod["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    assert len(restricted_violations(pod)) == 2


def test_settings_choose_the_library_image_its_pull_policy_and_service_account() -> None:
    settings = execution_job.JobSettings(
        library_image="registry.example/overseer/library:1.0",
        image_pull_policy="Always",
        service_account="jobs",
    )
    job = execution_job.build_execution_job(context({}), settings)
    assert container(job)["image"] == "registry.example/overseer/library:1.0"
    assert container(job)["imagePullPolicy"] == "Always"
    assert pod_spec(job)["serviceAccountName"] == "jobs"
    assert pod_spec(job)["automountServiceAccountToken"] is False
    default = execution_job.build_execution_job(context({}))
    assert container(default)["image"] == "localhost/overseer/library:dev"
    assert "imagePullPolicy" not in container(default)


def test_bundle_is_mounted_read_only_with_its_items_and_modes() -> None:
    job = execution_job.build_execution_job(context({}))
    volumes = {v["name"]: v for v in pod_spec(job)["volumes"]}
    source = volumes["repo-bin"]["configMap"]
    assert source["name"] == BUNDLE == "ops-bin-0123456789ab"
    assert source["items"] == list(ITEMS)
    by_path = {item["path"]: item for item in source["items"]}
    assert (by_path["run"]["mode"], by_path["lib/common.sh"]["mode"]) == (0o755, 0o644)
    assert by_path["run"]["key"] == "run"
    assert set(BUNDLE_MAP["binaryData"]) == {item["key"] for item in source["items"]}
    mounts = {m["name"]: m for m in container(job)["volumeMounts"]}
    assert mounts["repo-bin"] == {
        "name": "repo-bin",
        "mountPath": "/overseer/repo-bin",
        "readOnly": True,
    }
    assert volumes["tmp"] == {"name": "tmp", "emptyDir": {}}
    assert mounts["tmp"]["mountPath"] == "/tmp"
    env = run(context({}))[1]
    assert env["OVERSEER_REPO_BIN"] == supervisor_settings.DEFAULT_REPO_BIN == "/overseer/repo-bin"
    assert env["OVERSEER_CONTROL_SOCKET"] == "/tmp/overseer/control.sock"


def test_without_bin_there_is_no_bundle_volume() -> None:
    job = execution_job.build_execution_job(context({}, bundle=False))
    assert "repo-bin" not in {v["name"] for v in pod_spec(job)["volumes"]}
    assert "repo-bin" not in {m["name"] for m in container(job)["volumeMounts"]}


def test_a_custom_image_gets_the_library_from_an_init_container() -> None:
    job = execution_job.build_execution_job(context({"image": "python:3.12-slim"}))
    pod = pod_spec(job)
    (init,) = pod["initContainers"]
    assert init["image"] == "localhost/overseer/library:dev"
    assert init["command"] == ["cp", "-R", "/opt/overseer/library/.", "/overseer/library-copy/"]
    assert init["volumeMounts"] == [{"name": "library", "mountPath": "/overseer/library-copy"}]
    assert {"name": "library", "emptyDir": {}} in pod["volumes"]
    job_container = container(job)
    assert job_container["image"] == "python:3.12-slim"
    assert {
        "name": "library",
        "mountPath": "/opt/overseer/library",
        "readOnly": True,
    } in job_container["volumeMounts"]
    assert job_container["command"] == ["/opt/overseer/library/bin/overseer-supervisor"]
    settings = execution_job.JobSettings(image_pull_policy="Never")
    pulled = execution_job.build_execution_job(context({"image": "python:3.12-slim"}), settings)
    assert pod_spec(pulled)["initContainers"][0]["imagePullPolicy"] == "Never"
    assert "imagePullPolicy" not in container(pulled), "the job's own image keeps its default"


def test_the_library_image_needs_no_init_container() -> None:
    job = execution_job.build_execution_job(context({"image": "localhost/overseer/library:dev"}))
    assert "initContainers" not in pod_spec(job)
    assert "library" not in {v["name"] for v in pod_spec(job)["volumes"]}


def test_resources_come_from_the_definition() -> None:
    resources = {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "1Gi"}}
    job = execution_job.build_execution_job(context({"resources": resources, "image": "x:1"}))
    assert container(job)["resources"] == resources
    assert pod_spec(job)["initContainers"][0]["resources"] == resources
    assert "resources" not in container(execution_job.build_execution_job(context({})))


@pytest.mark.parametrize(
    ("timeout", "seconds"), [(90, 90), ("90s", 90), ("1h30m", 5400), ("1500ms", 2), ("1ms", 1)]
)
def test_timeout_is_the_active_deadline(timeout: int | str, seconds: int) -> None:
    job = execution_job.build_execution_job(context({"timeout": timeout}))
    assert job["spec"]["activeDeadlineSeconds"] == seconds


def test_no_timeout_no_deadline_and_no_ttl() -> None:
    spec = execution_job.build_execution_job(context({}))["spec"]
    assert "activeDeadlineSeconds" not in spec
    assert "ttlSecondsAfterFinished" not in spec
    assert "podFailurePolicy" not in spec


@pytest.mark.parametrize(("retries", "limit"), [(None, 0), (0, 0), (3, 3)])
def test_retries_are_the_backoff_limit(retries: int | None, limit: int) -> None:
    definition = {} if retries is None else {"retries": retries}
    assert execution_job.build_execution_job(context(definition))["spec"]["backoffLimit"] == limit


# --- user and group --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("definition", "uid", "gid"),
    [
        ({}, 10001, 10001),
        ({"user": 1000}, 1000, 1000),
        ({"user": "1000"}, 1000, 1000),
        ({"user": 1000, "group": 2000}, 1000, 2000),
        ({"user": "overseer"}, 10001, 10001),
        ({"group": "overseer"}, 10001, 10001),
        ({"group": 0}, 10001, 0),
        ({"image": "python:3.12"}, 10001, 10001),
        # Names from the library image's /etc/passwd and /etc/group (the original's example)
        ({"user": "nobody", "group": "nogroup"}, 65534, 65534),
        ({"user": "nobody"}, 65534, 65534),
        ({"user": "sync"}, 4, 65534),  # group unset: the user's primary group
        ({"user": "www-data", "group": "staff"}, 33, 50),
        # Another image: names from the job's imageAccounts
        (
            {"image": "app:1", "user": "app", "imageAccounts": {"users": {"app": 1000}}},
            1000,
            1000,
        ),
        (
            {
                "image": "app:1",
                "user": "app",
                "group": "web",
                "imageAccounts": {"users": {"app": 1000}, "groups": {"web": 3000}},
            },
            1000,
            3000,
        ),
    ],
)
def test_user_and_group_become_numeric_ids(definition: dict[str, Any], uid: int, gid: int) -> None:
    context_ = pod_spec(execution_job.build_execution_job(context(definition)))["securityContext"]
    assert (context_["runAsUser"], context_["runAsGroup"]) == (uid, gid)
    assert context_["runAsNonRoot"] is True


@pytest.mark.parametrize(
    ("definition", "field", "words"),
    [
        ({"user": "app"}, "user", "imageAccounts.users"),
        ({"group": "wheel"}, "group", "imageAccounts.groups"),
        ({"image": "python:3.12", "user": "nobody"}, "user", "the image python:3.12"),
        ({"user": 0}, "user", "root"),
        ({"user": "0"}, "user", "root"),
        ({"user": "root"}, "user", "uid 0"),
        (
            {"image": "x:1", "user": "admin", "imageAccounts": {"users": {"admin": 0}}},
            "user",
            "root",
        ),
        ({"env": {"OVERSEER_JOB": "x"}}, "env.OVERSEER_JOB", "Overseer's own"),
        ({"env": {"overseer_token": "x"}}, "env.overseer_token", "Overseer's own"),
        ({"env": {"A": "x\x00y"}}, "env.A", "NUL"),
        ({"parameters": {"day": {}, "DAY": {}}}, "parameters.day", "OVERSEER_PARAM_DAY"),
    ],
)
def test_what_no_pod_can_run_is_refused_naming_the_field(
    definition: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(errors.DefinitionNotRunnableError) as caught:
        execution_job.build_execution_job(context(definition))
    error = caught.value
    assert isinstance(error, errors.InvalidDefinitionError) and error.stalled
    assert error.field == field
    assert words in error.message and field in error.message
    assert execution_job.check_runnable(context(definition).spec.definition)[0][0] == field


# --- what the job runs -----------------------------------------------------------------


def test_cmdspec_gives_the_exact_argv() -> None:
    ctx = context(
        {"cmdspec": "example_command positional_var --some-opt some_opt"},
        {"positional_var": "a b", "some_opt": "$(rm -rf /)"},
    )
    assert argv(ctx) == ["example_command", "a b", "--some-opt", "$(rm -rf /)"]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_arrive_exactly(value: str) -> None:
    definition = {
        "cmdspec": "prog --opt=o -- p",
        "parameters": {"o": {}, "p": {}},
        # Defined, so that an unescaped $(HOME) or $(id) would be replaced.
        "env": {"HOME": "/root", "id": "uid=0(root)"},
    }
    settings, env = run(context(definition, {"o": value, "p": value}))
    assert list(settings.command) == ["prog", f"--opt={value}", "--", value]
    assert env["OVERSEER_PARAM_P"] == value
    assert json.loads(open_params(context(definition, {"o": value, "p": value}))) == {
        "o": value,
        "p": value,
    }


def open_params(ctx: execution_job.ExecutionContext) -> str:
    secret = execution_job.build_parameters_secret(ctx)
    assert secret is not None
    return base64.b64decode(secret["data"]["params.json"]).decode("utf-8")


def test_a_value_like_an_option_is_refused_as_a_positional_unless_after_end_of_options() -> None:
    with pytest.raises(errors.ParameterError, match="target"):
        execution_job.build_execution_job(context({"cmdspec": "rm target"}, {"target": "--flag"}))
    assert argv(context({"cmdspec": "rm -- target"}, {"target": "--flag"})) == [
        "rm",
        "--",
        "--flag",
    ]


@pytest.mark.parametrize(
    ("parameters", "words"),
    [
        ({"src": "a", "nope": "b"}, "no such parameter"),
        ({}, "required"),
        ({"src": "a", "level": "weird"}, "not allowed"),
        ({"src": "a\x00b"}, "NUL"),
    ],
)
def test_unacceptable_parameters_raise_parameter_error(
    parameters: dict[str, str], words: str
) -> None:
    definition = {
        "cmdspec": "sync src",
        "parameters": {"src": {"required": True}, "level": {"allowed": ["full"]}},
    }
    for build in (execution_job.build_execution_job, execution_job.build_parameters_secret):
        with pytest.raises(errors.ParameterError, match=words):
            build(context(definition, parameters))


def test_command_list_is_the_exact_argv() -> None:
    command = ["printf", "%s\\n", "$(id)", "$HOME", "a b"]
    assert argv(context({"command": command})) == command


def test_command_text_runs_in_a_shell_with_parameters_only_in_the_environment() -> None:
    ctx = context(
        {"command": 'echo "$(id) $P" | tee $$', "parameters": {"p": {}}}, {"p": "$(whoami)"}
    )
    settings, env = run(ctx)
    assert list(settings.command) == ["/bin/sh", "-c", 'echo "$(id) $P" | tee $$']
    assert env["OVERSEER_PARAM_P"] == "$(whoami)"


def test_script_runs_from_an_environment_variable_with_sorted_parameters_as_arguments() -> None:
    script = '#!/bin/sh\necho "$1" "$(date)" $$\n'
    definition = {"script": script, "parameters": {"zeta": {}, "alpha": {}, "mid": {}}}
    settings, env = run(context(definition, {"zeta": "$(z)", "alpha": "a b"}))
    assert settings.script_env == "OVERSEER_SCRIPT"
    assert env["OVERSEER_SCRIPT"] == script
    assert list(settings.command) == ["a b", "", "$(z)"], "alpha, mid (no value), zeta"


def test_a_job_without_command_does_nothing_but_still_gets_its_parameters() -> None:
    settings, env = run(context({"parameters": {"p": {"default": "d"}}}))
    assert list(settings.command) == ["/bin/true"]
    assert env["OVERSEER_PARAM_P"] == "d"


def test_environment_holds_definition_env_escaped_and_overseer_variables() -> None:
    definition = {
        "name": "Costs $(HOME) $$",
        "env": {"GREETING": "$(HOME) and $$ and $", "B": "2"},
        "parameters": {"some_opt": {}, "Other": {"default": "o"}},
    }
    _, env = run(context(definition, {"some_opt": "$(OVERSEER_JOB)"}))
    assert env["GREETING"] == "$(HOME) and $$ and $"
    assert env["B"] == "2"
    assert env["OVERSEER_JOB"] == "Costs $(HOME) $$"
    assert env["OVERSEER_EXECUTION"] == EXECUTION_ID
    assert env["OVERSEER_PARAM_SOME_OPT"] == "$(OVERSEER_JOB)"
    assert env["OVERSEER_PARAM_OTHER"] == "o"
    assert env["OVERSEER_PARAMS_FILE"] == "/overseer/params/params.json"
    assert "OVERSEER_SCRIPT" not in env
    names_ = [
        v["name"] for v in container(execution_job.build_execution_job(context(definition)))["env"]
    ]
    assert len(names_) == len(set(names_)), "no variable is defined twice"


def test_parameter_variables_follow_the_param_command() -> None:
    assert execution_job.param_env_name("some_opt") == "OVERSEER_PARAM_SOME_OPT"
    assert execution_job.param_env_name("Day2") == "OVERSEER_PARAM_DAY2"


def test_no_parameters_no_secret_no_params_file() -> None:
    ctx = context({"command": "true"})
    assert execution_job.build_parameters_secret(ctx) is None
    job = execution_job.build_execution_job(ctx)
    assert "params" not in {v["name"] for v in pod_spec(job)["volumes"]}
    assert "OVERSEER_PARAMS_FILE" not in {v["name"] for v in container(job)["env"]}


# --- secret parameters -----------------------------------------------------------------

SECRET = "s3cr$t-$(HOME)-token"


def secret_definition(runs: dict[str, Any]) -> dict[str, Any]:
    return {**runs, "parameters": {"token": {"secret": True}, "target": {}}}


@pytest.mark.parametrize(
    ("runs", "expected"),
    [
        ({"cmdspec": "deploy --token token target"}, ["deploy", "--token", SECRET, "t"]),
        ({"cmdspec": "deploy --token=token target"}, ["deploy", f"--token={SECRET}", "t"]),
        ({"cmdspec": "deploy target -- token"}, ["deploy", "t", "--", SECRET]),
        ({"script": "echo"}, ["t", SECRET]),
        ({"command": ["env"]}, ["env"]),
        ({"command": "env"}, ["/bin/sh", "-c", "env"]),
        ({}, ["/bin/true"]),
    ],
)
def test_a_secret_never_appears_in_the_job_yet_reaches_the_job(
    runs: dict[str, Any], expected: list[str]
) -> None:
    ctx = context(secret_definition(runs), {"token": SECRET, "target": "t"})
    job = execution_job.build_execution_job(ctx)
    text = json.dumps(job, ensure_ascii=False)
    for form in (SECRET, execution_job.escape(SECRET), "s3cr", json.dumps(SECRET)[1:-1]):
        assert form not in text
    settings, env = run(ctx)
    assert [*settings.command] == expected
    assert env["OVERSEER_PARAM_TOKEN"] == SECRET
    variables = {v["name"]: v for v in container(job)["env"]}
    assert variables["OVERSEER_PARAM_TOKEN"] == {
        "name": "OVERSEER_PARAM_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": f"{NAME}-params", "key": "param.token"}},
    }
    assert variables["OVERSEER_PARAM_TARGET"]["value"] == "t"


def test_the_secret_holds_every_parameter_and_each_secret_one() -> None:
    ctx = context(secret_definition({"cmdspec": "x target"}), {"token": SECRET, "target": "t"})
    secret = execution_job.build_parameters_secret(ctx)
    assert secret is not None
    assert (secret["apiVersion"], secret["kind"], secret["type"]) == ("v1", "Secret", "Opaque")
    assert secret["immutable"] is True
    assert secret["metadata"]["name"] == f"{NAME}-params"
    assert secret["metadata"]["ownerReferences"][0]["uid"] == "5f6c-uid"
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert data == {
        "params.json": json.dumps({"target": "t", "token": SECRET}, ensure_ascii=False),
        "param.token": SECRET,
    }
    volumes = {v["name"]: v for v in pod_spec(execution_job.build_execution_job(ctx))["volumes"]}
    assert volumes["params"]["secret"] == {
        "secretName": f"{NAME}-params",
        "items": [{"key": "params.json", "path": "params.json"}],
        "defaultMode": 0o444,
    }


def test_a_secret_next_to_the_marker_character_is_still_placed_right() -> None:
    definition = {"cmdspec": "x --a=token p", "parameters": {"token": {"secret": True}, "p": {}}}
    ctx = context(definition, {"token": "\ue000\ue000", "p": "\ue000x\ue000"})
    assert argv(ctx) == ["x", "--a=\ue000\ue000", "\ue000x\ue000"]


def test_a_secret_with_a_default_and_allowed_values_is_still_checked() -> None:
    definition = {
        "cmdspec": "x level",
        "parameters": {"level": {"secret": True, "allowed": ["a", "b"], "default": "a"}},
    }
    assert argv(context(definition)) == ["x", "a"]
    with pytest.raises(errors.ParameterError, match="not allowed"):
        execution_job.build_execution_job(context(definition, {"level": "c"}))
    with pytest.raises(errors.ParameterError, match="starts with '-'"):
        definition["parameters"]["level"] = {"secret": True}  # type: ignore[index]
        execution_job.build_execution_job(context(definition, {"level": "-rf"}))


def test_a_context_from_an_execution_without_bin() -> None:
    ctx = context({"command": ["true"]})
    body = {
        "metadata": {"namespace": "team-a", "name": NAME, "uid": "5f6c-uid"},
        "spec": ctx.spec.model_dump(mode="json"),
    }
    read = execution_job.ExecutionContext.from_body(body)
    assert (read.bundle_name, read.bundle_items) == (None, ())
    assert read.spec == ctx.spec


@pytest.mark.parametrize(("kill_after", "seconds", "grace"), [(None, "30", 40), ("3s", "3", 13)])
def test_kill_after_reaches_the_supervisor_and_bounds_the_grace_period(
    kill_after: str | None, seconds: str, grace: int
) -> None:
    definition = {} if kill_after is None else {"killAfter": kill_after}
    job = execution_job.build_execution_job(context(definition))
    env = {e["name"]: e.get("value") for e in container(job)["env"]}
    assert env["OVERSEER_KILL_AFTER"] == seconds
    # Kubernetes' own SIGKILL (pod deletion, a time-out) waits past the supervisor's
    assert pod_spec(job)["terminationGracePeriodSeconds"] == grace
