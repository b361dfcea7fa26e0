"""The output routes through the ASGI app: a real archive directory, caches fed by a watch feed.

The archive is written with the operator's own writer (``LocalArchive.open``), the
executions' statuses are those the operator writes (``status.archive.state``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from overseer import archive_local
from overseer.core import names
from overseer_api import app as app_
from overseer_api import settings
from overseer_library import protocol
from tests.support import api

READER = "reader-token-1234"
EID = "1795938121.109918"
JOB = api.job_body({"name": "A job", "command": "true"})
OTHER_JOB = api.job_body({"name": "A job", "command": "true"}, namespace="other")
STDOUT = b"first\n\x00\xff\xfe\xc3\x28 not utf-8\n" + bytes(range(256)) * 4000 + b"no newline"
STDERR = b"err \x00\x80"
ENDED = {"phase": "Complete", "startTime": "2026-12-06T04:00:00Z"}


def execution(
    status: dict[str, Any], *, job: dict[str, Any] = JOB, version: int = 1
) -> dict[str, Any]:
    """An OverseerExecution of ``job`` with this status, as the cache holds it."""
    name = job["metadata"]["name"]
    return {
        "apiVersion": "overseer.dev/v1alpha1",
        "kind": "OverseerExecution",
        "metadata": {
            "name": names.execution_resource_name(name, EID),
            "namespace": job["metadata"]["namespace"],
            "resourceVersion": str(version),
        },
        "spec": {"job": name, "executionId": EID},
        "status": status,
    }


def archived(state: str | None, **status: Any) -> dict[str, Any]:
    """A status whose archive is in ``state`` (None: no archive recorded)."""
    return {**ENDED, **status, **({"archive": {"state": state}} if state else {})}


class Harness:
    def __init__(
        self, feed: api.WatchFeed, store: archive_local.LocalArchive, client: httpx.AsyncClient
    ):
        self.feed, self.store, self.client = feed, store, client

    def write(
        self, stdout: bytes, stderr: bytes = b"", *, complete: bool, job: dict[str, Any] = JOB
    ) -> None:
        """Archive output as the operator does (a pod's log, frames by seq)."""
        namespace, name = job["metadata"]["namespace"], execution({}, job=job)["metadata"]["name"]
        writer = self.store.open_writer(namespace, name)
        if writer.pod is None:
            writer.begin("pod-a")
        seq = writer.last_seq
        for stream, data in (("stdout", stdout), ("stderr", stderr)):
            if data:
                seq += 1
                writer.append(protocol.Output(seq, stream, data))  # type: ignore[arg-type]
        writer.commit(seq, complete=complete)
        writer.close()

    async def status(self, status: dict[str, Any], version: int) -> None:
        await self.feed.push("OverseerExecution", "MODIFIED", execution(status, version=version))


@contextlib.asynccontextmanager
async def serving(tmp_path: Path, output_wait: float) -> AsyncIterator[Harness]:
    feed = api.WatchFeed()
    feed.add("OverseerJob", JOB)
    feed.add("OverseerJob", OTHER_JOB)
    tokens = api.write_tokens(tmp_path / "tokens.json", {"ci": (READER, ["read"])})
    config = settings.Settings(namespaces=("other",), tokens_file=tokens, output_wait=output_wait)
    store = archive_local.LocalArchive(tmp_path / "archive")
    app = app_.create_app(config, feed, store)
    async with api.client_of(app, READER) as client:
        yield Harness(feed, store, client)


# Timing on a busy machine: a wait that should not happen is told from PATIENT seconds'
# one by an answer within PROMPT; a wait that should end does so after IMPATIENT.
PATIENT, PROMPT, IMPATIENT = 30.0, 10.0, 1.0


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    async with serving(tmp_path, PATIENT) as served:
        yield served


@pytest.fixture
async def impatient(tmp_path: Path) -> AsyncIterator[Harness]:
    """The API with a short output_wait (IMPATIENT seconds)."""
    async with serving(tmp_path, IMPATIENT) as served:
        yield served


URL = f"/jobs/A%20job/{EID}"


async def test_each_stream_is_served_byte_for_byte_as_octets(harness: Harness) -> None:
    harness.write(STDOUT, STDERR, complete=True)
    await harness.status(archived("Complete"), 2)
    stdout = await harness.client.get(f"{URL}/stdout")
    stderr = await harness.client.get(f"{URL}/stderr")
    assert (stdout.status_code, stderr.status_code) == (200, 200)
    assert stdout.content == STDOUT
    assert stderr.content == STDERR
    assert stdout.headers["content-type"] == "application/octet-stream"
    assert stdout.headers["x-content-type-options"] == "nosniff"
    assert stdout.headers["accept-ranges"] == "bytes"
    assert stdout.headers["content-length"] == str(len(STDOUT))
    assert stdout.headers["overseer-output-state"] == "Complete"
    assert "overseer-output-incomplete" not in stdout.headers


async def test_the_same_under_the_namespace_path(harness: Harness) -> None:
    harness.write(b"in other\n", complete=True, job=OTHER_JOB)
    await harness.feed.push(
        "OverseerExecution", "ADDED", execution(archived("Complete"), job=OTHER_JOB)
    )
    response = await harness.client.get(f"/namespaces/other{URL}/stdout")
    assert response.status_code == 200, response.text
    assert response.content == b"in other\n"


@pytest.mark.parametrize(
    ("header", "start", "stop"),
    [
        ("bytes=0-9", 0, 10),
        ("bytes=6-8", 6, 9),
        ("bytes=1000-", 1000, None),
        ("bytes=-10", len(STDOUT) - 10, None),
        ("bytes=262143-262145", 262143, 262146),  # across two of the archive's chunks
    ],
)
async def test_a_range_is_a_206_with_its_content_range(
    harness: Harness, header: str, start: int, stop: int | None
) -> None:
    harness.write(STDOUT, complete=True)
    await harness.status(archived("Complete"), 2)
    response = await harness.client.get(f"{URL}/stdout", headers={"Range": header})
    assert response.status_code == 206
    assert response.content == STDOUT[start:stop]
    last = (stop or len(STDOUT)) - 1
    assert response.headers["content-range"] == f"bytes {start}-{last}/{len(STDOUT)}"
    assert response.headers["content-length"] == str(len(response.content))


async def test_several_ranges_or_an_if_range_get_the_whole_output(harness: Harness) -> None:
    harness.write(b"0123456789", complete=True)
    await harness.status(archived("Complete"), 2)
    several = await harness.client.get(f"{URL}/stdout", headers={"Range": "bytes=0-1,4-5"})
    if_range = await harness.client.get(
        f"{URL}/stdout", headers={"Range": "bytes=0-1", "If-Range": '"x"'}
    )
    for response in (several, if_range):
        assert (response.status_code, response.content) == (200, b"0123456789")
        assert "content-range" not in response.headers


@pytest.mark.parametrize(
    ("header", "detail"),
    [("bytes=10-", "no range starts before the end"), ("bytes=5-1", "malformed")],
)
async def test_a_range_past_the_end_or_malformed_is_a_416_problem(
    harness: Harness, header: str, detail: str
) -> None:
    harness.write(b"0123456789", complete=True)
    await harness.status(archived("Complete"), 2)
    response = await harness.client.get(f"{URL}/stdout", headers={"Range": header})
    assert response.status_code == 416
    assert response.headers["content-range"] == "bytes */10"
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "https://overseer.dev/problems/range-not-satisfiable"
    assert detail in problem["detail"]
    assert "between 0 and 9" in problem["detail"]


@pytest.mark.parametrize(
    "path",
    [
        f"/jobs/B%20job/{EID}/stdout",  # no such job
        "/jobs/A%20job/1795938121.000001/stdout",  # no such execution
        "/jobs/A%20job/not-an-id/stderr",
        f"/namespaces/unserved{URL}/stdout",
    ],
)
async def test_unknown_job_or_execution_is_a_404_problem(harness: Harness, path: str) -> None:
    await harness.feed.push("OverseerExecution", "ADDED", execution(archived("Complete")))
    response = await harness.client.get(path)
    assert response.status_code == 404, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_without_a_token_it_is_401(harness: Harness) -> None:
    await harness.feed.push("OverseerExecution", "ADDED", execution(archived("Complete")))
    response = await harness.client.get(f"{URL}/stdout", headers={"Authorization": ""})
    assert response.status_code == 401


async def test_a_running_execution_answers_what_there_is_and_says_so(harness: Harness) -> None:
    harness.write(b"so far\n", complete=False)
    await harness.status({"phase": "Running", "archive": {"state": "Archiving"}}, 2)
    started = time.monotonic()
    response = await harness.client.get(f"{URL}/stdout")
    assert time.monotonic() - started < PROMPT  # no wait while it runs
    assert (response.status_code, response.content) == (200, b"so far\n")
    assert response.headers["overseer-output-state"] == "Running"
    assert response.headers["overseer-output-incomplete"] == "true"


async def test_an_ended_execution_still_archiving_is_waited_for_then_served_whole(
    harness: Harness,
) -> None:
    # Given an execution that has ended while the end of its log is still being read
    harness.write(b"most of it, ", complete=False)
    await harness.status(archived("Archiving"), 2)
    reading = asyncio.create_task(harness.client.get(f"{URL}/stdout"))
    await asyncio.sleep(0.3)
    assert not reading.done()
    # When the operator reads the rest and records the archive Complete
    harness.write(b"and the rest", complete=True)
    await harness.status(archived("Complete"), 3)
    # Then the answer holds every byte, and says it is whole
    response = await asyncio.wait_for(reading, PROMPT)
    assert response.content == b"most of it, and the rest"
    assert response.headers["overseer-output-state"] == "Complete"
    assert "overseer-output-incomplete" not in response.headers


async def test_an_ended_execution_whose_archive_never_completes_is_served_after_the_wait(
    impatient: Harness,
) -> None:
    impatient.write(b"partial", complete=False)
    await impatient.status(archived("Archiving"), 2)
    started = time.monotonic()
    response = await impatient.client.get(f"{URL}/stdout")
    assert IMPATIENT <= time.monotonic() - started < PATIENT
    assert response.content == b"partial"
    assert response.headers["overseer-output-state"] == "Archiving"
    assert response.headers["overseer-output-incomplete"] == "true"


async def test_an_incomplete_archive_is_served_at_once_and_says_so(harness: Harness) -> None:
    harness.write(b"cut", complete=True)
    await harness.status(archived("Incomplete"), 2)
    started = time.monotonic()
    response = await harness.client.get(f"{URL}/stdout")
    assert time.monotonic() - started < PROMPT
    assert response.content == b"cut"
    assert response.headers["overseer-output-state"] == "Incomplete"
    assert response.headers["overseer-output-incomplete"] == "true"


async def test_an_execution_that_never_started_has_a_whole_empty_output(
    harness: Harness,
) -> None:
    await harness.feed.push(
        "OverseerExecution", "ADDED", execution({"phase": "Failed", "reason": "Refused"})
    )
    response = await harness.client.get(f"{URL}/stdout")
    assert (response.status_code, response.content) == (200, b"")
    assert response.headers["overseer-output-state"] == "Complete"
    follow = await asyncio.wait_for(harness.client.get(f"{URL}/stdout?follow=true"), PROMPT)
    assert (follow.status_code, follow.content) == (200, b"")


async def test_follow_streams_until_the_execution_ends_and_its_archive_is_complete(
    harness: Harness,
) -> None:
    # Given a running execution that has written a first line
    harness.write(b"line 1\n", complete=False)
    await harness.status({"phase": "Running", "archive": {"state": "Archiving"}}, 2)
    following = asyncio.create_task(harness.client.get(f"{URL}/stdout?follow=true"))
    # When it writes more, then ends, and the operator reads its log to the end
    for number in range(2, 5):
        await asyncio.sleep(0.2)
        harness.write(f"line {number}\n".encode(), b"e", complete=False)
    await harness.status(archived("Archiving"), 3)  # ended; the log's end not read yet
    await asyncio.sleep(0.4)
    assert not following.done()
    harness.write(b"\x00\xff the end, no newline", complete=True)
    await harness.status(archived("Complete"), 4)
    # Then the follower got every byte of its stream, and ended
    response = await asyncio.wait_for(following, PROMPT)
    assert response.status_code == 200
    assert response.content == b"line 1\nline 2\nline 3\nline 4\n\x00\xff the end, no newline"
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "content-length" not in response.headers


async def test_follow_goes_on_after_an_attempt_while_a_retry_runs(harness: Harness) -> None:
    # The first pod's log is read to its end, but the execution runs on (a retry)
    harness.write(b"attempt 1\n", complete=True)
    await harness.status({"phase": "Running", "archive": {"state": "Complete"}}, 2)
    following = asyncio.create_task(harness.client.get(f"{URL}/stdout?follow=true"))
    await asyncio.sleep(0.4)
    assert not following.done()
    writer = harness.store.open_writer("default", execution({})["metadata"]["name"])
    writer.begin("pod-b")
    writer.append(protocol.Output(1, "stdout", b"attempt 2\n"))
    writer.commit(1, complete=True)
    writer.close()
    await harness.status(archived("Complete"), 3)
    response = await asyncio.wait_for(following, PROMPT)
    assert response.content == b"attempt 1\nattempt 2\n"


async def test_follow_of_an_archive_that_never_completes_ends_after_the_wait(
    impatient: Harness,
) -> None:
    impatient.write(b"partial", complete=False)
    await impatient.status(archived("Archiving"), 2)
    started = time.monotonic()
    response = await impatient.client.get(f"{URL}/stdout?follow=true")
    assert IMPATIENT <= time.monotonic() - started < PATIENT
    assert response.content == b"partial"


async def test_a_status_that_lags_behind_a_complete_archive_is_not_waited_for(
    harness: Harness,
) -> None:
    # The archive holds the end of the log of the execution's pod; the status does not
    # say so yet (or never will: an operator older than archive.state)
    harness.write(b"all of it", complete=True)
    await harness.status(archived("Archiving", podName="pod-a"), 2)
    started = time.monotonic()
    response = await harness.client.get(f"{URL}/stdout")
    assert time.monotonic() - started < PROMPT
    assert response.content == b"all of it"
    assert response.headers["overseer-output-state"] == "Complete"
    follow = await asyncio.wait_for(harness.client.get(f"{URL}/stdout?follow=true"), PROMPT)
    assert follow.content == b"all of it"


async def test_an_archive_complete_for_an_earlier_attempt_is_waited_for(
    impatient: Harness,
) -> None:
    impatient.write(b"attempt 1", complete=True)  # pod-a's log; the execution's pod is pod-b
    await impatient.status(archived(None, podName="pod-b"), 2)
    response = await impatient.client.get(f"{URL}/stdout")
    assert response.headers["overseer-output-state"] == "Archiving"
    assert response.headers["overseer-output-incomplete"] == "true"
