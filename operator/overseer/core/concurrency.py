"""Concurrency admission: which waiting executions start, wait, are refused or replace.

Pure: the operator (``overseer.operator.admission``) gathers the executions that share a
*scope* (the job's own executions, or those of every job naming the same ``group``),
asks :func:`plan_admission`, and applies its decisions.

An execution *waits* from its creation until it is admitted (its Job is created) or
refused; it *runs* from its admission until its phase is terminal. Waiting executions
are decided oldest first (by execution id, which is the creation time), each with the
``concurrency`` of its own frozen definition:

- no ``concurrency``, or ``allow``: it starts (it still counts as running for others);
- fewer running than its ``limit``: it starts;
- ``forbid``: it is refused at once (Failed, ``ConcurrencyLimit``);
- ``queue``: it waits (``Queued``) and starts, oldest first, when a slot frees up;
- ``replace``: SIGTERM is requested for the oldest running executions, as many as it
  takes to free one slot, and it waits (``Replacing``) for them to end.

A waiting execution for which a stop signal is requested never starts: it ends
``Killed`` with reason ``Cancelled``. (A new one that can start at once starts even so,
and the signal reaches the job once it runs.)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import pydantic

from overseer.crd import definition as defn
from overseer.crd import execution as execution_

REPLACE_SIGNAL = "SIGTERM"
STOP_SIGNALS = frozenset({"SIGTERM", "SIGINT", "SIGQUIT", "SIGKILL", "TERM", "INT", "QUIT", "KILL"})
"""Requests that mean "stop": a waiting execution with one never starts."""


def scope_of(spec: Mapping[str, Any]) -> str:
    """``group:<group>`` when the definition names a concurrency group, else ``job:<job>``.

    Reads the raw spec leniently: every execution belongs to a scope, even one whose
    spec is invalid (it is refused later and never runs).
    """
    definition = spec.get("definition")
    concurrency = definition.get("concurrency") if isinstance(definition, Mapping) else None
    group = concurrency.get("group") if isinstance(concurrency, Mapping) else None
    if group:
        return f"group:{group}"
    return f"job:{spec.get('job', '')}"


def stop_requested(spec: Mapping[str, Any]) -> bool:
    """A stop signal (TERM, INT, QUIT, KILL) is among the execution's requested signals."""
    return any(
        isinstance(s, Mapping) and str(s.get("signal", "")).upper() in STOP_SIGNALS
        for s in spec.get("signals") or ()
    )


def describe_scope(scope: str) -> str:
    """``job:backup-1a2b`` -> ``job backup-1a2b``; ``group:db`` -> ``group db``."""
    kind, _, name = scope.partition(":")
    return f"{kind} {name}"


@dataclasses.dataclass(frozen=True)
class Member:
    """One not-yet-ended execution of a scope, as the planner sees it."""

    name: str
    execution_id: str
    running: bool
    """Admitted (its Job exists) and not ended."""
    concurrency: defn.Concurrency | None = None
    """The ``concurrency`` of the execution's own definition."""
    signalled: bool = False
    """A stop signal (SIGTERM, SIGINT, SIGQUIT, SIGKILL) was requested for it."""
    reason: str | None = None
    """Its status reason now, so an unchanged wait is not written again..."""
    message: str | None = None
    """... with its status message."""

    @property
    def order(self) -> tuple[tuple[int, ...], str]:
        try:
            key = tuple(int(part) for part in self.execution_id.split("."))
        except ValueError:
            key = ()
        return key, self.name


def member_from_body(body: Mapping[str, Any], *, job_exists: bool) -> Member | None:
    """The member an execution body stands for; None once it has ended.

    ``job_exists`` says whether its batch/v1 Job exists: an execution admitted by an
    operator that stopped before it could record ``status.jobName`` runs all the same.
    """
    status = body.get("status") or {}
    if status.get("phase") in execution_.TERMINAL_PHASES:
        return None
    spec = body.get("spec") or {}
    raw = (spec.get("definition") or {}).get("concurrency")
    try:
        concurrency = None if raw is None else defn.Concurrency.model_validate(raw)
    except pydantic.ValidationError:
        concurrency = None  # an invalid spec is refused by the start path: no limit here
    return Member(
        name=str(body["metadata"]["name"]),
        execution_id=str(spec.get("executionId", "")),
        running=bool(status.get("jobName")) or job_exists,
        concurrency=concurrency,
        signalled=stop_requested(spec),
        reason=status.get("reason"),
        message=status.get("message"),
    )


