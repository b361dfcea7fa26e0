"""Reading the local archive: byte ranges and a follower, byte-exact, in constant memory."""

from __future__ import annotations

import asyncio
import os
import time
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from overseer import archive, archive_local, errors
from overseer_library import protocol

NS, NAME = "team-a", "binary-d4fd03eee1-1795938121-109918"
# NUL, invalid UTF-8, bytes across chunk boundaries, and no final newline.
DATA = b"first\n\x00\xff\xfe\xc3\x28 not utf-8\n" + bytes(range(256)) * 2100 + b"no newline"


def out(seq: int, stream: protocol.Stream, data: bytes) -> protocol.Output:
    return protocol.Output(seq, stream, data)


@pytest.fixture
def store(tmp_path: Path) -> archive_local.LocalArchive:
    return archive_local.LocalArchive(tmp_path / "archive")


def archived(
    store: archive_local.LocalArchive, stdout: bytes, stderr: bytes = b"", *, complete: bool = True
) -> None:
    writer = store.open_writer(NS, NAME)
    writer.begin("pod-a")
    writer.append(out(1, "stdout", stdout))
    writer.append(out(2, "stderr", stderr))
    writer.commit(2, complete=complete)
    writer.close()


async def read(
    store: archive_local.LocalArchive,
    stream: protocol.Stream,
    start: int = 0,
    stop: int | None = None,
) -> list[bytes]:
    return [chunk async for chunk in store.read_range(NS, NAME, stream, start, stop)]


async def test_a_whole_stream_reads_byte_for_byte_in_bounded_chunks(
    store: archive_local.LocalArchive,
) -> None:
    archived(store, DATA, b"err \x00\x80")
    chunks = await read(store, "stdout")
    assert b"".join(chunks) == DATA
    assert len(chunks) == 3  # 537,626 bytes
    assert all(len(chunk) <= archive.CHUNK_SIZE for chunk in chunks)
    assert b"".join(await read(store, "stderr")) == b"err \x00\x80"


@pytest.mark.parametrize(
    ("start", "stop"),
    [
        (0, 1),
        (5, 17),
        (archive.CHUNK_SIZE - 1, archive.CHUNK_SIZE + 1),
        (archive.CHUNK_SIZE, 2 * archive.CHUNK_SIZE),
        (1, len(DATA)),
        (len(DATA) - 10, None),
        (42, 42),
        (len(DATA), None),
    ],
)
async def test_a_range_reads_exactly_its_bytes(
    store: archive_local.LocalArchive, start: int, stop: int | None
) -> None:
    archived(store, DATA)
    assert b"".join(await read(store, "stdout", start, stop)) == DATA[start:stop]


async def test_a_range_past_the_end_is_an_archive_error(store: archive_local.LocalArchive) -> None:
    archived(store, b"short")
    with pytest.raises(errors.ArchiveError, match="holds 5 bytes, fewer than 9"):
        await read(store, "stdout", 0, 9)


async def test_nothing_archived_has_no_stat_and_reads_empty(
    store: archive_local.LocalArchive,
) -> None:
    assert await store.stat(NS, NAME) is None
    assert await read(store, "stdout") == []
    with pytest.raises(errors.ArchiveError):
        await read(store, "stdout", 0, 1)


async def test_stat_says_sizes_completeness_and_pod(store: archive_local.LocalArchive) -> None:
    archived(store, DATA, b"e", complete=False)
    assert await store.stat(NS, NAME) == archive.Stat(
        {"stdout": len(DATA), "stderr": 1}, complete=False, pod="pod-a"
    )
    writer = store.open_writer(NS, NAME)
    writer.commit(complete=True)
    writer.close()
    stat = await store.stat(NS, NAME)
    assert stat is not None
    assert stat.complete


async def test_stat_and_reads_see_flushed_bytes_before_they_are_committed(
    store: archive_local.LocalArchive,
) -> None:
    writer = store.open_writer(NS, NAME)
    writer.begin("pod-a")
    writer.append(out(1, "stdout", b"live"))
    writer.flush()
    stat = await store.stat(NS, NAME)
    assert stat is not None
    assert (stat.sizes["stdout"], stat.complete) == (4, False)
    assert await read(store, "stdout") == [b"live"]
    writer.close()


async def test_names_that_would_leave_the_root_are_refused(
    store: archive_local.LocalArchive,
) -> None:
    with pytest.raises(errors.ArchiveError):
        await store.stat(NS, "..")
    with pytest.raises(errors.ArchiveError):
        await read_from(store.read_range("..", NAME, "stdout"))


