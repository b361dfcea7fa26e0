"""Concurrency admission: start, refuse, queue or replace, oldest first."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from overseer.core import concurrency
from overseer.core.concurrency import Member, Refuse, Start, Stop, Wait
from overseer.crd import definition as defn
from overseer.crd import execution as execution_crd

SCOPE = "job:backup-0123456789"


def limit(n: int, policy: defn.ConcurrencyPolicy, group: str | None = None) -> defn.Concurrency:
    return defn.Concurrency(limit=n, policy=policy, group=group)


def running(name: str, seconds: int, **kwargs: Any) -> Member:
    return Member(name, f"{seconds}.000000", running=True, **kwargs)


def waiting(name: str, seconds: int, c: defn.Concurrency | None, **kwargs: Any) -> Member:
    return Member(name, f"{seconds}.000000", running=False, concurrency=c, **kwargs)


def test_without_concurrency_or_with_allow_every_execution_starts() -> None:
    members = [running("a", 1), waiting("b", 2, None), waiting("c", 3, limit(1, "allow"))]
    assert concurrency.plan_admission(members, SCOPE) == [Start("b"), Start("c")]


def test_below_the_limit_executions_start_oldest_first() -> None:
    members = [waiting("c", 3, limit(2, "forbid")), waiting("b", 2, limit(2, "forbid"))]
    assert concurrency.plan_admission(members, SCOPE) == [Start("b"), Start("c")]


def test_forbid_refuses_one_more_naming_the_running_executions() -> None:
    members = [running("a", 1), waiting("b", 2, limit(1, "forbid"))]
    [decision] = concurrency.plan_admission(members, SCOPE)
    assert isinstance(decision, Refuse)
    assert decision.name == "b"
    assert "limit of 1 running execution of job backup-0123456789" in decision.message
    assert "a (1.000000)" in decision.message
    assert "forbid" in decision.message


def test_forbid_counts_executions_started_in_the_same_plan() -> None:
    members = [waiting("a", 1, limit(1, "forbid")), waiting("b", 2, limit(1, "forbid"))]
    decisions = concurrency.plan_admission(members, SCOPE)
    assert decisions[0] == Start("a")
    assert isinstance(decisions[1], Refuse)
    assert "a (1.000000)" in decisions[1].message


def test_queue_waits_and_the_oldest_starts_when_a_slot_frees() -> None:
    c = limit(1, "queue")
    # Given one running and two queued
    members = [running("a", 1), waiting("c", 3, c), waiting("b", 2, c)]
    decisions = concurrency.plan_admission(members, SCOPE)
    assert [(type(d), d.name) for d in decisions] == [(Wait, "b"), (Wait, "c")]
    assert all(isinstance(d, Wait) and d.reason == execution_crd.QUEUED for d in decisions)
    # When the running one ends, the oldest queued starts and the other keeps waiting
    queued = [
        waiting(d.name, int(d.name == "c") + 2, c, reason=d.reason, message=d.message)
        for d in decisions
        if isinstance(d, Wait)
    ]
    assert concurrency.plan_admission(queued, SCOPE) == [Start("b")]


def test_an_unchanged_wait_is_not_written_again() -> None:
    c = limit(1, "queue")
    [wait] = concurrency.plan_admission([running("a", 1), waiting("b", 2, c)], SCOPE)
    assert isinstance(wait, Wait)
    again = [running("a", 1), waiting("b", 2, c, reason=wait.reason, message=wait.message)]
    assert concurrency.plan_admission(again, SCOPE) == []


def test_replace_stops_the_oldest_running_and_waits_for_it() -> None:
    c = limit(2, "replace")
    members = [running("b", 2), running("a", 1), waiting("n", 3, c)]
    decisions = concurrency.plan_admission(members, SCOPE)
    assert decisions[0] == Stop("a", for_="n")
    assert isinstance(decisions[1], Wait)
    assert decisions[1].reason == execution_crd.REPLACING
    assert "a (1.000000)" in decisions[1].message
    assert "b (2" not in decisions[1].message


def test_replace_does_not_ask_twice() -> None:
    c = limit(1, "replace")
    members = [running("a", 1, signalled=True), waiting("n", 3, c)]
    decisions = concurrency.plan_admission(members, SCOPE)
    assert [type(d) for d in decisions] == [Wait]
    # Two newcomers replace the same one: one request
    two = [running("a", 1), waiting("n", 3, c), waiting("m", 4, c)]
    stops = [d for d in concurrency.plan_admission(two, SCOPE) if isinstance(d, Stop)]
    assert stops == [Stop("a", for_="n")]


def test_replace_starts_once_the_replaced_one_ended() -> None:
    c = limit(1, "replace")
    members = [waiting("n", 3, c, reason=execution_crd.REPLACING, message="...")]
    assert concurrency.plan_admission(members, SCOPE) == [Start("n")]


def test_each_execution_brings_its_own_policy_to_a_shared_group() -> None:
    scope = "group:db"
    members = [
        running("a", 1),
        waiting("b", 2, limit(1, "queue", "db")),
        waiting("c", 3, limit(1, "forbid", "db")),
        waiting("d", 4, limit(3, "forbid", "db")),
    ]
    decisions = concurrency.plan_admission(members, scope)
    assert [(type(d), d.name) for d in decisions] == [(Wait, "b"), (Refuse, "c"), (Start, "d")]
    assert "group db" in decisions[1].message  # type: ignore[union-attr]


def test_scope_is_the_group_else_the_job() -> None:
    spec = {"job": "a-1", "definition": {"name": "A", "concurrency": {"group": "db"}}}
    assert concurrency.scope_of(spec) == "group:db"
    assert concurrency.scope_of({"job": "a-1", "definition": {"name": "A"}}) == "job:a-1"
    assert concurrency.scope_of({"job": "a-1", "definition": "broken"}) == "job:a-1"
    assert concurrency.describe_scope("group:db") == "group db"


def body(
    status: dict[str, Any] | None = None,
    definition: dict[str, Any] | None = None,
    signals: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "metadata": {"name": "x-1"},
        "spec": {
            "job": "x",
            "executionId": "5.000001",
            "definition": definition or {"name": "X"},
            "signals": signals or [],
        },
        "status": status or {},
    }


def test_members_from_bodies() -> None:
    assert concurrency.member_from_body(body({"phase": "Complete"}), job_exists=True) is None
    fresh = concurrency.member_from_body(body(), job_exists=False)
    assert fresh == Member("x-1", "5.000001", running=False)
    assert fresh.order == ((5, 1), "x-1")
    started = concurrency.member_from_body(body({"jobName": "x-1"}), job_exists=False)
    assert started is not None and started.running
    # Admitted by an operator that stopped before recording it: its Job tells
    orphan = concurrency.member_from_body(body({"reason": "Queued"}), job_exists=True)
    assert orphan is not None and orphan.running
    limited = concurrency.member_from_body(
        body(
            {"phase": "Pending", "reason": "Queued", "message": "m"},
            {"name": "X", "concurrency": {"limit": 2, "policy": "queue"}},
            [{"signal": "SIGTERM", "requestedAt": "2026-01-01T00:00:00Z"}],
        ),
        job_exists=False,
    )
    assert limited == Member(
        "x-1",
        "5.000001",
        running=False,
        concurrency=limit(2, "queue"),
        signalled=True,
        reason="Queued",
        message="m",
    )
    invalid = concurrency.member_from_body(
        body(definition={"name": "X", "concurrency": {"limit": 0}}), job_exists=False
    )
    assert invalid is not None and invalid.concurrency is None


def test_the_signal_request_is_sigterm_now() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    request = concurrency.signal_request(now)
    assert (request.signal, request.requested_at) == ("SIGTERM", now)


def test_a_waiting_execution_asked_to_stop_is_cancelled_and_takes_no_slot() -> None:
    c = limit(1, "queue")
    members = [waiting("b", 2, c, signalled=True, reason="Queued"), waiting("c", 3, c)]
    decisions = concurrency.plan_admission(members, SCOPE)
    assert decisions == [
        concurrency.Cancel("b", "stopped on request while it waited"),
        Start("c"),
    ]


def test_a_new_execution_asked_to_stop_starts_if_it_can_and_never_waits() -> None:
    # It can start: it does, and signal delivery stops it once it runs
    free = [waiting("b", 2, limit(1, "queue"), signalled=True)]
    assert concurrency.plan_admission(free, SCOPE) == [Start("b")]
    # It would have to wait: it never starts
    full = [running("a", 1), waiting("b", 2, limit(1, "queue"), signalled=True)]
    assert concurrency.plan_admission(full, SCOPE) == [
        concurrency.Cancel("b", "stopped on request before it started")
    ]


def test_any_stop_signal_counts_as_a_stop_request() -> None:
    for name in ("SIGTERM", "SIGKILL", "INT", "sigquit"):
        assert concurrency.stop_requested({"signals": [{"signal": name}]}), name
    assert not concurrency.stop_requested({"signals": [{"signal": "SIGHUP"}]})
    assert not concurrency.stop_requested({})
