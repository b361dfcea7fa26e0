"""The supervisor's output protocol: framed lines on the container's stdout.

Kubernetes merges a container's stdout and stderr into one log, so the supervisor frames
everything it writes: the job's output (base64, byte-exact), status events, lifecycle
records and its own diagnostics.  The operator follows the container log and decodes the
frames with :class:`Decoder`.  This module is pure (no I/O, no clock) and stdlib-only so
that both sides import the same code.  The format is specified in
``docs/supervisor-protocol.rst``.

A frame is one line::

    \\x1eOVS1 {"type":"out","seq":7,"stream":"stderr","data":"aGkK"}\\n

that is the ASCII record separator, ``OVS`` and the protocol version, a space, one compact
ASCII-only JSON object, and a newline.  Every line the supervisor writes stays below
:data:`MAX_FRAME_LINE` bytes, under containerd's 16 KiB log-line split.
"""

# long because it is the whole wire format, both ends (frames, their encoder and decoder,
# the termination summary), which the supervisor and the operator import as one module
# and docs/supervisor-protocol.rst specifies as one: apart, the two ends could drift.

from __future__ import annotations

import base64
import binascii
import json
import re
import signal as _signal
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias

VERSION: Final = 1
MAGIC: Final = b"\x1eOVS"
PREFIX: Final = MAGIC + str(VERSION).encode("ascii") + b" "

MAX_OUT_CHUNK: Final = 8192
"""Most raw bytes one ``out`` frame carries (10,924 characters once base64-encoded)."""
MAX_EVENT_DATA: Final = 8192
"""Longest event data, measured as compact ASCII JSON."""
MAX_TEXT: Final = 1000
"""Log messages and program names are cut to this many characters."""
MAX_FRAME_LINE: Final = 16000
"""No frame line the encoders produce is longer than this (newline included)."""
MAX_LINE: Final = 1 << 20
"""The decoder's default bound on a buffered line: longer lines come out in pieces."""

JSONValue: TypeAlias = bool | int | float | str | list["JSONValue"] | dict[str, "JSONValue"] | None
Stream: TypeAlias = Literal["stdout", "stderr"]
Level: TypeAlias = Literal["debug", "info", "warning", "error"]
SignalSource: TypeAlias = Literal["received", "requested"]

STREAMS: Final[tuple[Stream, ...]] = ("stdout", "stderr")
LEVELS: Final[tuple[Level, ...]] = ("debug", "info", "warning", "error")
SIGNAL_SOURCES: Final[tuple[SignalSource, ...]] = ("received", "requested")

RESERVED_STATUSES: Final = frozenset({"start", "complete", "fail", "time-out"})
"""Lifecycle statuses the operator derives itself; ``event`` may not send them."""
_STATUS = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,62}\Z")


def check_status(status: str) -> str | None:
    """Say what is wrong with a custom event status, or return None when it is fine."""
    if not _STATUS.match(status):
        return (
            f"invalid status {status!r}: use 1 to 63 letters, digits, '_', '.' or '-', "
            "starting with a letter"
        )
    if status.lower() in RESERVED_STATUSES:
        reserved = ", ".join(sorted(RESERVED_STATUSES))
        return f"status {status!r} is reserved for the execution's lifecycle ({reserved})"
    return None


def dump_json(value: JSONValue) -> str:
    """Compact, ASCII-only JSON: the form used on the wire and for size limits."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def check_event_data(data: JSONValue) -> str | None:
    """Say what is wrong with an event's data, or return None when it is fine."""
    try:
        size = len(dump_json(data))
    except (TypeError, ValueError) as exc:
        return f"event data is not JSON: {exc}"
    if size > MAX_EVENT_DATA:
        return f"event data is {size} bytes of JSON; the limit is {MAX_EVENT_DATA}"
    return None


def exit_status(code: int | None, signal: int | None) -> int:
    """The status a shell would report: the exit code, or 128 + the killing signal."""
    if signal is not None:
        return 128 + signal
    return code if code is not None else 0


def signal_name(number: int) -> str:
    """``SIGTERM`` for 15; ``SIG<n>`` for numbers without a name (real-time signals)."""
    try:
        return _signal.Signals(number).name
    except ValueError:
        return f"SIG{number}"


@dataclass(frozen=True, slots=True)
class Output:
    """Bytes the job wrote to one of its streams, in order within that stream."""

    seq: int
    stream: Stream
    data: bytes


@dataclass(frozen=True, slots=True)
class Event:
    """A custom status event sent by the job with the ``event`` command."""

    seq: int
    status: str
    data: JSONValue
    time: float


@dataclass(frozen=True, slots=True)
class Start:
    """The job's program was started with this process id."""

    seq: int
    pid: int
    program: str
    time: float


