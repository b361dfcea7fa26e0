"""User and group names run as the image's ids; root is refused at sync.

Real git repository, the real operator process, the real cluster, the library image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from overseer.core import accounts
from overseer_library import protocol
from tests.support.cluster import Kube
from tests.support.gitserver import Upstream
from tests.support.operator import OperatorProcess
from tests.support.overseer import eventually, execution, jobs, repository, wait_for_jobs

pytestmark = pytest.mark.cluster

# The original's example, as its README gives it, with the job printing who it runs as.
JOBS = """\
- name: A job # the job endpoint would be /job/A%20job (so maybe avoid non ascii symbols)
  description: # an optional description
  cmdspec: my_command positional_var --some-opt some_opt
  env:
    SOME_ENV_VAR: SOME_VALUE
  user: nobody # an optional user to execute as
  group: nogroup # an optiona group to as
- name: Accounts
  command: [sh, -c, "cat /etc/passwd; echo ---; cat /etc/group"]
"""
MY_COMMAND = (
    '#!/bin/sh\nprintf "%s|" "$@"; echo\necho "$SOME_ENV_VAR"\necho "$(id -u) $(id -g)"\n',
    0o755,
)
ROOT = "- name: As root\n  command: id\n  user: root\n"
ENDED = {"Complete", "Failed", "TimedOut", "Killed"}


def run(kube: Kube, job: dict[str, Any], parameters: dict[str, str] | None = None) -> bytes:
    """Execute JOB, wait for Complete, return its stdout."""
    manifest = execution(job, parameters=parameters)
    kube.create(manifest)
    name = manifest["metadata"]["name"]
    status: dict[str, Any] = eventually(
        lambda: (
            (s := kube.get("overseerexecution", name).get("status") or {}).get("phase") in ENDED
            and s
        ),
        timeout=120,
        what=f"{name} to end",
    )
    assert status["phase"] == "Complete", status
    log = kube.logs(status["podName"]).encode()
    return b"".join(
        r.data
        for r in protocol.decode_all([log])
        if isinstance(r, protocol.Output) and r.stream == "stdout"
    )


@pytest.fixture
def synced(kube: Kube, operator: OperatorProcess, tmp_path: Path) -> dict[str, dict[str, Any]]:
    upstream = Upstream.create(tmp_path / "git" / "jobs.git")
    upstream.commit({"jobs.yml": JOBS, "bin/my_command": MY_COMMAND}, "the original's example")
    kube.apply(repository("jobs", upstream.file_url))
    return wait_for_jobs(kube, {"A job", "Accounts"})


def test_the_original_example_runs_as_nobody_and_nogroup(
    kube: Kube, synced: dict[str, dict[str, Any]]
) -> None:
    # Given the original's example job (user: nobody, group: nogroup), synced as written
    # When it runs, in a namespace that enforces the restricted Pod Security Standard
    kube.cluster.run(
        "label", "namespace", kube.namespace, "pod-security.kubernetes.io/enforce=restricted"
    )
    out = run(kube, synced["A job"], {"positional_var": "a b", "some_opt": "$(rm -rf /)"})
    # Then it completes, with its arguments and environment, as nobody's and nogroup's ids
    assert out == b"a b|--some-opt|$(rm -rf /)|\nSOME_VALUE\n65534 65534\n"


def test_overseers_table_is_the_library_images_passwd_and_group(
    kube: Kube, synced: dict[str, dict[str, Any]]
) -> None:
    # When a job prints the library image's /etc/passwd and /etc/group
    passwd, group = run(kube, synced["Accounts"]).decode().split("---\n")
    # Then they hold exactly the users and groups the operator resolves names with
    users = {
        f[0]: (int(f[2]), int(f[3])) for f in (line.split(":") for line in passwd.splitlines())
    }
    groups = {f[0]: int(f[2]) for f in (line.split(":") for line in group.splitlines())}
    assert users == dict(accounts.LIBRARY_USERS)
    assert groups == dict(accounts.LIBRARY_GROUPS)


def test_root_is_refused_at_sync_naming_the_field(
    kube: Kube, operator: OperatorProcess, tmp_path: Path
) -> None:
    # Given a job file whose job asks to run as root
    upstream = Upstream.create(tmp_path / "git" / "jobs.git")
    upstream.commit({"root.yml": ROOT}, "as root")
    # When its repository syncs
    kube.apply(repository("jobs", upstream.file_url))
    # Then the file fails with an error naming the user field, and no job is made
    errors = eventually(
        lambda: (kube.get("overseerrepository", "jobs").get("status") or {}).get("errors"),
        what="the sync error",
    )
    assert [(e["file"], e["job"], e["field"]) for e in errors] == [("root.yml", "As root", "user")]
    assert "root" in errors[0]["message"] and "restricted" in errors[0]["message"]
    assert jobs(kube) == {}
