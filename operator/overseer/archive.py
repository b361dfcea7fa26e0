"""The output archive: each execution's stdout and stderr, byte for byte, kept after its pod.

An :class:`Archive` is a backend; :class:`LocalArchive` (a directory, a volume in the
chart) is the only one so far, and S3-compatible storage can implement the same two
classes later. Per execution, the local backend keeps a folder
``<root>/<namespace>/<execution name>/`` with:

``stdout``, ``stderr``
   The raw bytes the job wrote to each stream, appended in order.
``state.json``
   What has been written: the pod it came from, the ``seq`` of the last frame taken
   into account, the size of each stream file at that point, and whether the pod's log
   was read to its end.

Writes stream straight to the files (nothing is held in memory). The state is written
after the data (a new file renamed over the old), and opening a folder cuts each stream
file back to the size its state records: bytes written by an operator that stopped
before it recorded them are dropped, and the log, read again from its start, brings
them back once, by ``seq``. So nothing is ever written twice, or lost.

Errors of the file system are wrapped in :class:`errors.ArchiveError` (waiting: retry later).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import BinaryIO, Protocol

from overseer import errors
from overseer_library import protocol

STREAMS = protocol.STREAMS
STATE_FILE = "state.json"


class Writer(Protocol):
    """The archive of one execution, open for appending."""

    @property
    def pod(self) -> str | None:
        """The pod whose log the archive holds (the latest attempt's)."""

    @property
    def last_seq(self) -> int:
        """Frames of ``pod`` up to this ``seq`` are archived: skip them when re-reading."""

    @property
    def complete(self) -> bool:
        """The log of ``pod`` was read to its end: there is nothing more to read."""

    def begin(self, pod: str) -> None:
        """Start (or go on with) the log of ``pod``; a new pod (a retry) restarts ``seq``."""

    def append(self, frame: protocol.Output) -> None:
        """Append an output frame's bytes to its stream, unless its ``seq`` is archived."""

    def commit(self, seq: int = 0, *, complete: bool = False) -> None:
        """Record that every frame up to ``seq`` (and every one appended) is archived, and
        that the log ended when ``complete``; until then a restart reads them again."""

    def flush(self) -> None:
        """Make what was appended readable by others (a live follower of the output)."""

    def close(self) -> None: ...


class Archive(Protocol):
    """Where executions' output is kept."""

    backend: str
    """Its name in an execution's ``status.archive.backend``: ``local``, ``s3``..."""

    def location(self, namespace: str, name: str) -> str:
        """Where one execution's output is, for ``status.archive.location``."""

    def open(self, namespace: str, name: str) -> Writer:
        """The archive of one execution, created when it has none yet."""

    def read(self, namespace: str, name: str, stream: protocol.Stream) -> bytes | None:
        """What is archived of a stream (None when nothing is); for small outputs and tests."""

    def finished_pod(self, namespace: str, name: str) -> str | None:
        """The pod whose log is archived to its end; None while none is."""

    def remove(self, namespace: str, name: str) -> None:
        """Delete one execution's output; nothing archived is fine."""


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

    def open(self, namespace: str, name: str) -> LocalWriter:
        folder = self.folder(namespace, name)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            return LocalWriter(folder)
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

    def finished_pod(self, namespace: str, name: str) -> str | None:
        state = _read_state(self.folder(namespace, name) / STATE_FILE)
        pod = state.get("pod")
        return pod if state.get("complete") is True and isinstance(pod, str) else None

    def remove(self, namespace: str, name: str) -> None:
        folder = self.folder(namespace, name)
        try:
            shutil.rmtree(folder)
        except FileNotFoundError:
            return
        except OSError as error:
            raise errors.ArchiveError(f"removing {folder}: {error}") from None


class LocalWriter:
    """One execution's folder, open for appending. Not shared between tasks."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        state = _read_state(folder / STATE_FILE)
        pod, sizes = state.get("pod"), state.get("sizes")
        self._pod = pod if isinstance(pod, str) else None
        self._last_seq = _int(state.get("lastSeq"))
        self._complete = state.get("complete") is True
        self._seen = self._last_seq  # may run ahead of the recorded state until commit
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
                "pod": self._pod,
                "lastSeq": self._last_seq,
                "sizes": sizes,
                "complete": self._complete,
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


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
