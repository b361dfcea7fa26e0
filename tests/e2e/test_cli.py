"""The ``overseer`` console script against the real API beside the real operator.

Every step runs the installed script as a user would (a subprocess, no shell), so the
console-script entry, argument parsing, exit codes and byte streams are all real.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

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
LATER = """\
- name: Later
  command: "exit 0"
"""


@pytest.fixture
def upstream(kube: Kube, api: ApiProcess, tmp_path: Path) -> Upstream:
    """The jobs' repository, synced; polled hourly, so a later commit arrives by a
    requested sync alone."""
    upstream = Upstream.create(tmp_path / "git" / "jobs.git")
    upstream.commit(
        {"example_job.yml": ORIGINAL_EXAMPLE, "more.yml": OTHERS, "bin/my_command": MY_COMMAND},
        "the original's example and two more",
    )
    kube.apply(repository("jobs", upstream.file_url, interval="1h"))
    wait_for_jobs(kube, NAMES)
    return upstream


def overseer(api: ApiProcess, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "OVERSEER_URL": api.url, "OVERSEER_TOKEN": TOKENS["boss"][0]}
    return subprocess.run(
        [str(OVERSEER), *args], env=env, capture_output=True, timeout=120, check=False
    )


def test_the_cli_lists_runs_follows_signals_and_reports_errors(
    kube: Kube, api: ApiProcess, upstream: Upstream
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
    then_executions_list_and_a_sync_is_awaited(api, kube, upstream, [repeat_id, execution_id])


def then_executions_list_and_a_sync_is_awaited(
    api: ApiProcess, kube: Kube, upstream: Upstream, failed_ids: list[str]
) -> None:
    # The executions of one job, newest first, as JSON and YAML, with the API's fields
    listed = json.loads(overseer(api, "executions", "--job", "Sauvegarde é", "-o", "json").stdout)
    assert [(item["id"], item["phase"], item["exitCode"]) for item in listed] == [
        (i, "Failed", 3) for i in failed_ids
    ]
    as_yaml = overseer(
        api, "executions", "--phase", "Failed", "--job", "Sauvegarde é", "-o", "yaml"
    )
    assert yaml.safe_load(as_yaml.stdout) == listed
    # Of every job, as a table: the newest one is the sleeper, signalled last
    table = overseer(api, "-n", kube.namespace, "executions").stdout.decode().splitlines()
    assert table[0].split() == ["JOB", "ID", "PHASE", "EXIT", "TRIGGER", "START", "DURATION"]
    cells = [re.split(r"\s{2,}", line) for line in table[1:]]  # a name may hold a space
    exits = {cell[1]: cell[3] for cell in cells}
    assert [exits[i] for i in failed_ids] == ["3", "3"]
    assert len(table) == 1 + 4
    assert [line.split()[0] for line in table[1:]].count("a/b") == 1
    assert table[1].split()[0] == "a/b"
    newest = overseer(api, "executions", "--limit", "1").stdout.decode().splitlines()
    assert len(newest) == 2
    assert newest[1].split()[:2] == table[1].split()[:2]

    # When a commit adds a job and its sync is asked for, --wait returns once it shows
    first = upstream.head
    second = upstream.commit({"later.yml": LATER}, "a fourth job")
    synced = overseer(api, "sync", "jobs", "--wait", "--revision", second, "--timeout", "30")
    assert synced.returncode == 0, synced.stderr
    assert synced.stdout.decode().splitlines()[1:] == [f"jobs: synced {second[:12]} (4 jobs)"]
    # The jobs the commit did not change keep the commit they were written at
    assert listed_after_sync(api) == {
        "A job": first,
        "Sauvegarde é": first,
        "a/b": first,
        "Later": second,
    }
    # And without --revision, a commit that changes only bin/ (no job shows it: before
    # GET /repositories, --wait saw nothing and gave up at its timeout)
    third = upstream.commit({"bin/only-a-tool": "#!/bin/sh\necho tool\n"}, "only bin/")
    again = overseer(api, "sync", "--wait", "--timeout", "30")
    assert again.returncode == 0, again.stderr
    assert again.stdout.decode().splitlines()[1:] == [f"jobs: synced {third[:12]} (4 jobs)"]
    assert listed_after_sync(api)["Later"] == second
    # The repositories, as a table: the commit synced, Ready
    table = overseer(api, "repositories").stdout.decode().splitlines()
    assert table[0].split() == ["NAME", "URL", "REF", "COMMIT", "JOBS", "READY", "REASON", "SYNCED"]
    assert table[1].split()[3:7] == [third[:12], "4", "True", "Synced"]


def listed_after_sync(api: ApiProcess) -> dict[str, str]:
    """Each job's commit, as ``overseer jobs -o json`` shows it."""
    jobs = json.loads(overseer(api, "jobs", "-o", "json").stdout)
    return {job["name"]: job["source"]["commit"] for job in jobs}
