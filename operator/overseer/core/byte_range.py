"""Which bytes of an output a request's ``Range`` header asks for (RFC 9110, section 14).

Pure: the API's output routes call :func:`parse_range` with the header and the stream's
size, and answer what it returns:

- :class:`Whole` (200, every byte): no header; a unit other than ``bytes`` (which a
  server must ignore); an ``If-Range`` (the output has no validator that could match,
  so the range must be ignored); several ranges of which one at least can be served
  (a server may ignore ``Range``: the whole output is simpler than a multipart answer);
  a suffix range of an empty output.
- :class:`Part` (206 with ``Content-Range: bytes first-last/size``): one range,
  ``bytes=first-last``, ``bytes=first-`` or ``bytes=-suffix``, with ``last`` past the end
  cut to the end and a suffix longer than the output meaning all of it.
- :class:`Unsatisfiable` (416 with ``Content-Range: bytes */size``): no range starts
  before the end (or a suffix of zero bytes), or the header is malformed (RFC 9110
  lets a server reject those; a 416 saying why is clearer than a silent 200).
"""

from __future__ import annotations

import dataclasses
import re

_UNIT = re.compile(r"^\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*=(.*)$", re.DOTALL)
_SPEC = re.compile(r"([0-9]*)-([0-9]*)")


@dataclasses.dataclass(frozen=True)
class Whole:
    """Send every byte (200)."""


@dataclasses.dataclass(frozen=True)
class Part:
    """Send the bytes ``start`` to ``stop`` (excluded) of ``size`` (206)."""

    start: int
    stop: int
    size: int

    @property
    def content_range(self) -> str:
        return f"bytes {self.start}-{self.stop - 1}/{self.size}"


@dataclasses.dataclass(frozen=True)
class Unsatisfiable:
    """Send no byte (416): ``reason`` says why, for the problem's detail."""

    reason: str
    size: int

    @property
    def content_range(self) -> str:
        return f"bytes */{self.size}"


Plan = Whole | Part | Unsatisfiable


def parse_range(header: str | None, size: int, *, if_range: bool = False) -> Plan:
    """What to send of ``size`` bytes for a ``Range`` header (None: no header)."""
    try:
        specs = None if header is None or if_range else _specs(header)
        plans = [_one(spec, size) for spec in specs or ()]
    except ValueError as error:
        return Unsatisfiable(f"Range {header!r}: {error}", size)
    parts = [plan for plan in plans if isinstance(plan, Part)]
    if not plans or any(isinstance(plan, Whole) for plan in plans):
        return Whole()
    if not parts:
        reason = f"no range starts before the end of the output ({size} bytes)"
        return Unsatisfiable(f"Range {header!r}: {reason}", size)
    return parts[0] if len(plans) == 1 else Whole()


def _specs(header: str) -> list[str]:
    """The range-specs of a ``bytes`` header; none for another unit (it is ignored, as
    RFC 9110 says). Raises ValueError when the header is malformed."""
    match = _UNIT.match(header)
    if match is None:
        msg = "is not unit=ranges, such as bytes=0-99"
        raise ValueError(msg)
    if match[1].lower() != "bytes":
        return []
    specs = [spec.strip() for spec in match[2].split(",")]
    specs = [spec for spec in specs if spec]  # empty list elements are allowed
    if not specs:
        msg = "names no range"
        raise ValueError(msg)
    return specs


def _one(spec: str, size: int) -> Plan:
    """What to send for one range-spec. Raises ValueError when it is malformed."""
    match = _SPEC.fullmatch(spec)
    if match is None or not (match[1] or match[2]):
        msg = f"malformed range {spec!r} (write first-last, first- or -suffix)"
        raise ValueError(msg)
    first, last = match[1], match[2]
    if not first:  # a suffix: the last bytes
        length = int(last)
        if size == 0 and length:
            return Whole()  # every byte of nothing
        if length == 0:
            return Unsatisfiable("a suffix of zero bytes", size)
        return Part(max(size - length, 0), size, size)
    start = int(first)
    if last and int(last) < start:
        msg = f"malformed range {spec!r}: its last byte is before its first"
        raise ValueError(msg)
    if start >= size:
        return Unsatisfiable("starts past the end", size)
    stop = size if not last else min(int(last) + 1, size)
    return Part(start, stop, size)