@dataclasses.dataclass(frozen=True)
class Start:
    """Admit the execution: create its Job now."""

    name: str


@dataclasses.dataclass(frozen=True)
class Refuse:
    """End the execution at once: Failed, ``ConcurrencyLimit``."""

    name: str
    message: str


@dataclasses.dataclass(frozen=True)
class Wait:
    """Keep the execution Pending with a reason (``Queued``, ``Replacing``)."""

    name: str
    reason: str
    message: str


@dataclasses.dataclass(frozen=True)
class Stop:
    """Request SIGTERM for a running execution, to make room for ``for_``."""

    name: str
    for_: str


@dataclasses.dataclass(frozen=True)
class Cancel:
    """End a waiting execution asked to stop before it started: Killed, ``Cancelled``."""

    name: str
    message: str


Decision = Start | Refuse | Wait | Stop | Cancel


def _listing(members: Iterable[Member]) -> str:
    return ", ".join(f"{m.name} ({m.execution_id})" for m in members)


def plan_admission(members: Iterable[Member], scope: str) -> list[Decision]:
    """What to do, in order, for the waiting members of ``scope`` (see the module doc).

    A :class:`Wait` whose reason and message a member already has is left out, so a
    plan that changes nothing asks for no write.
    """
    ordered = sorted(members, key=lambda m: m.order)
    running = [m for m in ordered if m.running]
    signalled = {m.name for m in running if m.signalled}
    decisions: list[Decision] = []
    where = describe_scope(scope)
    for member in ordered:
        if member.running:
            continue
        if member.signalled and member.reason in execution_.HELD_BACK:
            decisions.append(Cancel(member.name, "stopped on request while it waited"))
            continue
        concurrency = member.concurrency
        if concurrency is None or concurrency.policy == "allow":
            decisions.append(Start(member.name))
            running.append(member)
            continue
        if len(running) < concurrency.limit:
            decisions.append(Start(member.name))
            running.append(member)
            continue
        if member.signalled:
            # Asked to stop before it could start, and it would have to wait: never start.
            # (One that can start does, and the signal reaches the job once it runs.)
            decisions.append(Cancel(member.name, "stopped on request before it started"))
            continue
        planned = _when_full(member, concurrency, running, signalled, where)
        signalled.update(d.name for d in planned if isinstance(d, Stop))
        decisions.extend(planned)
    by_name = {m.name: m for m in ordered}
    return [d for d in decisions if not _unchanged(d, by_name)]


def _when_full(
    member: Member,
    concurrency: defn.Concurrency,
    running: Sequence[Member],
    signalled: Collection[str],
    where: str,
) -> list[Decision]:
    """The decisions for ``member`` when its scope is at its limit, by its policy.

    ``signalled`` names the running executions already asked to stop: a replace asks
    only the others (the caller adds the new :class:`Stop` targets to it).
    """
    limit = f"{concurrency.limit} running execution{'s' if concurrency.limit > 1 else ''}"
    if concurrency.policy == "forbid":
        return [
            Refuse(
                member.name,
                f"the limit of {limit} of {where} is reached (policy forbid); "
                f"running: {_listing(running)}",
            )
        ]
    if concurrency.policy == "queue":
        # No list of the running ones: a long queue is not rewritten at every end.
        return [
            Wait(
                member.name,
                execution_.QUEUED,
                f"the limit of {limit} of {where} is reached (policy queue); "
                "it starts, oldest first, when one ends",
            )
        ]
    # replace
    targets = running[: len(running) - concurrency.limit + 1]
    stops: list[Decision] = [
        Stop(target.name, for_=member.name) for target in targets if target.name not in signalled
    ]
    return [
        *stops,
        Wait(
            member.name,
            execution_.REPLACING,
            f"replacing {_listing(targets)} ({REPLACE_SIGNAL} requested): the limit "
            f"of {limit} of {where} is reached",
        ),
    ]


def _unchanged(decision: Decision, members: Mapping[str, Member]) -> bool:
    member = members[decision.name]
    return isinstance(decision, Wait) and (member.reason, member.message) == (
        decision.reason,
        decision.message,
    )


def signal_request(now: datetime) -> execution_.SignalRequest:
    """The request ``replace`` appends to a replaced execution's ``spec.signals``."""
    return execution_.SignalRequest(signal=REPLACE_SIGNAL, requested_at=now)
