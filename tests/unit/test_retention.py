"""When a finished execution's Job, and the execution itself, are deleted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from overseer.core import retention as r
from overseer.crd import execution

ENDED = datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
KEEP_JOBS_AN_HOUR = r.Retention(finished_job_ttl=HOUR)
KEEP_ALL_A_DAY = r.Retention(finished_job_ttl=HOUR, execution_ttl=timedelta(days=1))


def status(
    phase: execution.Phase = "Complete", ended: datetime | None = ENDED
) -> execution.ExecutionStatus:
    return execution.ExecutionStatus(phase=phase, start_time=ENDED - HOUR, completion_time=ended)


def plan(
    st: execution.ExecutionStatus,
    now: datetime,
    retention: r.Retention = KEEP_JOBS_AN_HOUR,
    *,
    job: bool = True,
    settled: bool = True,
    owed: bool = False,
) -> r.Plan:
    return r.plan(
        st,
        job_present=job,
        output_settled=settled,
        deliveries_owed=owed,
        now=now,
        retention=retention,
    )


@pytest.mark.parametrize("phase", ["Pending", "Running", None])
def test_nothing_happens_to_an_execution_that_has_not_ended(phase: execution.Phase | None) -> None:
    st = execution.ExecutionStatus(phase=phase)
    assert plan(st, ENDED + timedelta(days=400), KEEP_ALL_A_DAY) == r.NOTHING


def test_the_job_stays_until_its_ttl_then_goes() -> None:
    assert plan(status(), ENDED + timedelta(minutes=5)) == r.Plan(recheck_at=ENDED + HOUR)
    assert plan(status(), ENDED + HOUR) == r.Plan(delete_job=True)


@pytest.mark.parametrize("phase", ["Failed", "TimedOut", "Killed"])
def test_every_terminal_phase_counts(phase: execution.Phase) -> None:
    assert plan(status(phase), ENDED + 2 * HOUR).delete_job


def test_a_zero_ttl_deletes_the_job_as_soon_as_the_output_is_archived() -> None:
    now_ = ENDED + timedelta(seconds=1)
    keep_none = r.Retention(finished_job_ttl=timedelta(0))
    assert plan(status(), now_, keep_none, settled=False) == r.NOTHING
    assert plan(status(), now_, keep_none, settled=True) == r.Plan(delete_job=True)


def test_the_job_of_an_execution_whose_log_is_still_read_stays_whatever_its_age() -> None:
    # The follower's end brings another observation: no re-check for the Job.
    assert plan(status(), ENDED + timedelta(days=3), settled=False) == r.NOTHING


def test_without_a_job_only_the_executions_own_expiry_is_planned() -> None:
    assert plan(status(), ENDED + 2 * HOUR, job=False) == r.NOTHING
    assert plan(status(), ENDED + 2 * HOUR, KEEP_ALL_A_DAY, job=False) == r.Plan(
        recheck_at=ENDED + timedelta(days=1)
    )


def test_the_next_recheck_is_the_earliest_of_what_is_due() -> None:
    got = plan(status(), ENDED + timedelta(minutes=1), KEEP_ALL_A_DAY)
    assert got == r.Plan(recheck_at=ENDED + HOUR)


def test_an_expired_execution_is_deleted_whole() -> None:
    got = plan(status(), ENDED + timedelta(days=1), KEEP_ALL_A_DAY, settled=False)
    assert got == r.Plan(delete_execution=True)


def test_an_ended_execution_without_completion_time_is_left_alone() -> None:
    assert plan(status(ended=None), ENDED + timedelta(days=400), KEEP_ALL_A_DAY) == r.NOTHING


def test_an_expired_execution_waits_for_the_webhooks_it_still_owes() -> None:
    now_ = ENDED + timedelta(days=2)
    got = plan(status(), now_, KEEP_ALL_A_DAY, job=False, owed=True)
    assert got == r.Plan(recheck_at=now_ + r.OWED_RECHECK)
    # Its Job goes all the same: the deliveries need the status, not the pod.
    assert plan(status(), now_, KEEP_ALL_A_DAY, owed=True).delete_job


def test_an_execution_expires_its_ttl_after_its_end() -> None:
    assert r.expires_at(status(), KEEP_ALL_A_DAY) == ENDED + timedelta(days=1)
    assert r.expires_at(status(), KEEP_JOBS_AN_HOUR) is None  # no TTL: never
    assert r.expires_at(status(ended=None), KEEP_ALL_A_DAY) is None
    assert r.expires_at(execution.ExecutionStatus(phase="Running"), KEEP_ALL_A_DAY) is None


def test_the_sweeps_gap_is_a_sixtieth_of_the_ttl_between_a_minute_and_an_hour() -> None:
    assert r.sweep_gap(timedelta(seconds=40)) == timedelta(seconds=60)
    assert r.sweep_gap(10 * HOUR) == timedelta(minutes=10)
    assert r.sweep_gap(timedelta(days=30)) == HOUR


def test_the_next_sweep_is_at_the_earliest_expiry_within_its_bounds() -> None:
    ttl = 10 * HOUR  # a gap of 10 minutes
    soon, later = ENDED + timedelta(minutes=1), ENDED + timedelta(minutes=30)
    assert r.next_sweep(later, swept=ENDED, execution_ttl=ttl) == later
    assert r.next_sweep(soon, swept=ENDED, execution_ttl=ttl) == ENDED + timedelta(minutes=10)
    far = ENDED + timedelta(days=3)
    assert r.next_sweep(far, swept=ENDED, execution_ttl=ttl) == ENDED + HOUR
    assert r.next_sweep(None, swept=ENDED, execution_ttl=ttl) == ENDED + HOUR
