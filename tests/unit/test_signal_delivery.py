"""The operator's side of requested signals: what it runs, records and reports."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.support import fake_kube

from overseer import errors, kube
from overseer.crd import execution
from overseer.operator import signals

T0 = datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)
BODY = {"metadata": {"namespace": "ns", "name": "x"}}
RUNNING = {
    "metadata": {"name": "pod-1"},
    "status": {"containerStatuses": [{"name": "job", "state": {"running": {}}}]},
}


class FakeKube(fake_kube.FakeKube):
    """Records execs and status patches; answers execs from a script."""

    def __init__(self, *answers: kube.ExecResult | errors.KubeError) -> None:
        super().__init__()
        self.answers = list(answers)
        self.execs: list[tuple[str, str, str, list[str]]] = []
        self.patches: list[dict[str, Any]] = []

    async def exec_in_pod(
        self,
        namespace: str,
        pod: str,
        container: str,
        command: Sequence[str],
        *,
        within: float = 30.0,
    ) -> kube.ExecResult:
        self.execs.append((namespace, pod, container, list(command)))
        answer = self.answers.pop(0) if self.answers else kube.ExecResult(0, b"", b"")
        if isinstance(answer, errors.KubeError):
            raise answer
        return answer

    async def patch_status(
        self, kind: str, namespace: str, name: str, status: Mapping[str, Any]
    ) -> None:
        assert (kind, namespace, name) == ("OverseerExecution", "ns", "x")
        self.patches.append(dict(status))


class Events(list[tuple[str, str, str]]):
    def __call__(self, obj: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        self.append((type_, reason, message))


def request(signal: str, seconds: float = 0) -> execution.SignalRequest:
    return execution.SignalRequest(signal=signal, requested_at=T0 + timedelta(seconds=seconds))


async def deliver(
    sender: signals.SignalSender,
    client: FakeKube,
    events: Events,
    requests: list[execution.SignalRequest],
    *,
    phase: str = "Running",
    recorded: Sequence[execution.SignalDelivery] = (),
    pod: Mapping[str, Any] | None = RUNNING,
) -> None:
    status = execution.ExecutionStatus(phase=phase, signal_deliveries=list(recorded))
    await sender.deliver(client, events, BODY, requests=requests, status=status, pod=pod)


def records(client: FakeKube) -> list[tuple[str, str, str | None]]:
    return [
        (r["signal"], r["result"], r.get("sentSignal"))
        for r in client.patches[-1]["signalDeliveries"]
    ]


async def test_each_request_runs_overseer_signal_in_the_job_container_in_order() -> None:
    client, events = FakeKube(), Events()
    await deliver(
        signals.SignalSender(), client, events, [request("SIGTERM"), request("SIGHUP", 1)]
    )
    sent = [(ns, pod, container, command[5:]) for ns, pod, container, command in client.execs]
    assert sent == [
        ("ns", "pod-1", "job", [signals.COMMAND, "--timeout", "10", "SIGTERM"]),
        ("ns", "pod-1", "job", [signals.COMMAND, "--timeout", "10", "SIGHUP"]),
    ]
    assert signals.COMMAND == "/opt/overseer/library/bin/overseer-signal"
    # each under the once-only wrapper, with a marker of its own in the pod's /tmp
    assert {tuple(command[:3]) for *_, command in client.execs} == {(signals.PYTHON, "-I", "-c")}
    markers = [command[4] for *_, command in client.execs]
    assert len(set(markers)) == 2
    assert all(m.startswith("/tmp/.overseer-signal-") for m in markers)
    assert records(client) == [("SIGTERM", "Sent", "SIGTERM"), ("SIGHUP", "Sent", "SIGHUP")]
    assert [(t, r) for t, r, _ in events] == [("Normal", "SignalSent")] * 2
    assert "SIGTERM" in events[0][2]


async def test_a_recorded_request_is_not_sent_again_nor_one_whose_record_was_lost() -> None:
    sender, client, events = signals.SignalSender(), FakeKube(), Events()
    await deliver(sender, client, events, [request("SIGTERM")])
    recorded = [
        execution.SignalDelivery.model_validate(r) for r in client.patches[-1]["signalDeliveries"]
    ]
    # With its record: nothing to do, nothing written
    await deliver(sender, client, events, [request("SIGTERM")], recorded=recorded)
    assert len(client.execs) == 1 and len(client.patches) == 1
    # Its record lost (a pruned status): written again, not sent again, no second Event
    await deliver(sender, client, events, [request("SIGTERM")])
    assert len(client.execs) == 1
    assert records(client) == [("SIGTERM", "Sent", "SIGTERM")]
    assert len(events) == 1


async def test_unknown_and_late_requests_run_nothing_and_are_recorded_with_warnings() -> None:
    client, events = FakeKube(), Events()
    await deliver(signals.SignalSender(), client, events, [request("SIGFOO")])
    assert client.execs == []
    assert records(client) == [("SIGFOO", "Refused", None)]
    assert events[-1][:2] == ("Warning", "SignalRefused")
    await deliver(signals.SignalSender(), client, events, [request("SIGTERM")], phase="Complete")
    assert client.execs == []
    assert records(client) == [("SIGTERM", "NotDelivered", None)]
    assert events[-1][:2] == ("Warning", "SignalNotDelivered")


async def test_a_pending_execution_keeps_its_request_for_later() -> None:
    client, events = FakeKube(), Events()
    await deliver(
        signals.SignalSender(), client, events, [request("SIGKILL")], phase="Pending", pod=None
    )
    assert client.execs == [] and client.patches == [] and events == []


async def test_a_supervisor_not_listening_is_tried_again_then_given_up() -> None:
    not_yet = kube.ExecResult(1, b"", b"overseer-signal: cannot reach the Overseer supervisor\n")
    sender = signals.SignalSender(max_attempts=2)
    client, events = FakeKube(not_yet, not_yet), Events()
    with pytest.raises(errors.KubeError, match="cannot reach"):
        await deliver(sender, client, events, [request("SIGTERM")])
    assert client.patches == []
    await deliver(sender, client, events, [request("SIGTERM")])
    assert records(client) == [("SIGTERM", "Failed", None)]
    assert events[-1][:2] == ("Warning", "SignalFailed")
    assert "exited 1: overseer-signal: cannot reach" in events[-1][2]


async def test_what_was_done_before_a_retried_failure_is_recorded() -> None:
    client = FakeKube(kube.ExecResult(0, b"", b""), errors.KubeError("API down"))
    with pytest.raises(errors.KubeError):
        await deliver(
            signals.SignalSender(), client, Events(), [request("SIGHUP"), request("SIGTERM", 1)]
        )
    assert records(client) == [("SIGHUP", "Sent", "SIGHUP")]


@pytest.mark.parametrize(
    "answer",
    [
        errors.KubeError("forbidden", 403),
        kube.ExecResult(2, b"", b"unknown signal"),
        kube.ExecResult(127, b"", b""),
    ],
)
async def test_failures_nothing_will_change_are_recorded_at_once(
    answer: kube.ExecResult | errors.KubeError,
) -> None:
    client, events = FakeKube(answer), Events()
    await deliver(signals.SignalSender(), client, events, [request("SIGTERM")])
    assert records(client) == [("SIGTERM", "Failed", None)]
    assert events[-1][:2] == ("Warning", "SignalFailed")


async def test_a_lost_refusal_or_no_op_record_is_written_again_without_a_second_event() -> None:
    sender, client, events = signals.SignalSender(), FakeKube(), Events()
    for _ in range(2):
        await deliver(sender, client, events, [request("SIGFOO")])
        await deliver(sender, client, events, [request("SIGTERM", 1)], phase="Failed")
    assert [reason for _, reason, _ in events] == ["SignalRefused", "SignalNotDelivered"]
    assert len(client.patches) == 4 and records(client) == [("SIGTERM", "NotDelivered", None)]


async def test_overseer_signal_killed_as_the_container_ends_counts_as_sent() -> None:
    # The supervisor killed the job and exited before overseer-signal read its answer.
    client, events = FakeKube(kube.ExecResult(137, b"", b"")), Events()
    await deliver(signals.SignalSender(), client, events, [request("SIGKILL")])
    assert records(client) == [("SIGKILL", "Sent", "SIGKILL")]
    assert events[-1][:2] == ("Normal", "SignalSent")


async def test_a_send_cut_short_as_the_job_ends_says_it_may_have_arrived() -> None:
    sender, client, events = (
        signals.SignalSender(),
        FakeKube(errors.KubeError("stream broke")),
        Events(),
    )
    with pytest.raises(errors.KubeError):
        await deliver(sender, client, events, [request("SIGKILL")])
    await deliver(sender, client, events, [request("SIGKILL")], phase="Killed")
    [record] = client.patches[-1]["signalDeliveries"]
    assert record["result"] == "NotDelivered"
    assert "may have reached the job" in record["message"] and "stream broke" in record["message"]


def run_once(marker: Path, *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-I", "-c", signals.ONCE, str(marker), *command],
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_once_wrapper_sends_a_request_once_even_when_asked_again(tmp_path: Path) -> None:
    """An operator killed after sending, before recording: the next one asks again."""
    marker, counted = tmp_path / "marker", tmp_path / "sent"
    send = ["sh", "-c", f"echo sent >> {counted}"]
    first, again = run_once(marker, *send), run_once(marker, *send)
    assert (first.returncode, first.stdout) == (0, "")
    assert (again.returncode, again.stdout) == (0, "already sent\n")
    assert counted.read_text() == "sent\n"


def test_the_once_wrapper_lets_a_failed_send_be_tried_again(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    failed = run_once(marker, "sh", "-c", "exit 1")
    assert failed.returncode == 1
    assert not marker.exists()
    assert run_once(marker, "true").returncode == 0
    assert marker.exists()
