"""Signals requested through an execution: which ones Overseer sends, and which are still due.

Pure. :func:`parse_signal` turns what a person or the API gives (``term``, ``SIGTERM``,
``15``, ``RTMIN+2``; nothing means ``SIGTERM``) into the canonical name the operator
records and sends (``SIGTERM``, ``SIGRTMIN+2``), or refuses it with a message that says
what is accepted; :func:`build_request` makes the ``spec.signals`` entry the API
appends. The numbers are Linux's generic ones (x86, arm, riscv...), because
jobs run in Linux containers whatever system the operator or the API runs on; the name,
not the number, is what reaches the supervisor.

:func:`plan_signals` compares ``spec.signals`` with ``status.signalDeliveries`` and says
what to do with each request not handled yet: send it, refuse it, or record that the job
had ended. A request is handled once it has a delivery record, whatever the result, so
no request is ever sent twice, across operator restarts too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from overseer import errors
from overseer.crd import execution

DEFAULT = "SIGTERM"
"""What a request without a signal sends."""

_STANDARD: dict[int, str] = {
    1: "SIGHUP",
    2: "SIGINT",
    3: "SIGQUIT",
    4: "SIGILL",
    5: "SIGTRAP",
    6: "SIGABRT",
    7: "SIGBUS",
    8: "SIGFPE",
    9: "SIGKILL",
    10: "SIGUSR1",
    11: "SIGSEGV",
    12: "SIGUSR2",
    13: "SIGPIPE",
    14: "SIGALRM",
    15: "SIGTERM",
    16: "SIGSTKFLT",
    17: "SIGCHLD",
    18: "SIGCONT",
    19: "SIGSTOP",
    20: "SIGTSTP",
    21: "SIGTTIN",
    22: "SIGTTOU",
    23: "SIGURG",
    24: "SIGXCPU",
    25: "SIGXFSZ",
    26: "SIGVTALRM",
    27: "SIGPROF",
    28: "SIGWINCH",
    29: "SIGIO",
    30: "SIGPWR",
    31: "SIGSYS",
}
_NUMBERS = {name: number for number, name in _STANDARD.items()}
_ALIASES = {"SIGIOT": "SIGABRT", "SIGCLD": "SIGCHLD", "SIGPOLL": "SIGIO"}
RTMIN = 34
"""glibc's SIGRTMIN: 32 and 33 belong to the C library's threads and are refused."""
RTMAX = 64

PAUSING = frozenset({"SIGSTOP", "SIGTSTP", "SIGTTIN", "SIGTTOU"})
"""Refused: they would freeze the job where nothing shows it (the execution stays Running
and its time-out keeps counting). Stop a job with TERM or KILL instead."""

STOPPING = frozenset({"SIGTERM", "SIGINT", "SIGQUIT", "SIGKILL"})
"""Signals that by convention ask a job to stop: a job that catches one and exits with a
non-zero code was stopped on request (``Killed``). HUP and USR1 conventionally do not."""

ACCEPTED = (
    "a signal name with or without SIG, in any case (TERM, HUP, INT, QUIT, KILL, USR1, "
    f"USR2, ALRM, CONT, WINCH...), RTMIN, RTMIN+n, RTMAX-n, or a number 1-31 or "
    f"{RTMIN}-{RTMAX}; STOP, TSTP, TTIN and TTOU are not accepted"
)


def parse_signal(text: str | None) -> str:
    """The canonical name of the signal ``text`` asks for; ``SIGTERM`` when empty.

    Raises :class:`errors.SignalError` for an unknown name, 0, a number out of range, or a
    signal that would pause the job.
    """
    spec = (text or "").strip().upper()
    if not spec:
        return DEFAULT
    name = _name(spec)
    if name is None:
        raise errors.SignalError(f"unknown signal {text!r}: use {ACCEPTED}")
    if name in PAUSING:
        raise errors.SignalError(
            f"{name} is not accepted: it would pause the job where nothing shows it; "
            f"stop a job with TERM or KILL. Use {ACCEPTED}"
        )
    return name


def build_request(
    text: str | None, now: datetime, by: str | None = None
) -> execution.SignalRequest:
    """The ``spec.signals`` entry that asks for ``text`` at ``now`` (aware) on behalf of
    ``by``, as the API appends it (JSON patch ``add /spec/signals/-``). Raises
    :class:`errors.SignalError`."""
    return execution.SignalRequest(signal=parse_signal(text), requested_at=now, requested_by=by)


def signal_number(name: str) -> int:
    """The Linux number of a canonical name (``SIGTERM`` -> 15, ``SIGRTMIN+2`` -> 36)."""
    if name in _NUMBERS:
        return _NUMBERS[name]
    number = _realtime(name)
    if number is None:
        raise errors.SignalError(f"unknown signal {name!r}: use {ACCEPTED}")
    return number


def _name(spec: str) -> str | None:
    if spec.isdigit():
        return _canonical(int(spec))
    name = spec if spec.startswith("SIG") else "SIG" + spec
    name = _ALIASES.get(name, name)
    if name in _NUMBERS:
        return name
    number = _realtime(name)
    return _canonical(number) if number is not None else None


def _realtime(name: str) -> int | None:
    """34-64 for ``SIGRTMIN``, ``SIGRTMIN+n``, ``SIGRTMAX``, ``SIGRTMAX-n``; else None."""
    for base, number, sign in (("SIGRTMIN", RTMIN, "+"), ("SIGRTMAX", RTMAX, "-")):
        if not name.startswith(base):
            continue
        offset = name[len(base) :]
        if not offset:
            return number
        if offset[0] == sign and offset[1:].isdigit() and len(offset) <= 3:
            result = number + int(offset) if sign == "+" else number - int(offset[1:])
            return result if RTMIN <= result <= RTMAX else None
    return None


def _canonical(number: int) -> str | None:
    if number in _STANDARD:
        return _STANDARD[number]
    if number == RTMIN:
        return "SIGRTMIN"
    if number == RTMAX:
        return "SIGRTMAX"
    if RTMIN < number < RTMAX:
        return f"SIGRTMIN+{number - RTMIN}"
    return None


# --- planning --------------------------------------------------------------------------

Target = Literal["waiting", "running", "ended"]
"""Where the job is: its container has not started (or a retry's has not yet), it runs,
or the execution has finished."""

Action = Literal["send", "refuse", "skip"]


def derive_target(phase: str | None, pod: Mapping[str, Any] | None, container: str) -> Target:
    """Where the job is, from the execution's phase and its newest pod (None when gone).

    Only a running ``container`` can be signalled: a request waits while the pod is
    created or a retry's pod starts, and is not delivered once the execution finished.
    """
    if phase in execution.TERMINAL_PHASES:
        return "ended"
    for status in ((pod or {}).get("status") or {}).get("containerStatuses") or ():
        if status.get("name") == container and "running" in (status.get("state") or {}):
            return "running"
    return "waiting"


@dataclasses.dataclass(frozen=True)
class Step:
    """What to do with one request of ``spec.signals``."""

    index: int
    request: execution.SignalRequest
    action: Action
    signal: str | None
    """The canonical name to send; None when refused."""
    message: str


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _key(index: int, signal: str, requested_at: datetime) -> tuple[int, str, datetime]:
    return index, signal, _aware(requested_at)


def pending(
    requests: Sequence[execution.SignalRequest], recorded: Sequence[execution.SignalDelivery]
) -> list[tuple[int, execution.SignalRequest]]:
    """The requests, with their index, that have no delivery record yet, in order.

    A record matches a request by index, signal and time, so a list rewritten by hand
    counts its changed entries as new requests rather than as handled ones.
    """
    done = {_key(d.index, d.signal, d.requested_at) for d in recorded}
    return [
        (index, request)
        for index, request in enumerate(requests)
        if _key(index, request.signal, request.requested_at) not in done
    ]


def plan_signals(
    requests: Sequence[execution.SignalRequest],
    recorded: Sequence[execution.SignalDelivery],
    target: Target,
) -> list[Step]:
    """What to do now with each request not handled yet, oldest first.

    An unknown signal is refused whatever the job does. While the job waits, the others
    wait with it (nothing is returned for them): they are sent, in order, once it runs.
    """
    steps: list[Step] = []
    for index, request in pending(requests, recorded):
        try:
            name = parse_signal(request.signal)
        except errors.SignalError as error:
            steps.append(Step(index, request, "refuse", None, str(error)))
            continue
        if target == "ended":
            message = f"{name} was not sent: the execution had already ended"
            steps.append(Step(index, request, "skip", name, message))
        elif target == "running":
            steps.append(Step(index, request, "send", name, f"{name} sent to the job"))
    return steps


_RESULTS: dict[Action, execution.SignalResult] = {
    "send": "Sent",
    "refuse": "Refused",
    "skip": "NotDelivered",
}


def build_delivery(
    step: Step, now: datetime, *, failed: str | None = None
) -> execution.SignalDelivery:
    """The record of ``step`` once done; ``failed`` is why sending it failed, if it did."""
    result = "Failed" if failed is not None else _RESULTS[step.action]
    return execution.SignalDelivery(
        index=step.index,
        signal=step.request.signal,
        requested_at=_aware(step.request.requested_at),
        result=result,
        sent_signal=step.signal if step.action == "send" and failed is None else None,
        time=now,
        message=failed if failed is not None else step.message,
    )
