"""Which signals an execution may be sent, their canonical names, and what is still due."""

from __future__ import annotations

import signal as host_signal
import sys
from datetime import UTC, datetime, timedelta

import pytest

from overseer import errors
from overseer.core import signals
from overseer.crd import execution
from overseer_library import control

T0 = datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("TERM", "SIGTERM"),
        ("sigterm", "SIGTERM"),
        ("SIGTERM", "SIGTERM"),
        (" term ", "SIGTERM"),
        ("15", "SIGTERM"),
        ("hup", "SIGHUP"),
        ("USR1", "SIGUSR1"),
        ("10", "SIGUSR1"),
        ("KILL", "SIGKILL"),
        ("9", "SIGKILL"),
        ("SigInt", "SIGINT"),
        ("IOT", "SIGABRT"),
        ("SIGCLD", "SIGCHLD"),
        ("poll", "SIGIO"),
        ("CONT", "SIGCONT"),
        ("RTMIN", "SIGRTMIN"),
        ("34", "SIGRTMIN"),
        ("RTMIN+2", "SIGRTMIN+2"),
        ("sigrtmax-1", "SIGRTMIN+29"),
        ("SIGRTMAX", "SIGRTMAX"),
        ("64", "SIGRTMAX"),
        ("", "SIGTERM"),
        (None, "SIGTERM"),
    ],
)
def test_what_a_user_gives_becomes_the_canonical_name(given: str | None, canonical: str) -> None:
    assert signals.parse_signal(given) == canonical


@pytest.mark.parametrize(
    "given",
    ["FOO", "SIGFOO", "0", "65", "32", "33", "-15", "RTMIN+31", "RTMAX+1", "RTMIN-1", "SIG", "1.5"],
)
def test_unknown_signals_are_refused_saying_what_is_accepted(given: str) -> None:
    with pytest.raises(errors.SignalError) as raised:
        signals.parse_signal(given)
    assert repr(given) in str(raised.value)
    assert "TERM" in str(raised.value) and "1-31" in str(raised.value)


@pytest.mark.parametrize("given", ["STOP", "SIGTSTP", "ttin", "22", "19"])
def test_signals_that_would_pause_the_job_are_refused(given: str) -> None:
    with pytest.raises(errors.SignalError, match="pause the job"):
        signals.parse_signal(given)


def test_every_canonical_name_has_its_linux_number_and_round_trips() -> None:
    for number in [*range(1, 32), *range(signals.RTMIN, signals.RTMAX + 1)]:
        if number in (19, 20, 21, 22):
            continue
        name = signals.parse_signal(str(number))
        assert signals.signal_number(name) == number
        assert signals.parse_signal(name) == name
        assert len(name) <= 16, "the CRD allows 16 characters"


@pytest.mark.skipif(sys.platform != "linux", reason="the supervisor runs on Linux")
def test_the_supervisor_reads_each_canonical_name_as_the_same_number() -> None:
    # The operator sends the name; overseer-signal parses it with the container's Python.
    for number in sorted(int(s) for s in host_signal.valid_signals()):
        if number in (19, 20, 21, 22):
            continue
        name = signals.parse_signal(str(number))
        assert control.parse_signal(name) == number, name


def request(signal: str, seconds: float = 0) -> execution.SignalRequest:
    return execution.SignalRequest(signal=signal, requested_at=T0 + timedelta(seconds=seconds))


def done(step: signals.Step) -> execution.SignalDelivery:
    return signals.build_delivery(step, T0 + timedelta(seconds=100))


def test_a_running_job_is_sent_each_request_in_order() -> None:
    requests = [request("SIGTERM", 1), request("SIGHUP", 2), request("SIGUSR1", 3)]
    steps = signals.plan_signals(requests, [], "running")
    assert [(s.index, s.action, s.signal) for s in steps] == [
        (0, "send", "SIGTERM"),
        (1, "send", "SIGHUP"),
        (2, "send", "SIGUSR1"),
    ]


