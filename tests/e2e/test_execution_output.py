"""An execution's stdout and stderr are archived byte for byte; its custom events reach its status.

Real git repository, the real operator process (archiving into a directory of the test),
the real cluster: the job calls a script of the repository's ``bin/``, writes binary data
to both streams and calls the library's ``event``; the test reads the archive files and
the execution's status.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.test_executions import ENDED, execute, listed, statuses, wait_for_phase
from tests.support.cluster import Kube
from tests.support.gitserver import Upstream
from tests.support.operator import run_operator
from tests.support.overseer import eventually, repository, wait_for_jobs

pytestmark = pytest.mark.cluster

# NUL, invalid UTF-8, more than one 8 KiB frame, and no final newline.
STDOUT = b"first line\n\x00\xff\xfe\xc3\x28 not utf-8\n" + bytes(range(256)) * 40 + b"no newline"
STDERR = b"err \x00\x80\x81\xff" * 3
PART_TWO = b"\nafter the pause \xff\x00"

# A script of the repository's bin/, found on PATH, writing a line to each stream.
SAY = ('#!/bin/sh\necho "say: $*"\necho "say on stderr" >&2\n', 0o755)
SAID_OUT = b"say: hello there\n"
SAID_ERR = b"say on stderr\n"
BOTH_STREAMS = f"""\
import subprocess, sys
subprocess.run(["say", "hello", "there"], check=True)
sys.stdout.buffer.write({STDOUT!r}); sys.stdout.buffer.flush()
sys.stderr.buffer.write({STDERR!r}); sys.stderr.buffer.flush()
subprocess.run(["event", "deploying", '{{"pct": 40}}'], check=True)
"""
WITH_A_PAUSE = f"""\
import subprocess, sys, time
sys.stdout.buffer.write({STDOUT!r}); sys.stdout.buffer.flush()
subprocess.run(["event", "deploying", '{{"pct": 40}}'], check=True)
time.sleep(8)
sys.stdout.buffer.write({PART_TWO!r}); sys.stdout.buffer.flush()
sys.stderr.buffer.write({STDERR!r}); sys.stderr.buffer.flush()
"""
JOBS = yaml.safe_dump(
    [
        {"name": "Both streams", "command": ["python3", "-c", BOTH_STREAMS]},
        {"name": "With a pause", "command": ["python3", "-c", WITH_A_PAUSE]},
    ]
)
NAMES = {"Both streams", "With a pause"}


@pytest.fixture
def upstream(tmp_path: Path) -> Upstream:
    repo = Upstream.create(tmp_path / "git" / "jobs.git")
    repo.commit({"jobs.yml": JOBS, "bin/say": SAY}, "jobs that write to both streams")
    return repo


class Archive:
    """The operator's archive directory, as the test reads it."""

    def __init__(self, root: Path, namespace: str) -> None:
        self.root = root
        self.namespace = namespace

    def read(self, name: str, stream: str) -> bytes | None:
        path = self.root / self.namespace / name / stream
        return path.read_bytes() if path.exists() else None

    def state(self, name: str) -> dict[str, Any]:
        path = self.root / self.namespace / name / "state.json"
        state: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
        return state

    def wait_complete(self, name: str) -> dict[str, Any]:
        state: dict[str, Any] = eventually(
            lambda: (s := self.state(name)).get("complete") and s,
            timeout=60,
            what=f"the archive of {name} to be complete",
        )
        return state


@pytest.fixture
def archive(tmp_path: Path, kube: Kube) -> Archive:
    return Archive(tmp_path / "archive", kube.namespace)


@pytest.fixture
def operator_env(archive: Archive) -> dict[str, str]:
    return {"OVERSEER_ARCHIVE_DIR": str(archive.root)}


@pytest.fixture
def synced_operator(
    kube: Kube,
    overseer_crds: None,
    tmp_path: Path,
    upstream: Upstream,
    operator_env: dict[str, str],
) -> Iterator[dict[str, dict[str, Any]]]:
    """Given the operator archiving into the test's directory, and the jobs synced."""
    workdir = tmp_path / "operator"
    workdir.mkdir()
    with run_operator(kube.cluster, kube.namespace, workdir, extra_env=operator_env) as operator:
        kube.apply(repository("jobs", upstream.file_url))
        yield wait_for_jobs(kube, NAMES)
        operator.check_alive()
        kube.kubectl("delete", "overseerrepositories", "--all", "--timeout=60s", check=False)


