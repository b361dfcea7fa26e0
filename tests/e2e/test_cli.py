"""The ``overseer`` console script against the real API beside the real operator.

Every step runs the installed script as a user would (a subprocess, no shell), so the
console-script entry, argument parsing, exit codes and byte streams are all real.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.test_original_example import MY_COMMAND, ORIGINAL_EXAMPLE
from tests.support.api_process import TOKENS, ApiProcess
from tests.support.cluster import Kube
from tests.support.gitserver import Upstream
from tests.support.overseer import repository, wait_for_jobs

pytestmark = pytest.mark.cluster

OVERSEER = Path(sys.executable).parent / "overseer"
OTHERS = """\
- name: Sauvegarde é
  command: "printf 'out\\\\001\\\\377end'; printf 'err line\\\\n' >&2; exit 3"
- name: a/b
  command: "sleep 60"
"""
NAMES = {"A job", "Sauvegarde é", "a/b"}
NASTY = "$(id); rm -rf /"


@pytest.fixture
def synced(kube: Kube, api: ApiProcess, tmp_path: Path) -> dict[str, dict[str, Any]]:
    upstream = Upstream.create(tmp_path / "git" / "jobs.git")
    upstream.commit(
        {"example_job.yml": ORIGINAL_EXAMPLE, "more.yml": OTHERS, "bin/my_command": MY_COMMAND},
        "the original's example and two more",
    )
    kube.apply(repository("jobs", upstream.file_url))
    return wait_for_jobs(kube, NAMES)


def overseer(api: ApiProcess, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "OVERSEER_URL": api.url, "OVERSEER_TOKEN": TOKENS["boss"][0]}
    return subprocess.run(
        [str(OVERSEER), *args], env=env, capture_output=True, timeout=120, check=False
    )


def test_the_cli_lists_runs_follows_signals_and_reports_errors(
    kube: Kube, api: ApiProcess, synced: dict[str, dict[str, Any]]
) -> None:
    # Given the jobs, listed as a table and as JSON, in the default and a named namespace
    table = overseer(api, "jobs")
    assert table.returncode == 0, table.stderr
    assert [line.split("  ")[0] for line in table.stdout.decode().splitlines()] == [
        "NAME",
        "A job",
        "Sauvegarde é",
        "a/b",
    ]
    listed = json.loads(overseer(api, "-n", kube.namespace, "jobs", "-o", "json").stdout)
    assert sorted(job["name"] for job in listed) == sorted(NAMES)
    assert json.loads(overseer(api, "show", "a/b", "-o", "json").stdout)["name"] == "a/b"
    assert yaml.safe_load(overseer(api, "show", "a/b").stdout)["name"] == "a/b"

    # When the original's example runs with shell metacharacters, followed
    followed = overseer(
        api, "run", "A job", "-p", "positional_var=a b", "-p", f"some_opt={NASTY}", "--follow"
    )
    # Then they arrive verbatim, stdout is the job's exactly, and the exit code is its own
    assert followed.returncode == 0, followed.stderr
    assert followed.stdout == (
        f"a b|--some-opt|{NASTY}|\nSOME_ENV_VAR=SOME_VALUE\nuid=65534 gid=65534\n".encode()
    )

    # A job writing both streams and exiting 3: --follow keeps them apart, exits 3
    failed = overseer(api, "run", "Sauvegarde é", "--follow")
    assert failed.returncode == 3, failed.stderr
    assert failed.stdout == b"out\x01\xffend"
    first, rest = failed.stderr.split(b"\n", 1)
    assert first.startswith(b"overseer: execution ")
    assert rest == b"err line\n"
    execution_id = first.split()[-1].decode()
    stderr = overseer(api, "logs", "Sauvegarde é", execution_id, "--stderr")
    stdout = overseer(api, "logs", "Sauvegarde é", execution_id)
    assert (stdout.stdout, stderr.stdout) == (b"out\x01\xffend", b"err line\n")
    status = overseer(api, "status", "Sauvegarde é", execution_id, "-o", "json")
    assert json.loads(status.stdout)["exitCode"] == 3
    # Repeated, it runs again under a new id, with the same output and exit code
    repeated = overseer(api, "repeat", "Sauvegarde é", execution_id, "--follow")
    assert (repeated.returncode, repeated.stdout) == (3, b"out\x01\xffend"), repeated.stderr
    repeat_id = repeated.stderr.split()[2].decode()
    again = json.loads(overseer(api, "status", "Sauvegarde é", repeat_id, "-o", "json").stdout)
    assert (again["trigger"]["repeatOf"], again["exitCode"]) == (execution_id, 3)

    # A bad signal name is the API's 400, exit 1; TERM is accepted
    started = overseer(api, "run", "a/b")
    assert started.returncode == 0, started.stderr
    sleeper = started.stdout.decode().strip()
    bad = overseer(api, "signal", "a/b", sleeper, "NOPE")
    assert bad.returncode == 1
    assert bad.stderr.startswith(b"overseer: ")
    assert b"(HTTP 400)" in bad.stderr
    term = overseer(api, "signal", "a/b", sleeper)
    assert (term.returncode, term.stdout) == (0, f"SIGTERM requested for {sleeper}\n".encode())

    # A deactivated job refuses to run (409) until activated again
    assert overseer(api, "deactivate", "a/b").stdout == b"a/b: active=no\n"
    refused = overseer(api, "run", "a/b")
    assert refused.returncode == 1
    assert b"(HTTP 409)" in refused.stderr
    assert overseer(api, "activate", "a/b").stdout == b"a/b: active=yes\n"

    # An unknown job is a clear 404, exit 1; no token ever printed
    unknown = overseer(api, "show", "Nope")
    assert unknown.returncode == 1
    assert unknown.stderr.startswith(b"overseer: ")
    assert b"Nope" in unknown.stderr
    assert unknown.stderr.endswith(b"(HTTP 404)\n")
    unserved = overseer(api, "-n", "no-such-namespace", "jobs")
    assert (unserved.returncode, unserved.stdout) == (1, b"")
    assert unserved.stderr.endswith(b"(HTTP 404)\n")
    for result in (table, followed, failed, bad, refused, unknown):
        assert TOKENS["boss"][0].encode() not in result.stdout + result.stderr


QUICK = """\
- name: Quick
  command: "exit 0"
