"""An execution's stdout and stderr through the API: byte-exact, followed live, whole once ended.

Real git repository, the real operator and the real API as host processes sharing one
archive directory, the real cluster. The client speaks HTTP to the API only (the
executions are created with kubectl: creating them is another route's test).
"""

from __future__ import annotations

import hashlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.test_executions import ENDED, execute, wait_for_phase
from tests.support.api_process import ApiProcess, run_api
from tests.support.cluster import Kube
from tests.support.gitserver import Upstream
from tests.support.operator import run_operator
from tests.support.overseer import eventually, repository, wait_for_jobs

pytestmark = pytest.mark.cluster

# NUL, invalid UTF-8, more than one 8 KiB frame, and no final newline.
STDOUT = b"first line\n\x00\xff\xfe\xc3\x28 not utf-8\n" + bytes(range(256)) * 40 + b"no newline"
STDERR = b"err \x00\x80\x81\xff" * 3
BINARY = f"""\
import sys
sys.stdout.buffer.write({STDOUT!r}); sys.stdout.buffer.flush()
sys.stderr.buffer.write({STDERR!r}); sys.stderr.buffer.flush()
"""
TICKS = 20
TICKER = f"""\
import sys, time
for n in range({TICKS}):
    sys.stdout.write(f"tick {{n}} {{time.time():.3f}}\\n"); sys.stdout.flush()
    time.sleep(1)
"""
BIG_MIB = 96
BIG = f"""\
import hashlib, os, sys
digest = hashlib.sha256()
for _ in range({BIG_MIB} * 16):
    block = os.urandom(65536)
    digest.update(block)
    sys.stdout.buffer.write(block)
sys.stdout.buffer.flush()
sys.stderr.write(digest.hexdigest())
"""
JOBS = yaml.safe_dump(
    [
        {"name": "Binary output", "command": ["python3", "-c", BINARY]},
        {"name": "A tick a second", "command": ["python3", "-c", TICKER]},
        {"name": "Big output", "command": ["python3", "-c", BIG]},
    ]
)
NAMES = {"Binary output", "A tick a second", "Big output"}


@pytest.fixture
def upstream(tmp_path: Path) -> Upstream:
    repo = Upstream.create(tmp_path / "git" / "jobs.git")
    repo.commit({"jobs.yml": JOBS}, "jobs that write output")
    return repo


@pytest.fixture
def served(
    kube: Kube, overseer_crds: None, tmp_path: Path, upstream: Upstream
) -> Iterator[tuple[ApiProcess, dict[str, dict[str, Any]]]]:
    """Given the operator and the API sharing one archive (in TMP_PATH), the jobs synced."""
    with run_operator(kube.cluster, kube.namespace, tmp_path) as operator:
        kube.apply(repository("jobs", upstream.file_url))
        jobs = wait_for_jobs(kube, NAMES)
        # The archive may take seconds more than the phase (96 MiB on a busy machine).
        wait = {"OVERSEER_API_OUTPUT_WAIT": "60"}
        with run_api(kube.cluster, kube.namespace, tmp_path, extra_env=wait) as api:
            yield api, jobs
            operator.check_alive()
        kube.kubectl("delete", "overseerrepositories", "--all", "--timeout=60s", check=False)


