"""Deriving an execution's phase and events from its Job, its pod and the supervisor frames."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from overseer.core import execution_phase as ep
from overseer.core import execution_status as es
from overseer.crd import execution
from overseer_library import protocol

T0 = datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)
POD = "a-job-e2cabde14e-1489895624-840211-x7k2p"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def stamp(seconds: float) -> str:
    """A Kubernetes timestamp (whole seconds, Z)."""
    return at(seconds).strftime("%Y-%m-%dT%H:%M:%SZ")


def unix(seconds: float) -> float:
    return at(seconds).timestamp()


def pod(
    *,
    phase: str = "Running",
    state: dict[str, Any] | None = None,
    init_state: dict[str, Any] | None = None,
    reason: str | None = None,
    message: str | None = None,
    deleting: bool = False,
    conditions: Sequence[dict[str, Any]] = (),
    started: float | None = 0,
) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase, "conditions": list(conditions)}
    if started is not None:
        status["startTime"] = stamp(started)
    if state is not None:
        status["containerStatuses"] = [{"name": "job", "state": state}]
    if init_state is not None:
        status["initContainerStatuses"] = [{"name": "overseer-library", "state": init_state}]
    if reason:
        status["reason"] = reason
    if message:
        status["message"] = message
    metadata: dict[str, Any] = {"name": POD, "creationTimestamp": stamp(0)}
    if deleting:
        metadata["deletionTimestamp"] = stamp(100)
    return {"metadata": metadata, "status": status}


def running(started: float = 1) -> dict[str, Any]:
    return {"running": {"startedAt": stamp(started)}}


def terminated(
    code: int, *, reason: str = "Error", message: str = "", started: float = 1, finished: float = 9
) -> dict[str, Any]:
    return {
        "terminated": {
            "exitCode": code,
            "reason": reason,
            "message": message,
            "startedAt": stamp(started),
            "finishedAt": stamp(finished),
        }
    }


def waiting(reason: str, message: str = "") -> dict[str, Any]:
    return {"waiting": {"reason": reason, "message": message}}


def summary(code: int | None, signal: int | None, last_seq: int = 9) -> str:
    return protocol.encode_summary(protocol.Summary(code, signal, last_seq))


def job(
    *,
    conditions: Sequence[tuple[str, str]] = (),
    backoff: int = 0,
    deadline: int | None = None,
    failed: int = 0,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"backoffLimit": backoff}
    if deadline is not None:
        spec["activeDeadlineSeconds"] = deadline
    status: dict[str, Any] = {
        "startTime": stamp(0),
        "failed": failed,
        "conditions": [
            {"type": kind, "status": "True", "reason": reason, "lastTransitionTime": stamp(50)}
            for kind, reason in conditions
        ],
    }
    return {"spec": spec, "status": status}


def decoded(*lines: bytes) -> list[protocol.Record]:
    return list(protocol.decode_all([b"".join(lines)]))


START = protocol.encode(protocol.Start(1, 7, "backup", unix(1.5)))
OUT = protocol.encode(protocol.Output(2, "stdout", b"hello\n"))
EVENT = protocol.encode(protocol.Event(3, "deploying", {"pct": 40}, unix(2.25)))
EVENT2 = protocol.encode(protocol.Event(4, "deployed", None, unix(3.5)))
EXIT0 = protocol.encode(protocol.Exit(5, code=0, signal=None, time=unix(8.123456)))


def derive(
    observed: ep.Observed, frames: Sequence[protocol.Record] = (), now: float = 10
) -> ep.Derived:
    return ep.derive_phase(observed, frames, at(now))


def statuses(derived: ep.Derived) -> list[str]:
    return [event.status for event in derived.events]


# --- before the job runs ---------------------------------------------------------------


def test_nothing_yet_is_pending_without_events() -> None:
    derived = derive(ep.Observed())
    assert (derived.phase, derived.reason) == ("Pending", "Creating")
    assert derived.events == () and not derived.finished
    assert derived.exit_code is None and derived.completion_time is None


def test_an_unschedulable_pod_stays_pending_and_says_why() -> None:
    condition = {
        "type": "PodScheduled",
        "status": "False",
        "reason": "Unschedulable",
        "message": "0/3 nodes are available: 3 Insufficient memory.",
    }
    derived = derive(ep.Observed(job=job(), pod=pod(phase="Pending", conditions=[condition])))
    assert (derived.phase, derived.reason) == ("Pending", "Unschedulable")
    assert derived.message == "0/3 nodes are available: 3 Insufficient memory."


def test_a_container_being_created_is_pending() -> None:
    derived = derive(ep.Observed(job(), pod(phase="Pending", state=waiting("ContainerCreating"))))
    assert (derived.phase, derived.reason, derived.recheck_at) == (
        "Pending",
        "ContainerCreating",
        None,
    )


@pytest.mark.parametrize("reason", ["ErrImagePull", "ImagePullBackOff"])
def test_a_failing_pull_is_waited_for_during_the_grace_period_then_fails(reason: str) -> None:
    message = 'Back-off pulling image "nope:1"'
    observed = ep.Observed(job(), pod(phase="Pending", state=waiting(reason, message), started=5))
    early = derive(observed, now=30)
    assert (early.phase, early.reason, early.message) == ("Pending", reason, message)
    assert early.recheck_at == at(5) + ep.DEFAULT_GRACE
    late = derive(observed, now=5 + ep.DEFAULT_GRACE.total_seconds())
    assert (late.phase, late.reason) == ("Failed", "ImagePullFailed")
    assert late.finished and late.recheck_at is None
    assert message in (late.message or "") and "60s" in (late.message or "")
    assert statuses(late) == ["fail"], "it never started"
    assert late.events[-1].data == {"reason": "ImagePullFailed"}


@pytest.mark.parametrize("reason", ["ErrImageNeverPull", "InvalidImageName"])
def test_an_image_that_can_never_be_pulled_fails_at_once(reason: str) -> None:
    derived = derive(ep.Observed(job(), pod(phase="Pending", state=waiting(reason, "no"))), now=1)
    assert (derived.phase, derived.reason, derived.message) == ("Failed", "ImagePullFailed", "no")


def test_the_library_init_container_pull_counts_too() -> None:
    observed = ep.Observed(
        job(), pod(phase="Pending", init_state=waiting("ErrImageNeverPull", "local only"))
    )
    assert derive(observed).reason == "ImagePullFailed"


def test_a_non_root_check_that_fails_is_final_but_a_missing_secret_gets_grace() -> None:
    root = waiting(
        "CreateContainerConfigError", "container has runAsNonRoot and image will run as root"
    )
    assert derive(ep.Observed(job(), pod(phase="Pending", state=root)), now=1).phase == "Failed"
    missing = waiting("CreateContainerConfigError", 'secret "x-params" not found')
    observed = ep.Observed(job(), pod(phase="Pending", state=missing))
    assert derive(observed, now=1).phase == "Pending"
    late = derive(observed, now=61)
    assert (late.phase, late.reason) == ("Failed", "ContainerConfigError")


def test_a_custom_grace() -> None:
    observed = ep.Observed(job(), pod(phase="Pending", state=waiting("ImagePullBackOff")))
    assert ep.derive_phase(observed, (), at(11), grace=timedelta(seconds=10)).phase == "Failed"
    assert ep.derive_phase(observed, (), at(9), grace=timedelta(seconds=10)).phase == "Pending"


# --- running ---------------------------------------------------------------------------


def test_a_running_container_is_running_and_started() -> None:
    derived = derive(ep.Observed(job(), pod(state=running(started=2))))
    assert (derived.phase, derived.reason) == ("Running", "Running")
    assert derived.start_time == at(2)
    (start,) = derived.events
    assert (start.id, start.status, start.time, start.data) == (
        "start",
        "start",
        at(2),
        {"pod": POD},
    )


def test_frames_give_the_start_time_and_the_custom_events_in_order() -> None:
    derived = derive(ep.Observed(job(), pod(state=running())), decoded(START, OUT, EVENT, EVENT2))
    assert derived.phase == "Running"
    assert derived.start_time == at(1.5), "the start frame's time, to the microsecond"
    assert statuses(derived) == ["start", "deploying", "deployed"]
    deploying = derived.events[1]
    assert deploying.id == f"{POD}:3"
    assert deploying.time == at(2.25)
    assert deploying.data == {"pct": 40}
    assert derived.events[2].data is None
    assert derived.last_seq == 4


def test_a_start_frame_is_enough_even_before_the_pod_status_says_running() -> None:
    observed = ep.Observed(job(), pod(phase="Pending", state=waiting("ContainerCreating")))
    derived = derive(observed, decoded(START))
    assert derived.phase == "Running" and statuses(derived) == ["start"]


def test_duplicates_and_order_of_frames_change_nothing() -> None:
    observed = ep.Observed(job(), pod(state=terminated(0)))
    frames = decoded(START, OUT, EVENT, EVENT2, EXIT0)
    shuffled = frames * 3 + decoded(b"garbage line\n", b"\x1eOVS1 {broken\n")
    random.Random(7).shuffle(shuffled)
    assert derive(observed, shuffled) == derive(observed, frames)


def test_a_pod_being_deleted_while_the_job_runs_is_still_running() -> None:
    derived = derive(ep.Observed(job(), pod(state=running(), deleting=True)), decoded(START))
    assert (derived.phase, derived.reason) == ("Running", "Terminating")


# --- how it ends -----------------------------------------------------------------------


def test_exit_zero_completes() -> None:
    observed = ep.Observed(job(), pod(phase="Succeeded", state=terminated(0)))
    derived = derive(observed, decoded(START, EVENT, EXIT0))
    assert (derived.phase, derived.reason, derived.exit_code) == ("Complete", "Completed", 0)
    assert derived.signal is None
    assert derived.completion_time == datetime.fromtimestamp(unix(8.123456), UTC)
    assert statuses(derived) == ["start", "deploying", "complete"]
    assert derived.events[-1].id == "complete"
    assert derived.events[-1].data == {"exitCode": 0, "reason": "Completed"}
    assert derived.finished


def test_without_frames_the_pod_status_gives_the_times() -> None:
    derived = derive(ep.Observed(job(), pod(state=terminated(0, started=3, finished=7))))
    assert (derived.start_time, derived.completion_time) == (at(3), at(7))
    assert statuses(derived) == ["start", "complete"]


def test_a_non_zero_exit_fails_with_its_code() -> None:
    observed = ep.Observed(job(), pod(phase="Failed", state=terminated(3)))
    derived = derive(observed, decoded(START))
    assert (derived.phase, derived.reason, derived.exit_code) == ("Failed", "ExitCode", 3)
    assert derived.message == "the job exited with code 3"
    assert statuses(derived) == ["start", "fail"]
    assert derived.events[-1].data == {"exitCode": 3, "reason": "ExitCode"}


def test_the_pod_status_decides_not_a_forged_frame_or_summary() -> None:
    forged = protocol.encode(protocol.Exit(9, code=None, signal=9, time=unix(8)))
    state = terminated(1, message=summary(None, 9))
    derived = derive(ep.Observed(job(), pod(phase="Failed", state=state)), decoded(START, forged))
    assert (derived.phase, derived.exit_code, derived.signal) == ("Failed", 1, None)
    lying = derive(ep.Observed(job(), pod(state=terminated(1))), decoded(START, EXIT0))
    assert (lying.phase, lying.exit_code) == ("Failed", 1)


def test_a_frame_repeating_a_seq_does_not_replace_the_first() -> None:
    forged = protocol.encode(protocol.Event(3, "forged", None, unix(2.5)))
    derived = derive(ep.Observed(job(), pod(state=running())), decoded(START, OUT, EVENT, forged))
    assert statuses(derived) == ["start", "deploying"]


def test_a_signal_ends_with_128_plus_n_and_its_name() -> None:
    state = terminated(139, message=summary(None, 11))
    derived = derive(ep.Observed(job(), pod(phase="Failed", state=state)), decoded(START))
    assert (derived.phase, derived.reason) == ("Failed", "Signalled")
    assert (derived.exit_code, derived.signal) == (139, "SIGSEGV")
    assert derived.events[-1].data == {"exitCode": 139, "signal": "SIGSEGV", "reason": "Signalled"}


def test_the_exit_frame_names_the_signal_when_the_summary_is_lost() -> None:
    exit_ = protocol.encode(protocol.Exit(5, code=None, signal=15, time=unix(8)))
    derived = derive(ep.Observed(job(), pod(state=terminated(143))), decoded(START, exit_))
    assert derived.signal == "SIGTERM"
    assert derive(ep.Observed(job(), pod(state=terminated(143))), decoded(START)).signal is None


def request(signal: str, seconds: float) -> execution.SignalRequest:
    return execution.SignalRequest(signal=signal, requested_at=at(seconds))


def test_a_signal_requested_through_the_execution_kills_it() -> None:
    observed = ep.Observed(
        job(),
        pod(phase="Failed", state=terminated(143, message=summary(None, 15))),
        signals=[request("SIGTERM", 5)],
    )
    derived = derive(observed, decoded(START))
    assert (derived.phase, derived.reason, derived.exit_code) == ("Killed", "Killed", 143)
    assert derived.signal == "SIGTERM" and "SIGTERM" in (derived.message or "")
    assert statuses(derived) == ["start", "fail"]
    assert derived.events[-1].data == {"exitCode": 143, "signal": "SIGTERM", "reason": "Killed"}


def test_a_request_after_the_end_does_not_make_a_failure_a_kill() -> None:
    observed = ep.Observed(
        job(),
        pod(phase="Failed", state=terminated(1, finished=9)),
        signals=[request("SIGTERM", 20)],
    )
    assert derive(observed, now=30).phase == "Failed"


def test_a_job_that_handles_the_requested_signal_and_exits_zero_completes() -> None:
    observed = ep.Observed(job(), pod(state=terminated(0)), signals=[request("SIGTERM", 5)])
    assert derive(observed).phase == "Complete"


def test_a_pod_deleted_by_someone_while_running_fails_as_pod_deleted() -> None:
    state = terminated(143, message=summary(None, 15))
    observed = ep.Observed(job(), pod(phase="Failed", state=state, deleting=True))
    derived = derive(observed, decoded(START))
    assert (derived.phase, derived.reason, derived.exit_code) == ("Failed", "PodDeleted", 143)


def test_a_pod_gone_without_a_trace_fails_as_pod_deleted() -> None:
    derived = derive(ep.Observed(job(), pod(state=running()), pod_gone=True), decoded(START))
    assert (derived.phase, derived.reason, derived.exit_code) == ("Failed", "PodDeleted", None)
    assert statuses(derived) == ["start", "fail"]
    assert derived.completion_time == at(10), "now, when nothing says when it ended"


def test_a_pod_gone_after_its_exit_frame_keeps_the_frame_outcome() -> None:
    gone = ep.Observed(job(), None, pod_name=POD, pod_gone=True)
    derived = derive(gone, decoded(START, EVENT, EXIT0))
    assert (derived.phase, derived.exit_code) == ("Complete", 0)
    assert derived.events[1].id == f"{POD}:3"


def test_oom_killed() -> None:
    state = terminated(137, reason="OOMKilled", message=summary(None, 9))
    derived = derive(ep.Observed(job(), pod(phase="Failed", state=state)), decoded(START))
    assert (derived.phase, derived.reason, derived.exit_code) == ("Failed", "OOMKilled", 137)
    assert derived.signal == "SIGKILL"


def test_evicted() -> None:
    observed = ep.Observed(
        job(),
        pod(phase="Failed", reason="Evicted", message="The node was low on resource: memory."),
    )
    derived = derive(observed)
    assert (derived.phase, derived.reason) == ("Failed", "Evicted")
    assert derived.message == "The node was low on resource: memory."
    assert derived.exit_code is None


def test_disrupted() -> None:
    condition = {
        "type": "DisruptionTarget",
        "status": "True",
        "reason": "PreemptionByScheduler",
        "message": "preempted by a higher priority pod",
    }
    observed = ep.Observed(
        job(), pod(phase="Failed", state=terminated(143), conditions=[condition], deleting=True)
    )
    derived = derive(observed)
    assert (derived.reason, derived.message) == ("Disrupted", "preempted by a higher priority pod")


def test_a_node_refusing_the_pod_fails_with_its_reason() -> None:
    observed = ep.Observed(job(), pod(phase="Failed", reason="OutOfcpu", message="no cpu"))
    assert (derive(observed).reason, derive(observed).message) == ("OutOfcpu", "no cpu")


@pytest.mark.parametrize(
    ("code", "reason"),
    [(127, "ProgramNotFound"), (126, "ProgramNotExecutable"), (125, "SetupFailed")],
)
def test_a_program_that_cannot_start_says_why_and_never_started(code: int, reason: str) -> None:
    log = protocol.encode(protocol.Log(1, "error", "program not found: backup (PATH=/x)", unix(1)))
    exit_ = protocol.encode(protocol.Exit(2, code=code, signal=None, time=unix(1.1)))
    observed = ep.Observed(job(), pod(phase="Failed", state=terminated(code)))
    derived = derive(observed, decoded(log, exit_))
    assert (derived.phase, derived.reason) == ("Failed", reason)
    assert derived.message == "program not found: backup (PATH=/x)"
    assert statuses(derived) == ["fail"]
    assert derived.start_time is None


def test_a_job_that_itself_exits_127_is_an_ordinary_failure() -> None:
    exit_ = protocol.encode(protocol.Exit(2, code=127, signal=None, time=unix(3)))
    derived = derive(ep.Observed(job(), pod(state=terminated(127))), decoded(START, exit_))
    assert derived.reason == "ExitCode"


def test_a_container_the_runtime_could_not_start() -> None:
    state = terminated(128, reason="StartError", message="exec: no such file", started=-1e9)
    derived = derive(ep.Observed(job(), pod(phase="Failed", state=state)))
    assert (derived.reason, derived.message) == ("ContainerStartFailed", "exec: no such file")
    assert statuses(derived) == ["fail"]


def test_a_failed_library_copy() -> None:
    observed = ep.Observed(
        job(), pod(phase="Failed", init_state=terminated(1, message="cp: no space left"))
    )
    derived = derive(observed)
    assert derived.reason == "LibraryCopyFailed" and "no space left" in (derived.message or "")


# --- time-outs -------------------------------------------------------------------------


@pytest.mark.parametrize("condition", ["Failed", "FailureTarget"])
def test_a_deadline_exceeded_job_times_out(condition: str) -> None:
    observed = ep.Observed(
        job(conditions=[(condition, "DeadlineExceeded")], deadline=30),
        pod(phase="Failed", state=terminated(143, message=summary(None, 15)), deleting=True),
    )
    derived = derive(observed, decoded(START), now=60)
    assert (derived.phase, derived.reason, derived.exit_code) == (
        "TimedOut",
        "DeadlineExceeded",
        143,
    )
    assert "30s" in (derived.message or "")
    assert statuses(derived) == ["start", "time-out"]
    assert derived.events[-1].id == "time-out"


def test_the_deadline_passed_times_out_before_the_job_condition_arrives() -> None:
    observed = ep.Observed(
        job(deadline=30), pod(phase="Failed", state=terminated(143, finished=31), deleting=True)
    )
    assert derive(observed, now=32).phase == "TimedOut"
    early = ep.Observed(job(deadline=30), pod(state=terminated(143, finished=20), deleting=True))
    assert derive(early, now=32).reason == "PodDeleted", "it ended before the deadline"


def test_the_pods_own_deadline_times_out() -> None:
    observed = ep.Observed(job(), pod(phase="Failed", reason="DeadlineExceeded"))
    assert derive(observed).phase == "TimedOut"


def test_completing_just_before_the_deadline_is_complete() -> None:
    observed = ep.Observed(job(conditions=[("Complete", "")], deadline=5), pod(state=terminated(0)))
    assert derive(observed, now=60).phase == "Complete"


# --- retries and the Job's word --------------------------------------------------------


def test_a_failed_attempt_with_retries_left_waits_for_the_next_one() -> None:
    observed = ep.Observed(job(backoff=2, failed=1), pod(phase="Failed", state=terminated(3)))
    derived = derive(observed, decoded(START))
    assert (derived.phase, derived.reason) == ("Running", "Retrying")
    assert not derived.finished and statuses(derived) == ["start"]


def test_the_last_attempt_fails_when_the_job_says_so() -> None:
    observed = ep.Observed(
        job(conditions=[("Failed", "BackoffLimitExceeded")], backoff=2, failed=3),
        pod(phase="Failed", state=terminated(3)),
    )
    derived = derive(observed, decoded(START))
    assert (derived.phase, derived.reason, derived.exit_code) == ("Failed", "ExitCode", 3)


def test_a_kill_is_not_retried() -> None:
    observed = ep.Observed(
        job(backoff=2),
        pod(phase="Failed", state=terminated(143)),
        signals=[request("SIGTERM", 2)],
    )
    assert derive(observed).phase == "Killed"


def test_the_job_alone_tells_the_outcome_when_no_pod_is_left() -> None:
    complete = derive(ep.Observed(job(conditions=[("Complete", "")]), pod_gone=True))
    assert (complete.phase, complete.exit_code) == ("Complete", None)
    failed = derive(ep.Observed(job(conditions=[("Failed", "BackoffLimitExceeded")])))
    assert (failed.phase, failed.reason) == ("Failed", "BackoffLimitExceeded")
    assert failed.completion_time == at(50), "the condition's time"


def test_success_criteria_met_is_complete() -> None:
    assert (
        derive(ep.Observed(job(conditions=[("SuccessCriteriaMet", "CompletionsReached")]))).phase
        == "Complete"
    )


# --- merging events --------------------------------------------------------------------


def event(status: str, seconds: float, id_: str | None = None) -> execution.Event:
    return execution.Event(id=id_ if id_ is not None else status, status=status, time=at(seconds))


def test_merging_a_rederivation_adds_nothing() -> None:
    observed = ep.Observed(job(), pod(state=terminated(0)))
    derived = derive(observed, decoded(START, EVENT, EVENT2, EXIT0))
    once = es.merge_events([], derived.events)
    assert [e.status for e in once] == ["start", "deploying", "deployed", "complete"]
    assert es.merge_events(once, derived.events) == once
    # After an operator restart the log is read again from the start.
    again = derive(observed, decoded(START, EVENT, EVENT2, EXIT0) * 2)
    assert es.merge_events(once, again.events) == once


def test_merging_while_running_then_at_the_end_adds_only_what_is_new() -> None:
    early = derive(ep.Observed(job(), pod(state=running())), decoded(START, EVENT))
    recorded = es.merge_events([], early.events)
    late = derive(
        ep.Observed(job(), pod(state=terminated(0))), decoded(START, EVENT, EVENT2, EXIT0)
    )
    merged = es.merge_events(recorded, late.events)
    assert [e.id for e in merged] == ["start", f"{POD}:3", f"{POD}:4", "complete"]
    assert merged[:2] == recorded


def test_one_start_and_one_terminal_event_at_most_the_first_recorded_wins() -> None:
    recorded = [event("start", 1), event("complete", 9)]
    merged = es.merge_events(recorded, [event("start", 2, "start-2"), event("fail", 20)])
    assert merged == recorded


def test_events_are_ordered_start_custom_by_time_terminal() -> None:
    merged = es.merge_events(
        [event("complete", 9), event("b", 5, "p:2")],
        [event("a", 3, "p:1"), event("start", 1), event("c", 8, "q:1")],
    )
    assert [e.status for e in merged] == ["start", "a", "b", "c", "complete"]
    assert es.merge_events(merged, merged) == merged


def test_events_without_an_id_are_known_by_status_and_time() -> None:
    plain = execution.Event(status="note", time=at(4))
    assert es.merge_events([plain], [execution.Event(status="note", time=at(4))]) == [plain]
    assert len(es.merge_events([plain], [execution.Event(status="note", time=at(5))])) == 2


def test_custom_events_of_two_attempts_are_distinct() -> None:
    first = derive(
        ep.Observed(job(backoff=1), pod(state=running()), pod_name="p-1"), decoded(EVENT)
    )
    second = derive(
        ep.Observed(job(backoff=1), pod(state=running()), pod_name="p-2"), decoded(EVENT)
    )
    merged = es.merge_events(es.merge_events([], first.events), second.events)
    assert [e.id for e in merged if e.status == "deploying"] == ["p-1:3", "p-2:3"]


# --- folding into the status -----------------------------------------------------------


def test_derive_status_writes_the_outcome_and_the_duration() -> None:
    derived = derive(ep.Observed(job(), pod(state=terminated(0))), decoded(START, EXIT0))
    status = es.derive_status(execution.ExecutionStatus(), derived)
    assert (status.phase, status.exit_code, status.reason) == ("Complete", 0, "Completed")
    assert status.start_time == at(1.5)
    assert status.duration == "6.6s"
    assert status.pod_name == POD
    assert [e.status for e in status.events] == ["start", "complete"]


def test_a_terminal_status_never_changes_phase() -> None:
    done = es.derive_status(
        execution.ExecutionStatus(),
        derive(ep.Observed(job(), pod(state=terminated(0))), decoded(START, EXIT0)),
    )
    later = derive(ep.Observed(job(), None, pod_name=POD, pod_gone=True), decoded(START))
    assert later.phase == "Failed"
    status = es.derive_status(done, later)
    assert (status.phase, status.reason, status.exit_code) == ("Complete", "Completed", 0)
    assert [e.status for e in status.events] == ["start", "complete"]


def test_a_terminal_status_gains_details_from_the_same_outcome() -> None:
    timed_out = ep.Observed(
        job(conditions=[("FailureTarget", "DeadlineExceeded")], deadline=5), pod(state=running())
    )
    first = es.derive_status(execution.ExecutionStatus(), derive(timed_out, decoded(START)))
    assert (first.phase, first.exit_code) == ("TimedOut", None)
    ended = dataclasses.replace(
        timed_out, pod=pod(state=terminated(143, message=summary(None, 15)))
    )
    second = es.derive_status(first, derive(ended, decoded(START)))
    assert (second.phase, second.exit_code, second.signal) == ("TimedOut", 143, "SIGTERM")
    assert second.completion_time == first.completion_time


def test_running_never_goes_back_to_pending_and_the_first_start_is_kept() -> None:
    first = es.derive_status(
        execution.ExecutionStatus(),
        derive(ep.Observed(job(backoff=1), pod(state=running(started=2)))),
    )
    retry = derive(
        ep.Observed(
            job(backoff=1, failed=1), pod(phase="Pending", state=waiting("ContainerCreating"))
        )
    )
    status = es.derive_status(first, retry)
    assert status.phase == "Running"
    assert status.start_time == at(2)


def test_a_succeeded_pod_without_container_statuses_completes() -> None:
    derived = derive(ep.Observed(job(), pod(phase="Succeeded")))
    assert (derived.phase, derived.reason) == ("Complete", "Completed")


# --- which ends count as stopped on request --------------------------------------------


def test_a_requested_kill_ends_it_killed_with_sigkill() -> None:
    observed = ep.Observed(
        job(),
        pod(phase="Failed", state=terminated(137, message=summary(None, 9))),
        signals=[request("SIGTERM", 1), request("SIGHUP", 2), request("SIGKILL", 5)],
    )
    derived = derive(observed, decoded(START))
    assert (derived.phase, derived.reason, derived.signal) == ("Killed", "Killed", "SIGKILL")
    assert derived.events[-1].data == {"exitCode": 137, "signal": "SIGKILL", "reason": "Killed"}


def test_the_kill_after_an_ignored_requested_term_ends_it_killed() -> None:
    # TERM was asked for and ignored; killAfter later the supervisor sent KILL.
    state = terminated(137, message=summary(None, 9))
    observed = ep.Observed(job(), pod(phase="Failed", state=state), signals=[request("SIGTERM", 2)])
    derived = derive(observed, decoded(START))
    assert (derived.phase, derived.reason, derived.signal) == ("Killed", "Killed", "SIGKILL")
    # A HUP asked for is not a stop: a KILL after it is no escalation
    observed = ep.Observed(job(), pod(phase="Failed", state=state), signals=[request("SIGHUP", 2)])
    assert derive(observed, decoded(START)).reason == "Signalled"


def test_an_untrapped_requested_hup_ends_it_killed() -> None:
    state = terminated(129, message=summary(None, 1))
    observed = ep.Observed(job(), pod(phase="Failed", state=state), signals=[request("SIGHUP", 2)])
    derived = derive(observed, decoded(START))
    assert (derived.phase, derived.signal) == ("Killed", "SIGHUP")


def test_a_trapped_term_followed_by_a_non_zero_exit_is_a_kill() -> None:
    observed = ep.Observed(
        job(), pod(phase="Failed", state=terminated(1)), signals=[request("SIGTERM", 2)]
    )
    assert derive(observed, decoded(START)).phase == "Killed"


def test_a_trapped_hup_then_a_failure_of_its_own_is_a_failure() -> None:
    observed = ep.Observed(
        job(), pod(phase="Failed", state=terminated(3)), signals=[request("SIGHUP", 2)]
    )
    derived = derive(observed, decoded(START))
    assert (derived.phase, derived.reason) == ("Failed", "ExitCode")


def test_a_signal_nobody_requested_is_not_a_kill_even_after_a_request() -> None:
    # TERM was asked for (and caught); the kernel's OOM killer sent the KILL.
    state = terminated(137, reason="OOMKilled", message=summary(None, 9))
    observed = ep.Observed(job(), pod(phase="Failed", state=state), signals=[request("SIGTERM", 2)])
    assert derive(observed, decoded(START)).reason == "OOMKilled"


def test_a_refused_request_changes_nothing() -> None:
    observed = ep.Observed(
        job(), pod(phase="Failed", state=terminated(1)), signals=[request("SIGFOO", 2)]
    )
    assert derive(observed, decoded(START)).phase == "Failed"


def test_a_caught_usr1_does_not_stop_the_retries() -> None:
    observed = ep.Observed(
        job(backoff=2, failed=1),
        pod(phase="Failed", state=terminated(3)),
        signals=[request("SIGUSR1", 2)],
    )
    assert derive(observed, decoded(START)).reason == "Retrying"


def test_a_kill_requested_within_the_whole_second_the_pod_says_it_ended_counts() -> None:
    # The pod says 10:00:09 (whole seconds); the request was at 10:00:09.6; no exit frame.
    state = terminated(137, message=summary(None, 9), finished=9)
    observed = ep.Observed(
        job(), pod(phase="Failed", state=state), signals=[request("SIGKILL", 9.6)]
    )
    assert derive(observed, decoded(START), now=30).phase == "Killed"
    # A request a second later than that came after the end
    late = dataclasses.replace(observed, signals=[request("SIGKILL", 10.2)])
    assert derive(late, decoded(START), now=30).reason == "Signalled"


# --- times to the microsecond ----------------------------------------------------------


def test_the_pods_whole_second_times_give_way_to_the_supervisors_frames() -> None:
    # Given a start seen in the pod status before the log was read (whole seconds: the
    # container started at 1.x, the pod says 1), refined by the start frame, then a
    # complete seen in the pod status before the exit frame was read
    early = derive(ep.Observed(job(), pod(state=running(started=1))))
    ended_unread = derive(
        ep.Observed(job(), pod(state=terminated(0, finished=8))), decoded(START, EVENT, EVENT2)
    )
    status = es.derive_status(execution.ExecutionStatus(), early)
    assert [(e.status, e.time) for e in status.events] == [("start", at(1))]
    assert status.start_time == at(1)
    status = es.derive_status(status, ended_unread)
    assert [(e.status, e.time) for e in status.events] == [
        ("start", at(1.5)),
        ("deploying", at(2.25)),
        ("deployed", at(3.5)),
        ("complete", at(8)),
    ]
    # When the whole log is read: the exit frame's microseconds replace the pod's too
    read = derive(
        ep.Observed(job(), pod(state=terminated(0, finished=8))),
        decoded(START, EVENT, EVENT2, EXIT0),
    )
    status = es.derive_status(status, read)
    exited = datetime.fromtimestamp(unix(8.123456), UTC)
    assert [(e.id, e.status, e.time) for e in status.events] == [
        ("start", "start", at(1.5)),
        (f"{POD}:3", "deploying", at(2.25)),
        (f"{POD}:4", "deployed", at(3.5)),
        ("complete", "complete", exited),
    ]
    assert status.events[0].data == {"pod": POD}
    assert status.events[-1].data == {"exitCode": 0, "reason": "Completed"}
    times = [e.time for e in status.events]
    assert times == sorted(times) and len(set(times)) == 4
    assert (status.start_time, status.completion_time) == (at(1.5), exited)
    # And deriving again changes nothing
    assert es.derive_status(status, read) == status


def test_a_time_from_a_frame_is_never_replaced() -> None:
    recorded = [event("start", 1.5), event("complete", 8.25)]
    assert es.merge_events(recorded, [event("start", 1.75), event("complete", 8.5)]) == recorded


def test_a_whole_second_time_is_refined_by_a_time_moments_from_it_only() -> None:
    # A frame is a few moments from the pod status's time of the same event (before it,
    # even: the exit frame is written before the container ends); a derivation long
    # after, from an end seen anew (its Job collected, say), is not a refinement
    recorded = [event("start", 1), event("complete", 8)]
    assert es.merge_events(recorded, [event("start", 2.5), event("complete", 7.75)]) == [
        event("start", 2.5),
        event("complete", 7.75),
    ]
    later = [event("start", 1.5 + 86_400), event("complete", 8.5 + 7 * 86_400)]
    assert es.merge_events(recorded, later) == recorded


def test_a_later_attempts_start_frame_does_not_move_the_first_attempts_start() -> None:
    first = es.derive_status(
        execution.ExecutionStatus(),
        derive(ep.Observed(job(backoff=1), pod(state=running(started=2)), pod_name="p-1")),
    )
    second = derive(
        ep.Observed(job(backoff=1, failed=1), pod(state=running(started=5)), pod_name="p-2"),
        decoded(protocol.encode(protocol.Start(1, 7, "backup", unix(5.5)))),
    )
    status = es.derive_status(first, second)
    assert [(e.status, e.time) for e in status.events] == [("start", at(2))]
    assert status.start_time == at(2)
