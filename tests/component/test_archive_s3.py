"""The s3 output archive against a real S3 server (versitygw on loopback).

Byte-exact streams in chunk objects and a manifest, ranges, followers, the uid rule,
retention; and a store that goes down or hangs while a job writes: the writer holds the
follower back and nothing is lost once the store is back.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from overseer import archive_s3, archive_s3_store, errors
from overseer_library import protocol
from tests.support import s3server

NS, NAME = "team-a", "greet-d4fd03eee1-1795938121-109918"
CHUNK = 4096


def config(server: s3server.S3Server, bucket: str, **extra: object) -> archive_s3.S3Config:
    return archive_s3_store.S3Config(
        bucket=bucket,
        endpoint=server.endpoint,
        path_style=True,
        credentials=(server.access_key, server.secret_key),
        chunk_size=CHUNK,
        flush_interval=0.2,
        timeout=2.0,
        **extra,  # type: ignore[arg-type]
    )


@pytest.fixture
async def store(
    s3_server: s3server.S3Server, s3_bucket: str
) -> AsyncIterator[archive_s3.S3Archive]:
    archive = archive_s3.S3Archive(config(s3_server, s3_bucket))
    yield archive
    await archive.close()


def frames(count: int, size: int = 1000, first_seq: int = 1) -> list[protocol.Output]:
    """Output frames alternating stdout and stderr, each of distinct bytes."""
    found = []
    for index in range(count):
        seq = first_seq + index
        stream: protocol.Stream = "stdout" if index % 3 else "stderr"
        data = (f"{seq:08d}" * (size // 8 + 1)).encode()[:size]
        found.append(protocol.Output(seq, stream, data))
    return found


def expected(log: list[protocol.Output], stream: protocol.Stream) -> bytes:
    return b"".join(f.data for f in log if f.stream == stream)


async def read(store: archive_s3.S3Archive, stream: protocol.Stream, *args: int) -> bytes:
    return b"".join([piece async for piece in store.read_range(NS, NAME, stream, *args)])


async def write(
    store: archive_s3.S3Archive, log: list[protocol.Output], uid: str = "uid-1"
) -> None:
    writer = await store.open(NS, NAME, uid=uid)
    writer.begin("pod-a")
    for frame in log:
        writer.append(frame)
        await writer.ready()
    writer.commit(log[-1].seq, complete=True)
    await writer.drain()
    writer.close()


def manifest(server: s3server.S3Server, bucket: str, uid: str = "uid-1") -> dict[str, object]:
    path = server.root / bucket / NS / NAME / uid / "manifest.json"
    value = json.loads(path.read_bytes())
    assert isinstance(value, dict)
    return value


async def test_streams_are_chunks_and_a_manifest_read_back_byte_exact_in_ranges(
    store: archive_s3.S3Archive, s3_server: s3server.S3Server, s3_bucket: str
) -> None:
    log = frames(40)
    await write(store, log)
    out, err = expected(log, "stdout"), expected(log, "stderr")
    assert await read(store, "stdout") == out
    assert await read(store, "stderr") == err
    for start, stop in ((0, 1), (4095, 4097), (5000, 20000), (len(out) - 3, len(out))):
        assert await read(store, "stdout", start, stop) == out[start:stop]
    # Chunks of about the chunk size, keyed by offset, under the execution's uid
    keys = s3_server.objects(s3_bucket)
    chunks = [k for k in keys if "/stdout/" in k]
    assert len(chunks) >= len(out) // (CHUNK + 1000)
    assert all(k.startswith(f"{NS}/{NAME}/uid-1/") for k in keys)
    assert chunks[0].endswith("/stdout/0000000000000000")
    # The manifest: sizes, SHA-256 of each stream, complete, nothing lost
    written = manifest(s3_server, s3_bucket)
    assert written["sizes"] == {"stdout": len(out), "stderr": len(err)}
    assert written["sha256"] == {
        "stdout": hashlib.sha256(out).hexdigest(),
        "stderr": hashlib.sha256(err).hexdigest(),
    }
    assert (written["complete"], written["lost"], written["lastSeq"]) == (True, [], 40)
    stat = await store.stat(NS, NAME)
    assert stat is not None
    assert (stat.sizes, stat.complete, stat.pod) == (
        {"stdout": len(out), "stderr": len(err)},
        True,
        "pod-a",
    )
    assert store.finished_pod(NS, NAME) == "pod-a"
    # Once the pod is gone nothing asks any more: the process keeps nothing of it (it
    # kept one entry per execution ever archived, for the life of the process)
    store.forget_finished(NS, NAME, "pod-b")  # another pod's end: not this one
    assert store.finished_pod(NS, NAME) == "pod-a"
    store.forget_finished(NS, NAME, "pod-a")
    assert store.finished_pod(NS, NAME) is None
    with pytest.raises(errors.ArchiveError):
        await read(store, "stdout", 0, len(out) + 1)


async def test_nothing_archived_yet_is_none(store: archive_s3.S3Archive) -> None:
    assert await store.stat(NS, NAME) is None
    assert await read(store, "stdout") == b""


async def test_a_follower_sees_new_output_within_two_seconds(store: archive_s3.S3Archive) -> None:
    writer = await store.open(NS, NAME, uid="uid-1")
    writer.begin("pod-a")
    got = bytearray()
    seen_at: list[float] = []
    arrived = asyncio.Event()

    async def follow() -> None:
        async for piece in store.follow(NS, NAME, "stdout"):
            got.extend(piece)
            seen_at.append(time.monotonic())
            arrived.set()

    follower = asyncio.create_task(follow())
    written_at = []
    for seq in range(1, 4):
        writer.append(protocol.Output(seq, "stdout", f"line {seq}\n".encode()))
        written_at.append(time.monotonic())
        deadline = time.monotonic() + 2
        while len(got) < 7 * seq:
            arrived.clear()
            await asyncio.wait_for(arrived.wait(), deadline - time.monotonic())  # 2 s at most
        assert len(got) == 7 * seq
    writer.commit(3, complete=True)
    await writer.drain()
    await asyncio.wait_for(follower, 5)  # ends once the manifest says complete
    assert bytes(got) == b"line 1\nline 2\nline 3\n"
    assert max(seen - wrote for seen, wrote in zip(seen_at, written_at, strict=False)) < 2


async def test_a_follower_told_to_stop_reads_once_more_before_it_ends(
    store: archive_s3.S3Archive,
) -> None:
    # Given a follower that found every byte the manifest counts, and it not complete
    writer = await store.open(NS, NAME, uid="uid-1")
    writer.begin("pod-a")
    writer.append(protocol.Output(1, "stdout", b"first\n"))
    writer.commit(1)
    await writer.drain()
    got = bytearray()
    stopping, first = asyncio.Event(), asyncio.Event()

    async def follow() -> None:
        async for piece in store.follow(NS, NAME, "stdout", give_up=stopping.is_set):
            got.extend(piece)
            first.set()

    follower = asyncio.create_task(follow())
    await asyncio.wait_for(first.wait(), 10)
    # When the last bytes and the complete manifest are stored, and the status saying so
    # tells the follower to stop just after it looked at the manifest (as it was before)
    original, after_stop = store.store.get_json, []

    async def stale_until_just_after_the_stop(key: str) -> dict[str, Any] | None:
        if stopping.is_set() and after_stop:
            return await original(key)
        if stopping.is_set():
            after_stop.append(key)
        manifest = await original(key) or {}
        return {**manifest, "sizes": {"stdout": 6, "stderr": 0}, "complete": False}

    store.store.get_json = stale_until_just_after_the_stop  # type: ignore[method-assign]
    writer = await store.open(NS, NAME, uid="uid-1")
    writer.append(protocol.Output(2, "stdout", b"last\n"))
    writer.commit(2, complete=True)
    await writer.drain()
    stopping.set()
    await asyncio.wait_for(follower, 10)
    # Then it read the manifest once more and yielded the last bytes
    assert bytes(got) == b"first\nlast\n"


async def test_a_restart_drops_unrecorded_chunks_and_rereads_by_seq_once(
    store: archive_s3.S3Archive, s3_server: s3server.S3Server, s3_bucket: str
) -> None:
    log = frames(30)
    writer = await store.open(NS, NAME, uid="uid-1")
    writer.begin("pod-a")
    for frame in log[:10]:
        writer.append(frame)
    writer.commit(10)
    await writer.drain()
    # An operator that stopped after writing a chunk but before its manifest
    stray = f"{NS}/{NAME}/uid-1/stdout/{len(expected(log[:10], 'stdout')):016d}"
    s3server.client(s3_server).put_object(Bucket=s3_bucket, Key=stray, Body=b"garbage")
    # The next one opens the archive: where the manifest stopped, and no stray chunk
    writer = await store.open(NS, NAME, uid="uid-1")
    assert (writer.pod, writer.last_seq, writer.complete) == ("pod-a", 10, False)
    assert stray not in [f"{k}" for k in s3_server.objects(s3_bucket)]
    writer.begin("pod-a")
    for frame in log:  # the log read again from its start
        writer.append(frame)
    writer.commit(30, complete=True)
    await writer.drain()
    assert await read(store, "stdout") == expected(log, "stdout")
    assert await read(store, "stderr") == expected(log, "stderr")
    sha = manifest(s3_server, s3_bucket)["sha256"]
    assert sha == {s: hashlib.sha256(expected(log, s)).hexdigest() for s in ("stdout", "stderr")}


async def test_a_recreated_execution_starts_empty_and_retention_deletes_every_object(
    store: archive_s3.S3Archive, s3_server: s3server.S3Server, s3_bucket: str
) -> None:
    await write(store, frames(10), uid="uid-1")
    # The same name, another execution (another uid): the old output is gone
    writer = await store.open(NS, NAME, uid="uid-2")
    assert (writer.pod, writer.last_seq, writer.complete) == (None, 0, False)
    writer.close()
    assert not [k for k in s3_server.objects(s3_bucket) if "/uid-1/" in k]
    await write(store, frames(3, first_seq=1), uid="uid-2")
    assert await read(store, "stdout") == expected(frames(3), "stdout")
    # Retention: the execution's objects are deleted (the bucket, listed, holds none)
    await store.remove(NS, NAME)
    listed = s3server.client(s3_server).list_objects_v2(Bucket=s3_bucket)
    assert listed["KeyCount"] == 0
    assert await store.stat(NS, NAME) is None


@pytest.mark.parametrize("fault", ["stopped", "frozen"])
async def test_a_store_down_mid_write_holds_the_writer_and_loses_nothing(
    tmp_path: Path, fault: str
) -> None:
    with s3server.running(tmp_path / "buckets") as server:
        s3server.client(server).create_bucket(Bucket="overseer")
        store = archive_s3.S3Archive(config(server, "overseer"))
        try:
            log = frames(60)
            writer = await store.open(NS, NAME, uid="uid-1")
            writer.begin("pod-a")
            for frame in log[:20]:
                writer.append(frame)
                await writer.ready()
            # The store goes away while the job writes
            server.stop() if fault == "stopped" else server.freeze()
            held = asyncio.create_task(_append(writer, log[20:]))
            await asyncio.sleep(3)
            assert not held.done(), "the writer must hold the follower while the store is away"
            # and comes back: the follower goes on, nothing is lost
            server.start() if fault == "stopped" else server.thaw()
            await asyncio.wait_for(held, 30)
            writer.commit(60, complete=True)
            await asyncio.wait_for(writer.drain(), 30)
            assert await read(store, "stdout") == expected(log, "stdout")
            assert await read(store, "stderr") == expected(log, "stderr")
        finally:
            await store.close()


async def _append(writer: object, log: list[protocol.Output]) -> None:
    for frame in log:
        writer.append(frame)  # type: ignore[attr-defined]
        await writer.ready()  # type: ignore[attr-defined]