def test_output_is_archived_byte_exact_per_stream_and_events_reach_the_status(
    kube: Kube, archive: Archive, synced_operator: dict[str, dict[str, Any]]
) -> None:
    # When a job runs a bin/ script, writes binary data to stdout and stderr, sends an event
    name, _ = execute(kube, synced_operator["Both streams"])
    status = wait_for_phase(kube, name, ENDED)
    assert status["phase"] == "Complete", status
    archive.wait_complete(name)
    # Then the archive holds each stream byte for byte, apart, the bin/ script's lines first
    assert archive.read(name, "stdout") == SAID_OUT + STDOUT
    assert archive.read(name, "stderr") == SAID_ERR + STDERR
    # And the status events are start, the custom event with its data, then complete
    status = eventually(
        lambda: (
            s
            if len((s := wait_for_phase(kube, name, {"Complete"}))["events"]) == 3
            and s.get("archive", {}).get("state") == "Complete"
            else None
        ),
        what="three events, and the output archived",
    )
    assert statuses(status) == ["start", "deploying", "complete"]
    assert status["events"][1]["data"] == {"pct": 40}
    # And the status says where the output is, that it is whole, and its sizes
    location = str(archive.root / kube.namespace / name)
    assert status["archive"] == {
        "backend": "local",
        "location": location,
        "state": "Complete",
        "stdout": {"size": len(SAID_OUT + STDOUT)},
        "stderr": {"size": len(SAID_ERR + STDERR)},
    }
    # And the archive stays when the pod is deleted
    [pod] = listed(kube, "pods", name)
    kube.kubectl("delete", "pod", pod["metadata"]["name"], "--wait=true", "--timeout=60s")
    assert listed(kube, "pods", name) == []
    assert archive.read(name, "stdout") == SAID_OUT + STDOUT
    assert archive.read(name, "stderr") == SAID_ERR + STDERR
    # And the execution is still Complete, with the same events
    assert statuses(wait_for_phase(kube, name, {"Complete"})) == ["start", "deploying", "complete"]


def test_operator_restarts_during_and_after_a_run_append_nothing_twice(
    kube: Kube, overseer_crds: None, tmp_path: Path, upstream: Upstream, archive: Archive
) -> None:
    env = {"OVERSEER_ARCHIVE_DIR": str(archive.root)}
    first = tmp_path / "first"
    first.mkdir()
    with run_operator(kube.cluster, kube.namespace, first, extra_env=env) as operator:
        # Given an execution that has written its first part and sent an event
        kube.apply(repository("jobs", upstream.file_url))
        job = wait_for_jobs(kube, NAMES)["With a pause"]
        name, _ = execute(kube, job)
        eventually(
            lambda: archive.read(name, "stdout") == STDOUT and archive.state(name).get("lastSeq"),
            timeout=90,
            what="the first part archived",
        )
        eventually(
            lambda: statuses(wait_for_phase(kube, name, {"Running"})) == ["start", "deploying"],
            what="the custom event in the status",
        )
        operator.check_alive()
    # When the operator stops while the job runs, and is started again
    second = tmp_path / "second"
    second.mkdir()
    with run_operator(kube.cluster, kube.namespace, second, extra_env=env) as operator:
        status = wait_for_phase(kube, name, ENDED, timeout=90)
        assert status["phase"] == "Complete", status
        state = archive.wait_complete(name)
        # Then the log read again from its start added each byte once
        assert archive.read(name, "stdout") == STDOUT + PART_TWO
        assert archive.read(name, "stderr") == STDERR
        # And each event is there once
        status = eventually(
            lambda: s if len((s := wait_for_phase(kube, name, {"Complete"}))["events"]) == 3 else 0,
            what="three events",
        )
        assert statuses(status) == ["start", "deploying", "complete"]
        operator.check_alive()
    # When the operator restarts after the execution completed
    third = tmp_path / "third"
    third.mkdir()
    with run_operator(kube.cluster, kube.namespace, third, extra_env=env) as operator:
        try:
            operator.wait_for_log(f"the log of pod {state['pod']} is archived already")
            # Then nothing is appended, and no event is added
            assert archive.read(name, "stdout") == STDOUT + PART_TWO
            assert archive.read(name, "stderr") == STDERR
            assert archive.state(name) == state
            assert wait_for_phase(kube, name, {"Complete"})["events"] == status["events"]
            operator.check_alive()
        finally:
            kube.kubectl("delete", "overseerrepositories", "--all", "--timeout=60s", check=False)
