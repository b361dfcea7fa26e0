"""HEAD on the output routes (sizes, no body), and a follower resuming from a byte
(``?offset=N`` or ``Range: bytes=N-``): through the ASGI app, on a real archive directory
written by the operator's own writer (the harness of ``test_api_output``)."""

from __future__ import annotations

import asyncio

import pytest

from tests.component.test_api_output import (
    PROMPT,
    STDERR,
    STDOUT,
    URL,
    Harness,
    archived,
    harness,  # noqa: F401 (a fixture)
)


async def test_head_answers_the_sizes_without_a_body(harness: Harness) -> None:  # noqa: F811
    harness.write(STDOUT, STDERR, complete=True)
    await harness.status(archived("Complete"), 2)
    for stream, data in (("stdout", STDOUT), ("stderr", STDERR)):
        head = await harness.client.head(f"{URL}/{stream}")
        get = await harness.client.get(f"{URL}/{stream}")
        assert head.status_code == 200
        assert head.content == b""
        assert head.headers["content-length"] == str(len(data))
        assert head.headers["overseer-output-size"] == str(len(data))
        assert head.headers["overseer-output-state"] == "Complete"
        assert head.headers["accept-ranges"] == "bytes"
        assert head.headers["content-type"] == "application/octet-stream"
        assert get.content == data
        assert get.headers["content-length"] == head.headers["content-length"]


async def test_head_of_a_range_and_of_a_running_execution(harness: Harness) -> None:  # noqa: F811
    harness.write(b"0123456789", complete=False)
    await harness.status({"phase": "Running", "archive": {"state": "Archiving"}}, 2)
    head = await harness.client.head(f"{URL}/stdout", headers={"Range": "bytes=2-5"})
    assert head.status_code == 206
    assert head.content == b""
    assert head.headers["content-range"] == "bytes 2-5/10"
    assert head.headers["content-length"] == "4"
    assert head.headers["overseer-output-incomplete"] == "true"
    assert head.headers["overseer-output-size"] == "10"


async def test_head_needs_a_token_and_a_known_execution(harness: Harness) -> None:  # noqa: F811
    anonymous = await harness.client.head(f"{URL}/stdout", headers={"Authorization": ""})
    assert anonymous.status_code == 401
    unknown = await harness.client.head("/jobs/A%20job/1.000001/stdout")
    assert unknown.status_code == 404


@pytest.mark.parametrize(
    ("how", "start"),
    [
        ({"params": {"follow": "true", "offset": "7"}}, 7),
        ({"params": {"follow": "true"}, "headers": {"Range": "bytes=7-"}}, 7),
        ({"params": {"follow": "true", "offset": "0"}, "headers": {"Range": "bytes=3-"}}, 0),
        ({"params": {"follow": "true"}, "headers": {"Range": "bytes=2-4"}}, 0),
    ],
)
async def test_follow_resumes_from_a_byte(
    harness: Harness,  # noqa: F811
    how: dict[str, dict[str, str]],
    start: int,
) -> None:
    # Given a running execution whose follower got the first line, then lost its connection
    harness.write(b"line 1\n", complete=False)
    await harness.status({"phase": "Running", "archive": {"state": "Archiving"}}, 2)
    # When it follows again from the byte it had reached
    following = asyncio.create_task(harness.client.get(f"{URL}/stdout", **how))  # type: ignore[arg-type]
    await asyncio.sleep(0.3)
    harness.write(b"line 2\n", complete=False)
    await asyncio.sleep(0.3)
    harness.write(b"end", complete=True)
    await harness.status(archived("Complete"), 3)
    # Then it gets what follows that byte (or all of it), and is told where the body starts
    response = await asyncio.wait_for(following, PROMPT)
    assert response.status_code == 200
    assert response.content == b"line 1\nline 2\nend"[start:]
    assert response.headers["overseer-output-offset"] == str(start)


async def test_a_negative_offset_is_refused(harness: Harness) -> None:  # noqa: F811
    response = await harness.client.get(f"{URL}/stdout", params={"follow": "true", "offset": "-1"})
    assert response.status_code == 422
