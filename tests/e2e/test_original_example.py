"""The original Overseer's example job file, unchanged, runs to Complete.

The file is the one the original's README gives (a job named with a space, a cmdspec,
an environment variable, ``user: nobody`` and ``group: nogroup``), committed as it is,
comments and blank description included, next to a ``bin/my_command`` that prints
what it received.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_executions import ENDED, execute, listed, stdout_of, wait_for_phase
from tests.support.cluster import Kube
from tests.support.gitserver import Upstream
from tests.support.operator import OperatorProcess
from tests.support.overseer import repository, wait_for_jobs

pytestmark = pytest.mark.cluster

ORIGINAL_EXAMPLE = """\
---
- name: A job # the job endpoint would be /job/A%20job (so maybe avoid non ascii symbols)
  description: # an optional description
  cmdspec: my_command positional_var --some-opt some_opt
  env:
    SOME_ENV_VAR: SOME_VALUE
  user: nobody # an optional user to execute as
  group: nogroup # an optiona group to as
"""
MY_COMMAND = (
    "#!/bin/sh\n"
    'printf "%s|" "$@"; echo\n'
    'echo "SOME_ENV_VAR=$SOME_ENV_VAR"\n'
    'echo "uid=$(id -u) gid=$(id -g)"\n',
    0o755,
)


@pytest.fixture
def synced(kube: Kube, operator: OperatorProcess, tmp_path: Path) -> dict[str, Any]:
    upstream = Upstream.create(tmp_path / "git" / "jobs.git")
    upstream.commit(
        {"example_job.yml": ORIGINAL_EXAMPLE, "bin/my_command": MY_COMMAND},
        "the original's example, as its README gives it",
    )
    kube.apply(repository("jobs", upstream.file_url))
    job: dict[str, Any] = wait_for_jobs(kube, {"A job"})["A job"]
    return job


def test_the_original_example_job_runs_unchanged_to_complete(
    kube: Kube, synced: dict[str, Any]
) -> None:
    # Given the original's example job, synced as written
    assert synced["spec"]["definition"]["cmdspec"] == (
        "my_command positional_var --some-opt some_opt"
    )
    # When it is executed with its two parameters
    name, _ = execute(kube, synced, {"positional_var": "a b", "some_opt": "$(rm -rf /)"})
    # Then it completes, having run my_command with exactly those arguments, its
    # environment, as nobody:nogroup
    status = wait_for_phase(kube, name, ENDED)
    assert (status["phase"], status.get("exitCode")) == ("Complete", 0), status
    [pod] = listed(kube, "pods", name)
    assert stdout_of(kube, pod["metadata"]["name"]) == (
        b"a b|--some-opt|$(rm -rf /)|\nSOME_ENV_VAR=SOME_VALUE\nuid=65534 gid=65534\n"
    )
