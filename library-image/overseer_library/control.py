"""The control socket: how ``event`` and ``overseer-signal`` talk to the supervisor.

A client connects to the supervisor's Unix stream socket, sends one request as a JSON line
and reads one JSON line back::

    {"op":"event","status":"deploying","data":{"pct":40}}  ->  {"ok":true,"seq":12}
    {"op":"signal","signal":9}                             ->  {"ok":true,"seq":13}
    anything wrong                                         ->  {"ok":false,"error":"..."}

The supervisor answers only once the frame is written to its stdout, so an acknowledged
event is ordered after everything the job wrote before sending it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from overseer_library import protocol

ENV_SOCKET: Final = "OVERSEER_CONTROL_SOCKET"
# The supervisor creates the directory itself (0700) and refuses one it does not own.
DEFAULT_SOCKET: Final = "/tmp/overseer/control.sock"  # noqa: S108
MAX_MESSAGE: Final = 64 * 1024
DEFAULT_TIMEOUT: Final = 30.0


class ControlError(Exception):
    """The supervisor could not be reached, or it refused the request."""


@dataclass(frozen=True, slots=True)
class EventRequest:
    status: str
    data: protocol.JSONValue


@dataclass(frozen=True, slots=True)
class SignalRequest:
    signal: int


Request = EventRequest | SignalRequest


def socket_path(environ: Mapping[str, str] = os.environ) -> str:
    """The socket the supervisor listens on: ``$OVERSEER_CONTROL_SOCKET`` or the default.

    The supervisor sets the variable for the job; a process started by ``kubectl exec``
    sees the pod's environment, which has it only if the operator put it there, and
    otherwise falls back to the same default the supervisor uses.
    """
    return environ.get(ENV_SOCKET) or DEFAULT_SOCKET


def parse_signal(text: str) -> int:
    """A signal number from ``TERM``, ``SIGTERM``, ``term``, ``15`` or ``RTMIN+2``.

    Raises ValueError with a message for the user when the signal is unknown.
    """
    spec = text.strip().upper()
    valid = signal.valid_signals()
    number: int | None = None
    if spec.isdigit():
        number = int(spec)
    else:
        name = spec if spec.startswith("SIG") else "SIG" + spec
        for base in ("SIGRTMIN", "SIGRTMAX"):
            if name.startswith(base) and name[len(base) :][:1] in ("+", "-"):
                offset = name[len(base) :]
                if offset[1:].isdigit():
                    number = int(getattr(signal, base)) + int(offset)
        if number is None and name in signal.Signals.__members__:
            number = int(signal.Signals[name])
    if number is None or number == 0 or number not in valid:
        top = max(int(s) for s in valid)
        raise ValueError(f"unknown signal {text!r}: use a name like TERM or KILL, or 1-{top}")
    return number


def encode_request(request: Request) -> bytes:
    if isinstance(request, EventRequest):
        message: dict[str, protocol.JSONValue] = {
            "op": "event",
            "status": request.status,
            "data": request.data,
        }
    else:
        message = {"op": "signal", "signal": request.signal}
    return protocol.dump_json(message).encode("ascii") + b"\n"


def decode_request(line: bytes) -> Request:
    """Parse and check a request; raises ValueError with a message for the client."""
    try:
        message = json.loads(line)
    except ValueError as exc:
        raise ValueError(f"request is not JSON: {exc}") from exc
    if not isinstance(message, dict):
        raise ValueError("a request is a JSON object")
    op = message.get("op")
    if op == "event":
        status = message.get("status")
        if not isinstance(status, str):
            raise ValueError("an event request needs a string 'status'")
        data = message.get("data")
        problem = protocol.check_status(status) or protocol.check_event_data(data)
        if problem:
            raise ValueError(problem)
        return EventRequest(status, data)
    if op == "signal":
        number = message.get("signal")
        if isinstance(number, bool) or not isinstance(number, int):
            raise ValueError("a signal request needs an integer 'signal'")
        return SignalRequest(parse_signal(str(number)))
    raise ValueError(f"unknown request op {op!r}")


def encode_reply(seq: int | None = None, error: str | None = None) -> bytes:
    reply: dict[str, protocol.JSONValue] = (
        {"ok": False, "error": error} if error is not None else {"ok": True, "seq": seq}
    )
    return protocol.dump_json(reply).encode("ascii") + b"\n"


def send(request: Request, *, path: str, timeout: float = DEFAULT_TIMEOUT) -> int:
    """Send a request and wait for the supervisor's answer; returns the frame's seq."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(path)
            sock.sendall(encode_request(request))
            answer = _read_line(sock)
    except TimeoutError as exc:
        raise ControlError(f"no answer from the supervisor within {timeout:g}s") from exc
    except (FileNotFoundError, ConnectionRefusedError) as exc:
        raise ControlError(
            f"cannot reach the Overseer supervisor at {path} ({exc.strerror}); "
            f"is this running inside an Overseer job? (${ENV_SOCKET} names the socket)"
        ) from exc
    except OSError as exc:
        raise ControlError(f"talking to the supervisor at {path} failed: {exc}") from exc
    reply = _decode_reply(answer)
    if not reply.get("ok"):
        raise ControlError(str(reply.get("error") or "the supervisor refused the request"))
    seq = reply.get("seq")
    return seq if isinstance(seq, int) else 0


def _read_line(sock: socket.socket) -> bytes:
    data = b""
    while b"\n" not in data and len(data) < MAX_MESSAGE:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.split(b"\n", 1)[0]


def _decode_reply(answer: bytes) -> dict[str, Any]:
    if not answer:
        raise ControlError("the supervisor closed the connection without answering")
    try:
        reply = json.loads(answer)
    except ValueError as exc:
        raise ControlError(f"the supervisor's answer is not JSON: {answer[:200]!r}") from exc
    if not isinstance(reply, dict):
        raise ControlError(f"unexpected answer from the supervisor: {answer[:200]!r}")
    return reply
