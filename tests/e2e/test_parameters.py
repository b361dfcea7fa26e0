"""Hostile parameter values reach the job's process exactly as sent, in every way a job takes them.

Real git repository, the real operator, real pods: a repository script prints the argv and
the ``OVERSEER_PARAM_*`` variables it received as JSON, and the test compares them with
what the execution asked for. No shell sees a value, Kubernetes' own ``$(VAR)``
expansion does not touch one, and a ``-``-leading value stays a positional.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.test_executions import ENDED, execute, listed, stdout_of, wait_for_phase
from tests.support.cluster import Kube
from tests.support.gitserver import Upstream
from tests.support.operator import OperatorProcess
from tests.support.overseer import eventually, repository, wait_for_jobs

pytestmark = pytest.mark.cluster

# 100 KiB of text with quotes, backslashes, shell and Kubernetes syntax and non-ASCII.
BIG = ("line 'q' \"dq\" `bt` \\ $(HOME) $$ ${X} * ; | & é ✓\n" * 4000)[: 100 * 1024]
VALUES = {
    "space": "a b",
    "semi": ";id",
    "subst": "$(id)",
    "home": "$(HOME)",
    "flag": "--flag",
    "newline": "one\ntwo",
    "big": BIG,
}
SECRET = "$(HOME) ;id $$ 's3cr3t'"
ARGV = (
    "#!/usr/bin/python3\n"
    "import json, os, sys\n"
    'env = {k: v for k, v in os.environ.items() if k.startswith("OVERSEER_PARAM_")}\n'
    'sys.stdout.write(json.dumps({"argv": sys.argv[1:], "env": env}))\n',
    0o755,
)
DECLARED = {name: {"required": True} for name in VALUES}
JOBS = yaml.safe_dump(
    [
        {
            "name": "Cmdspec",
            "cmdspec": "argv --big big space semi subst home newline -- flag",
            "parameters": DECLARED,
        },
        {"name": "Script", "script": 'exec argv "$@"\n', "parameters": DECLARED},
        {
            "name": "Shell text",
            "command": 'argv "$OVERSEER_PARAM_SEMI" "$OVERSEER_PARAM_SUBST" "$OVERSEER_PARAM_FLAG"',
            "parameters": DECLARED,
        },
        {
            "name": "Secret",
            "cmdspec": "argv token",
            "parameters": {"token": {"required": True, "secret": True}},
        },
    ],
    allow_unicode=True,
)
ENV = {f"OVERSEER_PARAM_{name.upper()}": value for name, value in VALUES.items()}


@pytest.fixture
def synced(kube: Kube, operator: OperatorProcess, tmp_path: Path) -> dict[str, dict[str, Any]]:
    upstream = Upstream.create(tmp_path / "git" / "jobs.git")
    upstream.commit({"jobs.yml": JOBS, "bin/argv": ARGV}, "jobs that print what they got")
    kube.apply(repository("jobs", upstream.file_url))
    return wait_for_jobs(kube, {"Cmdspec", "Script", "Shell text", "Secret"})


def received(kube: Kube, job: dict[str, Any], parameters: dict[str, str]) -> dict[str, Any]:
    """Run JOB with PARAMETERS to completion; return the argv and variables it printed.

    Also under ``"execution"``: the execution's resource name.
    """
    name, _ = execute(kube, job, parameters)
    status = wait_for_phase(kube, name, ENDED)
    assert status["phase"] == "Complete", status
    [pod] = listed(kube, "pods", name)
    got: dict[str, Any] = json.loads(stdout_of(kube, pod["metadata"]["name"]))
    got["execution"] = name
    return got


def test_cmdspec_values_arrive_as_exact_arguments_and_variables(
    kube: Kube, synced: dict[str, dict[str, Any]]
) -> None:
    got = received(kube, synced["Cmdspec"], VALUES)
    v = VALUES
    assert got["argv"] == [
        "--big", v["big"], v["space"], v["semi"], v["subst"], v["home"], v["newline"],
        "--", v["flag"],
    ]  # fmt: skip
    assert got["env"] == ENV


def test_script_arguments_are_the_values_in_name_order(
    kube: Kube, synced: dict[str, dict[str, Any]]
) -> None:
    got = received(kube, synced["Script"], VALUES)
    assert got["argv"] == [VALUES[name] for name in sorted(VALUES)]
    assert got["env"] == ENV


def test_shell_text_reads_values_from_variables_without_evaluating_them(
    kube: Kube, synced: dict[str, dict[str, Any]]
) -> None:
    got = received(kube, synced["Shell text"], VALUES)
    assert got["argv"] == [VALUES["semi"], VALUES["subst"], VALUES["flag"]]


def test_a_secret_value_arrives_exactly_and_is_not_in_the_job(
    kube: Kube, synced: dict[str, dict[str, Any]]
) -> None:
    got = received(kube, synced["Secret"], {"token": SECRET})
    assert got["argv"] == [SECRET]
    assert got["env"] == {"OVERSEER_PARAM_TOKEN": SECRET}
    # And the Job, which anyone who may read Jobs can see, does not hold it
    [job] = listed(kube, "jobs", got["execution"])
    assert SECRET not in json.dumps(job)
    assert "'s3cr3t'" not in json.dumps(job)


def test_a_parameter_too_long_for_the_kernel_is_refused_naming_it_before_any_container(
    kube: Kube, synced: dict[str, dict[str, Any]]
) -> None:
    # When a value is longer than Linux takes as one argument or variable (E2BIG)
    name, _ = execute(kube, synced["Cmdspec"], {**VALUES, "big": "x" * 300_000})
    # Then the execution fails at once, naming the parameter and the limit
    status = wait_for_phase(kube, name, ENDED, timeout=60)
    assert (status["phase"], status["reason"]) == ("Failed", "InvalidParameters"), status
    assert "big: is 300000 bytes" in status["message"]
    assert "MAX_ARG_STRLEN" in status["message"]
    # And no container was ever tried
    assert listed(kube, "jobs", name) == []
    assert listed(kube, "pods", name) == []


def test_a_refused_secret_value_is_quoted_in_no_status_nor_event(
    kube: Kube, synced: dict[str, dict[str, Any]]
) -> None:
    # When a secret value is refused (it starts with '-', and the cmdspec has no --)
    name, _ = execute(kube, synced["Secret"], {"token": "-hunter2-s3cr3t"})
    status = wait_for_phase(kube, name, ENDED, timeout=60)
    assert (status["phase"], status["reason"]) == ("Failed", "InvalidParameters"), status
    # Then the message names the parameter, never the value
    assert "token" in status["message"]
    assert "hunter2" not in json.dumps(status)

    def events() -> str | None:
        out = kube.kubectl(
            "get", "events", "--field-selector", f"involvedObject.name={name}", "-o", "json"
        ).stdout
        return out if "InvalidParameters" in out else None

    assert "hunter2" not in eventually(events, 60, "the Warning Event of the refusal")