"""
LATER = """\
- name: Later
  command: "exit 0"
"""


def test_the_cli_lists_executions_and_waits_for_a_requested_sync(
    kube: Kube, api: ApiProcess, tmp_path: Path
) -> None:
    # Given a repository polled only hourly: a new commit arrives by a requested sync alone
    upstream = Upstream.create(tmp_path / "git" / "jobs.git")
    first = upstream.commit({"quick.yml": QUICK}, "one job")
    kube.apply(repository("jobs", upstream.file_url, interval="1h"))
    wait_for_jobs(kube, {"Quick"})

    # When the job runs twice, the executions list shows both, newest first, every field
    done = overseer(api, "run", "Quick", "--wait")
    assert done.returncode == 0, done.stderr
    ended = done.stdout.decode().strip()
    started = overseer(api, "run", "Quick").stdout.decode().strip()
    listed = json.loads(overseer(api, "executions", "--job", "Quick", "-o", "json").stdout)
    assert [item["id"] for item in listed] == [started, ended]
    table = overseer(api, "-n", kube.namespace, "executions", "--limit", "1").stdout.decode()
    header, row = table.splitlines()
    assert header.split() == ["JOB", "ID", "PHASE", "TRIGGER", "START", "DURATION"]
    assert row.split()[:2] == ["Quick", started]
    complete = overseer(api, "executions", "--phase", "Complete", "-o", "yaml").stdout
    finished = {item["id"]: item for item in yaml.safe_load(complete)}
    assert finished[ended]["trigger"]["type"] == "api"
    assert finished[ended]["completionTime"]

    # When a commit adds a job and a sync of it is asked for with --wait and its commit
    second = upstream.commit({"later.yml": LATER}, "a second job")
    synced = overseer(api, "sync", "jobs", "--wait", "--revision", second, "--timeout", "60")
    # Then it returns once every job shows that commit, both jobs there
    assert synced.returncode == 0, synced.stderr
    assert synced.stdout.decode().splitlines()[1:] == [f"jobs: synced at {second[:12]} (2 jobs)"]
    jobs = json.loads(overseer(api, "jobs", "-o", "json").stdout)
    assert {job["name"]: job["source"]["commit"] for job in jobs} == {
        "Quick": second,
        "Later": second,
    }
    # And without --revision, it waits for a commit no job showed before the request
    third = upstream.commit({"later.yml": LATER.replace("exit 0", "exit 1")}, "a third")
    again = overseer(api, "sync", "--wait", "--timeout", "60")
    assert again.returncode == 0, again.stderr
    assert again.stdout.decode().splitlines()[1:] == [f"jobs: synced at {third[:12]} (2 jobs)"]
    assert first not in (second, third)
