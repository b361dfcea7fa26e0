"""The output archive in a local directory (``archive_backend: local``).

Per execution, a folder
``<root>/<namespace>/<execution name>/`` with:

``stdout``, ``stderr``
   The raw bytes the job wrote to each stream, appended in order.
``state.json``
   What has been written: the execution's uid, the pod it came from, the last ``seq``
   taken into account, each stream's size then, and whether the log was read to its end.

Opened for another uid (an execution created again under its name), a folder is
emptied first; one without a uid (older) is taken as the opener's. Writes stream
straight to the files (nothing is held in memory). The state is written after the data
(a new file renamed over the old), and opening a folder cuts each stream file back to
the size its state records: bytes written by an operator that stopped before it
recorded them are dropped, and the log, read again from its start, brings them back
once, by ``seq``. So nothing is ever written twice, or lost.

Errors of the file system are wrapped in :class:`errors.ArchiveError` (waiting: retry later).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import BinaryIO

from overseer import archive, errors
from overseer_library import protocol

STREAMS = archive.STREAMS
STATE_FILE = "state.json"
CHUNK_SIZE = archive.CHUNK_SIZE
FOLLOW_POLL = 0.25
"""Seconds a local follower waits before looking for new bytes again."""


class LocalArchive:
    """The archive in a local directory (see the module's docstring)."""

    backend = "local"

    def __init__(self, root: Path) -> None:
        self.root = root

    def location(self, namespace: str, name: str) -> str:
        return str(self.folder(namespace, name))

    def folder(self, namespace: str, name: str) -> Path:
        for part in (namespace, name):
            if not part or "/" in part or part in (".", ".."):
                raise errors.ArchiveError(f"not a Kubernetes name: {part!r}")
        return self.root / namespace / name

    async def open(self, namespace: str, name: str, *, uid: str | None = None) -> LocalWriter:
        return self.open_writer(namespace, name, uid=uid)

    def open_writer(self, namespace: str, name: str, *, uid: str | None = None) -> LocalWriter:
        """As :meth:`open`, at once (files are quick to open)."""
        folder = self.folder(namespace, name)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            return LocalWriter(folder, uid)
        except OSError as error:
            raise errors.ArchiveError(f"opening the archive {folder}: {error}") from None

    def read(self, namespace: str, name: str, stream: protocol.Stream) -> bytes | None:
        path = self.folder(namespace, name) / stream
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise errors.ArchiveError(f"reading {path}: {error}") from None

    async def stat(self, namespace: str, name: str) -> archive.Stat | None:
        return await asyncio.to_thread(_stat, self.folder(namespace, name))

    async def read_range(
        self,
        namespace: str,
        name: str,
        stream: protocol.Stream,
        start: int = 0,
        stop: int | None = None,
    ) -> AsyncIterator[bytes]:
        path = self.folder(namespace, name) / stream
        fd = await asyncio.to_thread(_open, path)
        try:
            end = stop if stop is not None else 0 if fd is None else os.fstat(fd).st_size
            offset = start
            while offset < end:
                data = await asyncio.to_thread(_pread, fd, min(CHUNK_SIZE, end - offset), offset)
                if not data:
                    raise errors.ArchiveError(f"{path} holds {offset} bytes, fewer than {end}")
                offset += len(data)
                yield data
        finally:
            if fd is not None:
                os.close(fd)

    async def follow(
        self,
        namespace: str,
        name: str,
        stream: protocol.Stream,
        start: int = 0,
        *,
        give_up: Callable[[], bool] | None = None,
    ) -> AsyncIterator[bytes]:
        folder = self.folder(namespace, name)
        fd, offset, complete, last = None, start, False, False
        try:
            while True:
                if fd is None:
                    fd = await asyncio.to_thread(_open, folder / stream)
                data = await asyncio.to_thread(_pread, fd, CHUNK_SIZE, offset)
                if data:
                    offset += len(data)
                    yield data
                    continue
                if complete:
                    return
                # Written after the data: once it says complete, one more read gets all.
                state = await asyncio.to_thread(_read_state, folder / STATE_FILE)
                complete = state.get("complete") is True
                if not complete:
                    if give_up is not None and give_up():
                        if last:
                            return
                        # What told it to stop (the execution's status) may be newer than
                        # the state just read: the last bytes are written before it says so.
                        last = True
                        continue
                    await asyncio.sleep(FOLLOW_POLL)
        finally:
            if fd is not None:
                os.close(fd)

    def forget_finished(self, namespace: str, name: str, pod: str | None) -> None:
        return None  # read from the execution's folder each time: nothing kept

    def finished_pod(self, namespace: str, name: str) -> str | None:
        state = _read_state(self.folder(namespace, name) / STATE_FILE)
        pod = state.get("pod")
        return pod if state.get("complete") is True and isinstance(pod, str) else None

    async def close(self) -> None:
        return None

    async def remove(self, namespace: str, name: str) -> None:
        await asyncio.to_thread(self.remove_now, namespace, name)

    def remove_now(self, namespace: str, name: str) -> None:
        folder = self.folder(namespace, name)
        try:
            shutil.rmtree(folder)
        except FileNotFoundError:
            return
        except OSError as error:
            raise errors.ArchiveError(f"removing {folder}: {error}") from None


class LocalWriter:
    """One execution's folder, open for appending. Not shared between tasks."""

    def __init__(self, folder: Path, uid: str | None = None) -> None:
        self.folder = folder
        state = _read_state(folder / STATE_FILE)
        recorded = state.get("uid")
        if uid is not None and isinstance(recorded, str) and recorded != uid:
            state = {}  # another execution's output: start afresh (sizes 0 cut the files)
        self._uid = uid if uid is not None else recorded if isinstance(recorded, str) else None
        pod, sizes = state.get("pod"), state.get("sizes")
        self._pod = pod if isinstance(pod, str) else None
        self._last_seq = _int(state.get("lastSeq"))
        self._complete = state.get("complete") is True
        self._seen = self._last_seq  # may run ahead of the recorded state until commit
        self._lost = list(archive.parse_lost(state.get("lost")))
        if not isinstance(sizes, dict):
            sizes = {}
        self._files: dict[str, BinaryIO] = {}
        for stream in STREAMS:
            size = _int(sizes.get(stream))
            file = (folder / stream).open("ab")
            if file.tell() != size:
                # Written by an operator that stopped before recording it: read again.
                file.truncate(size)
                file.seek(size)
            self._files[stream] = file

    @property
    def pod(self) -> str | None:
        return self._pod

    @property
    def last_seq(self) -> int:
        return self._seen

    @property
    def complete(self) -> bool:
        return self._complete

    def begin(self, pod: str) -> None:
        if pod != self._pod:
            self._pod, self._last_seq, self._seen, self._complete = pod, 0, 0, False
            self._save()

    def append(self, frame: protocol.Output) -> None:
        if frame.seq <= self._seen:
            return
        try:
            self._files[frame.stream].write(frame.data)
        except OSError as error:
            raise errors.ArchiveError(f"writing {self.folder / frame.stream}: {error}") from None
        self._seen = frame.seq

    def commit(self, seq: int = 0, *, complete: bool = False) -> None:
        self._seen = max(self._seen, seq)
        changed = self._seen > self._last_seq or (complete and not self._complete)
        self._last_seq = self._seen
        self._complete = self._complete or complete
        if changed:
            self._save()

    def flush(self) -> None:
        try:
            for file in self._files.values():
                file.flush()
        except OSError as error:
            raise errors.ArchiveError(f"writing {self.folder}: {error}") from None

    def lose(self, after_seq: int, before_seq: int | None, reason: str) -> None:
        self.flush()
        sizes: dict[protocol.Stream, int] = {s: self._files[s].tell() for s in STREAMS}
        self._lost.append(archive.Lost(after_seq, before_seq, sizes, reason))
        self._save()

    async def ready(self) -> None:
        return None  # the files take what is appended at once

    async def drain(self) -> None:
        self.flush()
        self.close()

    def close(self) -> None:
        for file in self._files.values():
            file.close()

    def _save(self) -> None:
        try:
            sizes = {}
            for stream, file in self._files.items():
                file.flush()
                sizes[stream] = file.tell()
            state = {
                **({"uid": self._uid} if self._uid is not None else {}),
                "pod": self._pod,
                "lastSeq": self._last_seq,
                "sizes": sizes,
                "complete": self._complete,
                **({"lost": [lost.to_json() for lost in self._lost]} if self._lost else {}),
            }
            temporary = self.folder / f".{STATE_FILE}.tmp"
            temporary.write_text(json.dumps(state, sort_keys=True) + "\n")
            os.replace(temporary, self.folder / STATE_FILE)
        except OSError as error:
            raise errors.ArchiveError(
                f"recording the archive state in {self.folder}: {error}"
            ) from None


def _read_state(path: Path) -> dict[str, object]:
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        raise errors.ArchiveError(f"reading {path}: {error}") from None
    return state if isinstance(state, dict) else {}


def _stat(folder: Path) -> archive.Stat | None:
    # The state first: when it says complete, the sizes read after it are final.
    state = _read_state(folder / STATE_FILE)
    sizes: dict[protocol.Stream, int] = {}
    for stream in STREAMS:
        try:
            sizes[stream] = (folder / stream).stat().st_size
        except FileNotFoundError:
            sizes[stream] = 0
        except OSError as error:
            raise errors.ArchiveError(f"reading {folder / stream}: {error}") from None
    pod = state.get("pod")
    complete = state.get("complete") is True
    if not state:
        return None
    lost = archive.parse_lost(state.get("lost"))
    return archive.Stat(sizes, complete, pod if isinstance(pod, str) else None, lost)


def _open(path: Path) -> int | None:
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise errors.ArchiveError(f"reading {path}: {error}") from None


def _pread(fd: int | None, size: int, offset: int) -> bytes:
    try:
        return b"" if fd is None else os.pread(fd, size, offset)
    except OSError as error:
        raise errors.ArchiveError(f"reading the archive: {error}") from None


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