def test_a_recorded_request_is_never_planned_again() -> None:
    requests = [request("SIGTERM", 1), request("SIGHUP", 2)]
    [first, _] = signals.plan_signals(requests, [], "running")
    recorded = [done(first)]
    steps = signals.plan_signals(requests, recorded, "running")
    assert [(s.index, s.signal) for s in steps] == [(1, "SIGHUP")]
    # Appending more leaves the recorded one handled
    requests.append(request("SIGKILL", 3))
    steps = signals.plan_signals(requests, recorded, "running")
    assert [(s.index, s.signal) for s in steps] == [(1, "SIGHUP"), (2, "SIGKILL")]
    # A failed delivery is handled too: nothing is retried from the record
    failed = signals.build_delivery(steps[0], T0, failed="boom")
    assert failed.result == "Failed" and failed.sent_signal is None
    assert [s.index for s in signals.plan_signals(requests, [*recorded, failed], "running")] == [2]


def test_a_request_rewritten_by_hand_counts_as_new() -> None:
    [step] = signals.plan_signals([request("SIGTERM", 1)], [], "running")
    recorded = [done(step)]
    assert signals.plan_signals([request("SIGHUP", 1)], recorded, "running")[0].signal == "SIGHUP"
    assert signals.plan_signals([request("SIGTERM", 2)], recorded, "running")[0].index == 0


def test_a_waiting_job_keeps_its_requests_but_unknown_ones_are_refused_at_once() -> None:
    requests = [request("SIGTERM", 1), request("SIGFOO", 2), request("SIGSTOP", 3)]
    steps = signals.plan_signals(requests, [], "waiting")
    assert [(s.index, s.action, s.signal) for s in steps] == [
        (1, "refuse", None),
        (2, "refuse", None),
    ]
    assert "unknown signal 'SIGFOO'" in steps[0].message
    refused = done(steps[0])
    assert (refused.result, refused.signal, refused.sent_signal) == ("Refused", "SIGFOO", None)
    # Once it runs, the waiting one is sent
    later = signals.plan_signals(requests, [done(s) for s in steps], "running")
    assert [(s.index, s.action) for s in later] == [(0, "send")]


def test_requests_to_an_ended_execution_are_recorded_as_not_delivered() -> None:
    [step] = signals.plan_signals([request("SIGKILL", 1)], [], "ended")
    assert (step.action, step.signal) == ("skip", "SIGKILL")
    record = done(step)
    assert record.result == "NotDelivered" and "already ended" in (record.message or "")
    assert signals.plan_signals([request("SIGKILL", 1)], [record], "ended") == []


def test_a_sent_record_keeps_the_request_and_the_canonical_name() -> None:
    naive = execution.SignalRequest(signal="SIGTERM", requested_at=datetime(2024, 5, 1, 10))
    [step] = signals.plan_signals([naive], [], "running")
    record = done(step)
    assert (record.result, record.sent_signal, record.requested_at) == ("Sent", "SIGTERM", T0)
    assert signals.plan_signals([naive], [record], "running") == []


def pod_in(state: dict[str, object]) -> dict[str, object]:
    return {"status": {"containerStatuses": [{"name": "job", "state": state}]}}


def test_only_a_running_job_container_is_signalled() -> None:
    assert signals.derive_target("Running", pod_in({"running": {}}), "job") == "running"
    assert signals.derive_target("Pending", None, "job") == "waiting"
    assert signals.derive_target("Pending", pod_in({"waiting": {}}), "job") == "waiting"
    # A failed attempt whose retry has not started yet
    assert signals.derive_target("Running", pod_in({"terminated": {}}), "job") == "waiting"
    assert signals.derive_target("Running", pod_in({"running": {}}), "other") == "waiting"
    for phase in ("Complete", "Failed", "TimedOut", "Killed"):
        assert signals.derive_target(phase, pod_in({"running": {}}), "job") == "ended"


def test_the_api_builds_a_request_with_the_canonical_name() -> None:
    built = signals.build_request("usr1", T0)
    assert (built.signal, built.requested_at) == ("SIGUSR1", T0)
    assert signals.build_request(None, T0).signal == "SIGTERM"
    with pytest.raises(errors.SignalError):
        signals.build_request("STOP", T0)
