"""The output archive on S3-compatible object storage (``archive_backend: s3``).

Objects are immutable, so each execution's streams are numbered chunk objects, and a
small manifest says what they hold. Keys, under the configured prefix::

    <namespace>/<name>/<uid>/manifest.json
    <namespace>/<name>/<uid>/stdout/<offset, 16 digits>
    <namespace>/<name>/<uid>/stderr/<offset, 16 digits>

A chunk's key is the stream offset of its first byte, so keys sort as the bytes do and
the chunk after one ending at byte ``n`` is the key of ``n``. The manifest (JSON) holds
the uid, the pod whose log it follows, the last ``seq`` archived, each stream's size and
SHA-256 (of the bytes up to that size), whether the log was read to its end
(``complete``), and the ranges known lost (``lost``). The writer
(:mod:`overseer.archive_s3_writer`) uploads the chunks first and the manifest after them:
a reader trusts the manifest's sizes, never a listing, and bytes past them (chunks of an
operator that stopped before it recorded them) are deleted when the archive is opened
again, then read again from the pod's log by ``seq``.

Keyed by the execution's uid, a re-created execution of the same name never appends to
old output: its opening deletes the other uids' objects. Readers stream in bounded
pieces and follow by polling the manifest. The client is aiobotocore
(``docs/decisions.rst``); its errors are wrapped in :class:`errors.ArchiveError`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from overseer import archive, archive_s3_store, archive_s3_writer, errors
from overseer_library import protocol

FOLLOW_POLL = 0.5
"""Seconds a follower waits before reading the manifest again."""
S3Config = archive_s3_store.S3Config


class S3Archive:
    """The archive in a bucket (see the module's docstring)."""

    backend = "s3"

    def __init__(self, config: S3Config) -> None:
        self.config = config
        self.store = archive_s3_store.Store(config)
        self._finished: dict[tuple[str, str], str] = {}

    def root(self, namespace: str, name: str) -> str:
        for part in (namespace, name):
            if not part or "/" in part or part in (".", ".."):
                raise errors.ArchiveError(f"not a Kubernetes name: {part!r}")
        return f"{self.config.prefix}{namespace}/{name}/"

    def location(self, namespace: str, name: str) -> str:
        return f"s3://{self.config.bucket}/{self.root(namespace, name)}"

    async def close(self) -> None:
        await self.store.close()

    async def open(
        self, namespace: str, name: str, *, uid: str | None = None
    ) -> archive_s3_writer.S3Writer:
        root = self.root(namespace, name)
        current = await self._current(root)
        if uid is None:
            uid = current[0].rsplit("/", 2)[-2] if current is not None else "unknown"
        prefix = f"{root}{uid}/"
        if current is not None and current[0] != prefix:
            current = None
        # Another execution's output (an earlier one of the same name): deleted.
        await self.store.delete_prefix(root, keep=lambda key: key.startswith(prefix))
        manifest = current[1] if current is not None else {}
        writer = archive_s3_writer.S3Writer(
            self.store,
            prefix,
            uid,
            manifest,
            on_finished=lambda pod: self._finished.__setitem__((namespace, name), pod),
        )
        await writer.start()
        if writer.complete and writer.pod is not None:
            self._finished[(namespace, name)] = writer.pod
        return writer

    def finished_pod(self, namespace: str, name: str) -> str | None:
        # The writer is this process: it knows what it recorded (and reads it on opening).
        return self._finished.get((namespace, name))

    def forget_finished(self, namespace: str, name: str, pod: str | None) -> None:
        # Kept from the end of the pod's log until the pod is gone (the Job's deletion
        # waits for it, core/retention.py), not longer: one entry per execution archived
        # in the life of the process otherwise.
        if pod is None or self._finished.get((namespace, name)) == pod:
            self._finished.pop((namespace, name), None)

    async def remove(self, namespace: str, name: str) -> None:
        await self.store.delete_prefix(self.root(namespace, name))
        self._finished.pop((namespace, name), None)

    async def stat(self, namespace: str, name: str) -> archive.Stat | None:
        current = await self._current(self.root(namespace, name))
        return None if current is None else archive_s3_store.stat_of(current[1])

    async def read_range(
        self,
        namespace: str,
        name: str,
        stream: protocol.Stream,
        start: int = 0,
        stop: int | None = None,
    ) -> AsyncIterator[bytes]:
        current = await self._current(self.root(namespace, name))
        prefix, manifest = current if current is not None else ("", {})
        size = archive_s3_store.stat_of(manifest).sizes[stream]
        end = size if stop is None else stop
        if end > size:
            raise errors.ArchiveError(f"{stream} holds {size} bytes, fewer than {end}")
        if start < end:
            async for piece in archive_s3_store.read_chunks(
                self.store, f"{prefix}{stream}/", start, end
            ):
                yield piece

    async def follow(
        self,
        namespace: str,
        name: str,
        stream: protocol.Stream,
        start: int = 0,
        *,
        give_up: Callable[[], bool] | None = None,
    ) -> AsyncIterator[bytes]:
        root, offset = self.root(namespace, name), start
        prefix: str | None = None
        last = False
        while True:
            if prefix is None:
                current = await self._current(root)
                manifest = current[1] if current is not None else None
                prefix = current[0] if current is not None else None
            else:
                manifest = await self.store.get_json(prefix + archive_s3_store.MANIFEST)
            stat = archive_s3_store.stat_of(manifest) if manifest is not None else None
            if stat is not None and prefix is not None and offset < stat.sizes[stream]:
                chunks = archive_s3_store.read_chunks(
                    self.store, f"{prefix}{stream}/", offset, stat.sizes[stream]
                )
                async for piece in chunks:
                    offset += len(piece)
                    yield piece
                continue
            if stat is not None and stat.complete:
                return
            if give_up is not None and give_up():
                if last:
                    return
                # What told it to stop (the execution's status) may be newer than the
                # manifest just read: the last bytes are stored before it says so.
                last = True
                continue
            await asyncio.sleep(FOLLOW_POLL)

    async def _current(self, root: str) -> tuple[str, dict[str, Any]] | None:
        """The prefix of the execution's uid and its manifest: the newest, should an
        older uid's deletion have failed."""
        found: list[tuple[str, dict[str, Any]]] = []
        async for prefix, _ in self.store.list_keys(root, delimiter="/"):
            manifest = await self.store.get_json(prefix + archive_s3_store.MANIFEST)
            if manifest is not None:
                found.append((prefix, manifest))
        if not found:
            return None
        return max(found, key=lambda item: str(item[1].get("created", "")))