@dataclass(frozen=True, slots=True)
class Exit:
    """The job ended: ``code`` when it exited, ``signal`` when a signal killed it."""

    seq: int
    code: int | None
    signal: int | None
    time: float

    @property
    def status(self) -> int:
        """The supervisor's own exit status: the code, or 128 + the signal number."""
        return exit_status(self.code, self.signal)


@dataclass(frozen=True, slots=True)
class Signal:
    """The supervisor sent ``signal`` to the job's process group.

    ``source`` is ``received`` when the supervisor was signalled and forwarded it, and
    ``requested`` when it came over the control socket (``overseer-signal``).
    """

    seq: int
    signal: int
    source: SignalSource
    time: float

    @property
    def name(self) -> str:
        return signal_name(self.signal)


@dataclass(frozen=True, slots=True)
class Log:
    """The supervisor's own diagnostics (not the job's output)."""

    seq: int
    level: Level
    message: str
    time: float


@dataclass(frozen=True, slots=True)
class Unframed:
    """A log line that is not a frame (a crash traceback, say), or a corrupt frame.

    ``error`` says why a line that looked like a frame could not be decoded; it is None
    for plain text.  ``raw`` is the line without its newline.
    """

    raw: bytes
    error: str | None = None

    @property
    def text(self) -> str:
        return self.raw.decode("utf-8", "replace")


Frame: TypeAlias = Output | Event | Start | Exit | Signal | Log
Record: TypeAlias = Frame | Unframed


def _time(value: float) -> float:
    return round(value, 6)


def _cut(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 3] + "..."


def _to_json(frame: Frame) -> dict[str, JSONValue]:
    match frame:
        case Output(seq, stream, data):
            if len(data) > MAX_OUT_CHUNK:
                raise ValueError(f"an out frame carries at most {MAX_OUT_CHUNK} bytes")
            text = base64.b64encode(data).decode("ascii")
            return {"type": "out", "seq": seq, "stream": stream, "data": text}
        case Event(seq, status, data, time):
            problem = check_status(status) or check_event_data(data)
            if problem:
                raise ValueError(problem)
            return {
                "type": "event",
                "seq": seq,
                "status": status,
                "data": data,
                "time": _time(time),
            }
        case Start(seq, pid, program, time):
            return {
                "type": "start",
                "seq": seq,
                "pid": pid,
                "program": _cut(program),
                "time": _time(time),
            }
        case Exit(seq, code, sig, time):
            if (code is None) == (sig is None):
                raise ValueError("an exit frame has either a code or a signal")
            return {"type": "exit", "seq": seq, "code": code, "signal": sig, "time": _time(time)}
        case Signal(seq, sig, source, time):
            return {
                "type": "signal",
                "seq": seq,
                "signal": sig,
                "source": source,
                "time": _time(time),
            }
        case Log(seq, level, message, time):
            return {
                "type": "log",
                "seq": seq,
                "level": level,
                "message": _cut(message),
                "time": _time(time),
            }
    raise TypeError(f"not a frame: {frame!r}")


def encode(frame: Frame) -> bytes:
    """One frame as one line, newline included."""
    return PREFIX + dump_json(_to_json(frame)).encode("ascii") + b"\n"


class _InvalidError(Exception):
    pass