def rss_kib(api: ApiProcess) -> int:
    for line in Path(f"/proc/{api.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def output_url(job: str, execution_id: str, stream: str) -> str:
    return f"/jobs/{job.replace(' ', '%20')}/{execution_id}/{stream}"


def test_binary_stdout_and_stderr_are_served_byte_exact_and_apart(
    kube: Kube, served: tuple[ApiProcess, dict[str, dict[str, Any]]]
) -> None:
    api, jobs = served
    # When a job writes binary data to stdout and stderr, and ends
    name, eid = execute(kube, jobs["Binary output"])
    assert wait_for_phase(kube, name, ENDED)["phase"] == "Complete"
    with api.client("reader") as client:
        stdout = client.get(output_url("Binary output", eid, "stdout"))
        stderr = client.get(output_url("Binary output", eid, "stderr"))
        ranged = client.get(output_url("Binary output", eid, "stdout"), headers={"Range": "-10"})
        part = client.get(
            output_url("Binary output", eid, "stdout"), headers={"Range": "bytes=11-16"}
        )
    # Then each stream comes back byte for byte, apart, as octets, said whole
    assert (stdout.status_code, stderr.status_code) == (200, 200)
    assert stdout.content == STDOUT
    assert stderr.content == STDERR
    assert stdout.headers["content-type"] == "application/octet-stream"
    assert stdout.headers["x-content-type-options"] == "nosniff"
    assert stdout.headers["overseer-output-state"] == "Complete"
    assert "overseer-output-incomplete" not in stdout.headers
    # And a range is a 206 with exactly those bytes (a malformed one a 416)
    assert ranged.status_code == 416
    assert ranged.headers["content-range"] == f"bytes */{len(STDOUT)}"
    assert part.status_code == 206
    assert part.content == STDOUT[11:17] == b"\x00\xff\xfe\xc3\x28 "
    assert part.headers["content-range"] == f"bytes 11-16/{len(STDOUT)}"


def test_follow_delivers_each_line_within_a_second_and_ends_with_the_execution(
    kube: Kube, served: tuple[ApiProcess, dict[str, dict[str, Any]]]
) -> None:
    api, jobs = served
    # When a job prints a line a second for 20 seconds, followed from its start
    name, eid = execute(kube, jobs["A tick a second"])
    url = output_url("A tick a second", eid, "stdout")
    received: list[tuple[float, bytes]] = []
    with api.client("reader", timeout=90) as client:
        eventually(lambda: client.get(url).status_code == 200, what="the execution in the API")
        with client.stream("GET", url, params={"follow": "true"}) as response:
            assert response.status_code == 200
            assert response.headers["content-type"] == "application/octet-stream"
            pending = b""
            for chunk in response.iter_raw():
                pending += chunk
                *lines, pending = pending.split(b"\n")
                received += [(time.time(), line) for line in lines]
        ended = time.time()
    # Then every line came, each within a second of its writing
    assert [line.split()[:2] for _, line in received] == [
        [b"tick", str(n).encode()] for n in range(TICKS)
    ]
    late = [(line, at - float(line.split()[2])) for at, line in received]
    assert all(delay < 1.0 for _, delay in late), late
    assert pending == b""
    # And the stream ended once the execution had ended, its output whole
    status = wait_for_phase(kube, name, ENDED, timeout=5)
    assert status["phase"] == "Complete"
    assert status["archive"]["state"] == "Complete"
    assert ended - received[-1][0] < 10


def watch_phase(kube: Kube, name: str, phase: str, timeout: float = 180) -> None:
    """Return as soon as the execution's phase is PHASE (a kubectl watch, not a poll)."""
    command = [
        kube.cluster.kubectl,
        "--kubeconfig",
        str(kube.cluster.kubeconfig),
        "-n",
        kube.namespace,
        "get",
        "overseerexecution",
        name,
        "--watch",
        "--output=jsonpath={.status.phase}{'\\n'}",
    ]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as watch:
        try:
            deadline = time.monotonic() + timeout
            assert watch.stdout is not None
            for line in watch.stdout:
                if line.strip() == phase or time.monotonic() > deadline:
                    break
        finally:
            watch.kill()
    assert line.strip() == phase, f"{name} did not become {phase}"


def test_a_client_that_waits_for_the_end_then_reads_gets_every_byte(
    kube: Kube, served: tuple[ApiProcess, dict[str, dict[str, Any]]]
) -> None:
    api, jobs = served
    # When a job writes 96 MiB of random bytes, and a client reads stdout the moment
    # the execution turns Complete (the archive then holds about half of it: without
    # the wait for archive.state, the client got a truncated copy)
    name, eid = execute(kube, jobs["Big output"])
    watch_phase(kube, name, "Complete")
    digest, size = hashlib.sha256(), 0
    rss_before = rss_kib(api)
    with (
        api.client("reader", timeout=60) as client,
        client.stream("GET", output_url("Big output", eid, "stdout")) as response,
    ):
        assert response.status_code == 200
        for chunk in response.iter_raw():
            digest.update(chunk)
            size += len(chunk)
        headers = response.headers
    rss_after = rss_kib(api)
    with api.client("reader") as client:
        written = client.get(output_url("Big output", eid, "stderr")).text
    # Then it gets every byte the job wrote, said whole
    assert size == BIG_MIB << 20
    assert digest.hexdigest() == written
    assert headers["overseer-output-state"] == "Complete"
    assert headers["content-length"] == str(BIG_MIB << 20)
    # And the API held a few chunks at a time, not the output
    assert rss_after - rss_before < 8 * 1024, (rss_before, rss_after)
