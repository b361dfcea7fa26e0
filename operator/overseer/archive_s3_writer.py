"""One execution's output written to S3-compatible storage as chunks and a manifest.

The follower appends frames here (in memory); an uploader task writes each stream's
pending bytes as one chunk object once they reach the chunk size, or once they have
waited the flush interval, then the manifest that counts them. A failed upload is tried
again, with a growing delay, until the store takes it: meanwhile :meth:`S3Writer.ready`
holds the follower (it stops reading the pod's log, which keeps the frames) once a
stream has a chunk's worth pending, so memory stays bounded and nothing is dropped.
See :mod:`overseer.archive_s3` for the layout.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from overseer import archive, archive_s3_store, errors
from overseer.core import backoff
from overseer_library import protocol

log = logging.getLogger(__name__)

RETRY_FIRST = 0.5
RETRY_CEILING = 5.0
"""Seconds between two attempts at an upload the store refused (doubling up to it)."""


class S3Writer:
    """One execution's archive, open for appending. Not shared between tasks."""

    def __init__(
        self,
        store: archive_s3_store.Store,
        prefix: str,
        uid: str,
        manifest: Mapping[str, Any],
        *,
        on_finished: Callable[[str], None],
    ) -> None:
        self._store, self._prefix, self._uid = store, prefix, uid
        self._on_finished = on_finished
        config = store.config
        self._chunk_size, self._interval = config.chunk_size, config.flush_interval
        stat = archive_s3_store.stat_of(manifest)
        self._created = str(manifest.get("created") or datetime.now(UTC).isoformat())
        self._pod = stat.pod
        seq = manifest.get("lastSeq")
        self._seen = seq if isinstance(seq, int) and seq > 0 else 0
        self._complete = stat.complete
        self._lost = list(stat.lost)
        self._sizes: dict[protocol.Stream, int] = dict(stat.sizes)  # in the store
        self._appended = dict(stat.sizes)  # in the store, on the way or pending
        self._pending = {stream: bytearray() for stream in archive.STREAMS}
        self._since: float | None = None  # when the oldest pending byte came
        self._hashes = {stream: hashlib.sha256() for stream in archive.STREAMS}
        self._version = self._saved = 0  # changes to the state, and the last one stored
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()
        self._closing = False
        self._manifest_at = 0.0  # when the last manifest was stored (monotonic)
        self._task: asyncio.Task[None] | None = None
        self._failure: str | None = None

    @property
    def pod(self) -> str | None:
        return self._pod

    @property
    def last_seq(self) -> int:
        return self._seen

    @property
    def complete(self) -> bool:
        return self._complete

    async def start(self) -> None:
        """Drop bytes past the manifest's sizes (an operator that stopped before it
        recorded them), hash what it counts, and start the uploader."""
        for stream in archive.STREAMS:
            size = self._sizes[stream]
            await self._store.delete_prefix(
                f"{self._prefix}{stream}/",
                keep=lambda key, size=size: _offset(key) < size,  # type: ignore[misc]
            )
            if size:
                chunks = archive_s3_store.read_chunks(
                    self._store, f"{self._prefix}{stream}/", 0, size
                )
                async for piece in chunks:
                    await asyncio.to_thread(self._hashes[stream].update, piece)
        self._task = asyncio.create_task(self._run(), name=f"archive {self._prefix}")

    def begin(self, pod: str) -> None:
        if pod != self._pod:
            self._pod, self._seen, self._complete = pod, 0, False
            self._changed()

    def append(self, frame: protocol.Output) -> None:
        if frame.seq <= self._seen:
            return
        pending = self._pending[frame.stream]
        if self._since is None:
            self._since = time.monotonic()
        pending += frame.data
        self._appended[frame.stream] += len(frame.data)
        self._seen = frame.seq
        if len(pending) >= self._chunk_size:
            self._wake.set()

    def commit(self, seq: int = 0, *, complete: bool = False) -> None:
        if seq > self._seen or (complete and not self._complete):
            self._seen = max(self._seen, seq)
            self._complete = self._complete or complete
            self._changed()
        if complete:
            self._wake.set()

    def lose(self, after_seq: int, before_seq: int | None, reason: str) -> None:
        self._lost.append(archive.Lost(after_seq, before_seq, dict(self._appended), reason))
        self._changed()

    def flush(self) -> None:
        return None  # the uploader writes within the flush interval

    async def ready(self) -> None:
        while (
            self._task is not None
            and not self._task.done()
            and any(len(pending) >= self._chunk_size for pending in self._pending.values())
        ):
            self._progress.clear()
            self._wake.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), self._interval)

    async def drain(self) -> None:
        """Write everything appended and the state, waiting for the store as long as it
        takes; then the writer is closed."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await asyncio.shield(self._task)

    def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()

    def _changed(self) -> None:
        self._version += 1
        if self._since is None:
            self._since = time.monotonic()

    def _due(self) -> bool:
        if self._since is None:
            return False
        full = any(len(pending) >= self._chunk_size for pending in self._pending.values())
        waited = time.monotonic() - self._since >= self._interval
        return full or waited or self._closing or self._complete

    async def _run(self) -> None:
        while True:
            if not self._due():
                if self._closing:
                    return
                timeout = self._interval
                if self._since is not None:
                    timeout = max(0.0, self._since + self._interval - time.monotonic())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)
                self._wake.clear()
                continue
            await self._upload()

    async def _upload(self) -> None:
        """Write the pending bytes as chunks, then the manifest, until the store takes
        them. While output flows, the manifest goes at most once per flush interval
        (readers see the chunks it counts then); the last one always goes."""
        batch = {s: bytes(p) for s, p in self._pending.items() if p}
        for stream in batch:
            self._pending[stream] = bytearray()
        self._since = None
        version = self._version
        state = self._state({s: self._sizes[s] + len(batch.get(s, b"")) for s in archive.STREAMS})
        self._progress.set()  # room again for the follower (the batch is held here)
        # Hashed while the chunks travel: the manifest, after them, needs the digests.
        hashing = asyncio.ensure_future(self._hash(batch))
        await self._until_stored(
            lambda: asyncio.gather(
                *(
                    self._store.put(f"{self._prefix}{s}/{_key(self._sizes[s])}", data)
                    for s, data in batch.items()
                )
            )
        )
        await hashing
        self._sizes = state["sizes"]
        final = self._complete or self._closing
        if batch and not final and time.monotonic() - self._manifest_at < self._interval:
            self._since = self._manifest_at  # owed: due one interval after the last one
            return
        state["sha256"] = {s: h.hexdigest() for s, h in self._hashes.items()}
        manifest = json.dumps(state, sort_keys=True).encode() + b"\n"
        await self._until_stored(
            lambda: self._store.put(self._prefix + archive_s3_store.MANIFEST, manifest)
        )
        self._manifest_at, self._saved = time.monotonic(), version
        if self._version != self._saved and self._since is None:
            self._since = time.monotonic()
        if state["complete"] and self._pod is not None and self._version == self._saved:
            self._on_finished(self._pod)

    async def _hash(self, batch: Mapping[protocol.Stream, bytes]) -> None:
        for stream, data in batch.items():
            await asyncio.to_thread(self._hashes[stream].update, data)

    async def _until_stored(self, call: Callable[[], Awaitable[object]]) -> None:
        """Make ``call`` until the store takes it, a growing delay between attempts."""
        failures = 0
        while True:
            try:
                await call()
                break
            except errors.ArchiveError as error:
                if self._failure != error.message:
                    log.warning("archive %s: %s; trying again", self._prefix, error.message)
                self._failure = error.message
                delay = backoff.delay(failures, first=RETRY_FIRST, ceiling=RETRY_CEILING)
                await asyncio.sleep(delay)
                failures += 1
        if failures:
            log.info("archive %s: the store took the output again", self._prefix)
        self._failure = None

    def _state(self, sizes: dict[protocol.Stream, int]) -> dict[str, Any]:
        """The manifest of what the store holds once ``sizes`` bytes are in (the hashes
        come once they are counted)."""
        return {
            "uid": self._uid,
            "created": self._created,
            "pod": self._pod,
            "lastSeq": self._seen,
            "sizes": sizes,
            "complete": self._complete,
            "lost": [lost.to_json() for lost in self._lost],
        }


def _key(offset: int) -> str:
    return f"{offset:016d}"


def _offset(key: str) -> int:
    try:
        return int(key.rsplit("/", 1)[-1])
    except ValueError:
        return -1