def _field(obj: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = obj.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise _InvalidError(f"field {key!r} is missing or has the wrong type")
    return value


def _seq(obj: dict[str, Any]) -> int:
    seq: int = _field(obj, "seq", int)
    if seq < 1:
        raise _InvalidError("field 'seq' must be at least 1")
    return seq


def _float(obj: dict[str, Any], key: str) -> float:
    return float(_field(obj, key, (int, float)))


def _choice(obj: dict[str, Any], key: str, choices: tuple[str, ...]) -> Any:
    value = obj.get(key)
    if value not in choices:
        raise _InvalidError(f"field {key!r} must be one of {', '.join(choices)}")
    return value


def _optional_int(obj: dict[str, Any], key: str) -> int | None:
    return None if obj.get(key) is None else int(_field(obj, key, int))


def _from_json(obj: dict[str, Any]) -> Frame:
    kind = obj.get("type")
    if kind == "out":
        try:
            data = base64.b64decode(_field(obj, "data", str), validate=True)
        except binascii.Error as exc:
            raise _InvalidError(f"field 'data' is not base64: {exc}") from exc
        return Output(_seq(obj), _choice(obj, "stream", STREAMS), data)
    if kind == "event":
        status = _field(obj, "status", str)
        if problem := check_status(status):
            raise _InvalidError(problem)
        return Event(_seq(obj), status, obj.get("data"), _float(obj, "time"))
    if kind == "start":
        pid = _field(obj, "pid", int)
        return Start(_seq(obj), pid, _field(obj, "program", str), _float(obj, "time"))
    if kind == "exit":
        code, sig = _optional_int(obj, "code"), _optional_int(obj, "signal")
        if (code is None) == (sig is None):
            raise _InvalidError("an exit frame has either a code or a signal")
        return Exit(_seq(obj), code, sig, _float(obj, "time"))
    if kind == "signal":
        sig = _field(obj, "signal", int)
        source = _choice(obj, "source", SIGNAL_SOURCES)
        return Signal(_seq(obj), sig, source, _float(obj, "time"))
    if kind == "log":
        level = _choice(obj, "level", LEVELS)
        return Log(_seq(obj), level, _field(obj, "message", str), _float(obj, "time"))
    raise _InvalidError(f"unknown frame type {kind!r}")


def _reject_constant(name: str) -> None:
    raise _InvalidError(f"{name} is not JSON")


def decode_line(line: bytes) -> Record:
    """Decode one log line (with or without its newline) into a frame or :class:`Unframed`."""
    line = line.removesuffix(b"\n")
    if not line.startswith(MAGIC):
        return Unframed(line)
    space = line.find(b" ", len(MAGIC))
    version = line[len(MAGIC) : space] if space >= 0 else line[len(MAGIC) :]
    if version != str(VERSION).encode("ascii"):
        return Unframed(line, f"unsupported protocol version {version[:16]!r}")
    try:
        obj = json.loads(line[space + 1 :], parse_constant=_reject_constant)
        if not isinstance(obj, dict):
            raise _InvalidError("a frame is a JSON object")
        return _from_json(obj)
    except (_InvalidError, ValueError, RecursionError) as exc:
        return Unframed(line, f"corrupt frame: {exc}")


class Decoder:
    """Turn a byte stream (the followed container log) into records, chunk by chunk.

    Chunks may split frames anywhere; lines are re-assembled.  Memory stays bounded: a
    line longer than ``max_line`` bytes is passed on in :class:`Unframed` pieces.  Call
    :meth:`close` at the end of the stream to get a last line that had no newline.
    """

    def __init__(self, max_line: int = MAX_LINE) -> None:
        if max_line < MAX_FRAME_LINE:
            raise ValueError(f"max_line must be at least {MAX_FRAME_LINE}")
        self._max_line = max_line
        self._buffer = bytearray()
        self.last_seq = 0
        """The highest ``seq`` decoded so far (0 before the first frame)."""

    def feed(self, chunk: bytes) -> list[Record]:
        self._buffer += chunk
        records: list[Record] = []
        start = 0
        while (end := self._buffer.find(b"\n", start)) >= 0:
            records.append(self._decode(bytes(self._buffer[start:end])))
            start = end + 1
        del self._buffer[:start]
        while len(self._buffer) > self._max_line:
            piece = bytes(self._buffer[: self._max_line])
            del self._buffer[: self._max_line]
            records.append(Unframed(piece, f"line longer than {self._max_line} bytes, split"))
        return records

    def close(self) -> list[Record]:
        if not self._buffer:
            return []
        line, self._buffer = bytes(self._buffer), bytearray()
        return [self._decode(line)]

    def take_partial(self) -> bytes:
        """Take the bytes after the last newline (a line the stream cut), instead of
        :meth:`close`: a reader that finds the rest at the start of another stream (a
        rotated log) prepends them to it."""
        partial, self._buffer = bytes(self._buffer), bytearray()
        return partial

    def _decode(self, line: bytes) -> Record:
        record = decode_line(line)
        if not isinstance(record, Unframed):
            self.last_seq = max(self.last_seq, record.seq)
        return record


def decode_all(chunks: Iterable[bytes]) -> Iterator[Record]:
    """Decode a whole stream given as chunks (a convenience over :class:`Decoder`)."""
    decoder = Decoder()
    for chunk in chunks:
        yield from decoder.feed(chunk)
    yield from decoder.close()


@dataclass(frozen=True, slots=True)
class Summary:
    """What the supervisor writes to the termination log when the job ends."""

    code: int | None
    signal: int | None
    last_seq: int

    @property
    def status(self) -> int:
        return exit_status(self.code, self.signal)


def encode_summary(summary: Summary) -> str:
    return (
        dump_json(
            {
                "overseer": VERSION,
                "code": summary.code,
                "signal": summary.signal,
                "status": summary.status,
                "last_seq": summary.last_seq,
            }
        )
        + "\n"
    )


def decode_summary(text: str) -> Summary | None:
    """Read a termination message; None when it is not a summary of this version."""
    try:
        obj = json.loads(text)
        if not isinstance(obj, dict) or obj.get("overseer") != VERSION:
            return None
        code, sig = _optional_int(obj, "code"), _optional_int(obj, "signal")
        last_seq = _field(obj, "last_seq", int)
    except (_InvalidError, ValueError, RecursionError):
        return None
    if (code is None) == (sig is None):
        return None
    return Summary(code, sig, last_seq)