async def read_from(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


async def test_reading_50_mib_holds_a_few_chunks_in_memory(
    store: archive_local.LocalArchive,
) -> None:
    folder = store.folder(NS, NAME)
    folder.mkdir(parents=True)
    block = os.urandom(1 << 20)
    with (folder / "stdout").open("wb") as file:
        for _ in range(50):
            file.write(block)
    (folder / archive_local.STATE_FILE).write_text('{"complete": true, "pod": "p"}')
    del block
    tracemalloc.start()
    try:
        total = 0
        async for chunk in store.read_range(NS, NAME, "stdout"):
            total += len(chunk)
        _, range_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        followed = 0
        async for chunk in store.follow(NS, NAME, "stdout"):
            followed += len(chunk)
        _, follow_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == followed == 50 << 20
    assert range_peak < 4 * archive.CHUNK_SIZE, range_peak
    assert follow_peak < 4 * archive.CHUNK_SIZE, follow_peak


async def follow_all(
    store: archive_local.LocalArchive, stream: protocol.Stream = "stdout", start: int = 0
) -> list[tuple[float, bytes]]:
    """Each chunk the follower yields, with when it came."""
    return [(time.monotonic(), c) async for c in store.follow(NS, NAME, stream, start)]


async def test_a_follower_gets_bytes_as_they_are_flushed_and_ends_once_complete(
    store: archive_local.LocalArchive,
) -> None:
    follower = asyncio.create_task(follow_all(store))
    await asyncio.sleep(0.3)  # nothing archived yet: it waits
    writer = store.open_writer(NS, NAME)
    writer.begin("pod-a")
    written: list[float] = []
    for seq, line in enumerate([b"one\n", b"\x00\xff two", b" three, no newline"], start=1):
        writer.append(out(seq, "stdout", line))
        writer.flush()
        written.append(time.monotonic())
        await asyncio.sleep(0.4)
    assert not follower.done()  # not complete: it goes on waiting
    writer.append(out(4, "stdout", b"!"))
    writer.commit(4, complete=True)  # the last bytes land with the complete state
    writer.close()
    chunks = await asyncio.wait_for(follower, timeout=2)
    assert b"".join(c for _, c in chunks) == b"one\n\x00\xff two three, no newline!"
    for (seen, chunk), sent in zip(chunks, written, strict=False):
        assert seen - sent < 1.0, chunk


async def test_a_follower_starts_at_an_offset_and_sees_nothing_of_the_other_stream(
    store: archive_local.LocalArchive,
) -> None:
    archived(store, b"0123456789", b"stderr only")
    chunks = await asyncio.wait_for(follow_all(store, "stdout", 4), timeout=2)
    assert b"".join(c for _, c in chunks) == b"456789"


async def test_a_follower_of_an_incomplete_archive_waits_until_told_to_give_up(
    store: archive_local.LocalArchive,
) -> None:
    archived(store, b"partial", complete=False)
    waiting = asyncio.create_task(follow_all(store))
    await asyncio.sleep(0.6)
    assert not waiting.done()
    waiting.cancel()
    stop = False
    chunks = store.follow(NS, NAME, "stdout", give_up=lambda: stop)
    assert await anext(chunks) == b"partial"
    stop = True
    assert await read_from(chunks) == b""


async def test_bytes_written_between_a_follower_s_read_and_its_state_read_are_not_lost(
    store: archive_local.LocalArchive, monkeypatch: pytest.MonkeyPatch
) -> None:
    archived(store, b"first ", complete=False)
    read_state = archive_local._read_state

    def writer_finishes_first(path: Path) -> dict[str, object]:
        # The follower found no new byte; the writer then appends its last bytes and
        # records the state complete, before the follower reads the state.
        monkeypatch.setattr(archive_local, "_read_state", read_state)
        writer = store.open_writer(NS, NAME)
        writer.append(out(3, "stdout", b"last"))
        writer.commit(3, complete=True)
        writer.close()
        return read_state(path)

    chunks = store.follow(NS, NAME, "stdout")
    assert await anext(chunks) == b"first "
    monkeypatch.setattr(archive_local, "_read_state", writer_finishes_first)
    assert await asyncio.wait_for(read_from(chunks), timeout=2) == b"last"


async def test_a_follower_told_to_stop_reads_once_more_before_it_ends(
    store: archive_local.LocalArchive,
) -> None:
    # Given a follower that found no new byte and an archive not complete yet
    archived(store, b"first\n", complete=False)
    asked: list[int] = []

    def give_up() -> bool:
        # When the operator completes the archive, and the status that says so reaches
        # the follower, after its last look at the archive and before it asks whether
        # to stop (the API's follower asks the execution's status)
        if not asked:
            writer = store.open_writer(NS, NAME)
            writer.append(out(3, "stdout", b"last\n"))
            writer.commit(3, complete=True)
            writer.close()
        asked.append(1)
        return True

    got = await read_from(store.follow(NS, NAME, "stdout", give_up=give_up))
    # Then it still yields the archive's last bytes: the status came after them
    assert got == b"first\nlast\n"
