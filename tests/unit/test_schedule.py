"""Cron times in a time zone, daylight-saving changes, and what is due after an outage."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from overseer.core import names, schedule
from overseer.crd import definition as defn
from overseer.crd import execution as execution_

PARIS = "Europe/Paris"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def cron(expression: str, timezone: str | None = None) -> defn.Schedule:
    return defn.Schedule(cron=expression, timezone=timezone)


def after(expression: str, start: datetime, count: int, timezone: str | None = None) -> list:
    times = schedule.Cron.of(cron(expression, timezone)).times_after(start)
    return list(itertools.islice(times, count))


def until(expression: str, end: datetime, count: int, timezone: str | None = None) -> list:
    times = schedule.Cron.of(cron(expression, timezone)).times_until(end)
    return list(itertools.islice(times, count))


def local(instants: list[datetime], timezone: str) -> list[str]:
    return [i.astimezone(ZoneInfo(timezone)).strftime("%m-%d %H:%M%z") for i in instants]


# --- iterating ----------------------------------------------------------------------------


def test_every_minute_in_utc_is_strictly_after_the_start() -> None:
    assert after("* * * * *", utc(2026, 1, 1, 9, 0), 2) == [
        utc(2026, 1, 1, 9, 1),
        utc(2026, 1, 1, 9, 2),
    ]
    assert after("* * * * *", utc(2026, 1, 1, 9, 0, 59) + timedelta(microseconds=999999), 1) == [
        utc(2026, 1, 1, 9, 1)
    ]


def test_looking_back_includes_the_end_itself() -> None:
    assert until("* * * * *", utc(2026, 1, 1, 9, 1), 2) == [
        utc(2026, 1, 1, 9, 1),
        utc(2026, 1, 1, 9, 0),
    ]


def test_a_time_zone_moves_the_times() -> None:
    # 03:00 in Paris is 02:00 UTC in winter, 01:00 UTC in summer.
    assert after("0 3 * * *", utc(2026, 1, 10), 1, PARIS) == [utc(2026, 1, 10, 2)]
    assert after("0 3 * * *", utc(2026, 7, 10), 1, PARIS) == [utc(2026, 7, 10, 1)]


def test_a_wall_clock_time_skipped_by_the_clock_runs_when_the_gap_ends() -> None:
    # 2026-03-29 in Paris: 02:00 CET becomes 03:00 CEST; 02:30 does not exist that day.
    times = after("30 2 * * *", utc(2026, 3, 28, 12), 2, PARIS)
    assert local(times, PARIS) == ["03-29 03:00+0200", "03-30 02:30+0200"]
    assert times[0] == utc(2026, 3, 29, 1)


def test_two_skipped_wall_clock_times_run_once_at_the_gap_end() -> None:
    times = after("0,30 2 * * *", utc(2026, 3, 28, 12), 3, PARIS)
    assert local(times, PARIS) == ["03-29 03:00+0200", "03-30 02:00+0200", "03-30 02:30+0200"]


def test_an_interval_job_skips_the_missing_hour() -> None:
    times = after("*/30 * * * *", utc(2026, 3, 29, 0, 15), 4, PARIS)
    assert local(times, PARIS) == [
        "03-29 01:30+0100",
        "03-29 03:00+0200",
        "03-29 03:30+0200",
        "03-29 04:00+0200",
    ]
    # Elapsed time between runs stays 30 minutes.
    assert {b - a for a, b in itertools.pairwise(times)} == {timedelta(minutes=30)}


def test_a_wall_clock_time_repeated_by_the_clock_runs_once_at_its_first_occurrence() -> None:
    # 2026-10-25 in Paris: 03:00 CEST becomes 02:00 CET; 02:30 happens twice.
    times = after("30 2 * * *", utc(2026, 10, 24, 12), 2, PARIS)
    assert local(times, PARIS) == ["10-25 02:30+0200", "10-26 02:30+0100"]


def test_an_interval_job_runs_in_both_passes_of_the_repeated_hour() -> None:
    times = after("*/30 * * * *", utc(2026, 10, 24, 23, 45), 6, PARIS)
    assert local(times, PARIS) == [
        "10-25 02:00+0200",
        "10-25 02:30+0200",
        "10-25 02:00+0100",
        "10-25 02:30+0100",
        "10-25 03:00+0100",
        "10-25 03:30+0100",
    ]
    assert {b - a for a, b in itertools.pairwise(times)} == {timedelta(minutes=30)}


def test_hourly_is_an_interval_and_daily_a_wall_clock_job() -> None:
    assert not schedule.Cron.of(cron("@hourly", PARIS)).follows_clock
    assert schedule.Cron.of(cron("@daily", PARIS)).follows_clock
    assert not schedule.Cron.of(cron("5 * * * *", PARIS)).follows_clock
    assert schedule.Cron.of(cron("5 4 * * *", PARIS)).follows_clock
    hourly = after("@hourly", utc(2026, 10, 24, 23, 30), 3, PARIS)
    assert local(hourly, PARIS) == ["10-25 02:00+0200", "10-25 02:00+0100", "10-25 03:00+0100"]


def test_a_half_hour_shift_ends_its_gap_on_the_half_hour() -> None:
    # Lord Howe Island moves its clock by 30 minutes: 2026-10-04 02:00 becomes 02:30.
    zone = "Australia/Lord_Howe"
    times = after("15 2 * * *", utc(2026, 10, 2), 3, zone)
    assert local(times, zone) == ["10-03 02:15+1030", "10-04 02:30+1100", "10-05 02:15+1100"]


def test_new_york_spring_forward() -> None:
    zone = "America/New_York"
    times = after("30 2 * * *", utc(2026, 3, 7, 12), 2, zone)
    assert local(times, zone) == ["03-08 03:00-0400", "03-09 02:30-0400"]


@pytest.mark.parametrize(
    ("expression", "timezone"),
    [
        ("*/30 * * * *", PARIS),
        ("30 2 * * *", PARIS),
        ("0,30 2 * * *", PARIS),
        ("*/15 * * * *", "Australia/Lord_Howe"),
        ("*/20 * * * *", "America/New_York"),
    ],
)
@pytest.mark.parametrize("start", [utc(2026, 3, 27), utc(2026, 10, 2), utc(2026, 10, 23)])
def test_looking_back_finds_the_same_times_as_looking_forward(
    expression: str, timezone: str, start: datetime
) -> None:
    forward = after(expression, start, 300, timezone)
    backward = until(expression, forward[-1], 300, timezone)
    assert backward == forward[::-1]
    assert forward == sorted(set(forward))


# --- planning -----------------------------------------------------------------------------

EVERY_MINUTE = cron("* * * * *")
HOUR = timedelta(hours=1)


def test_the_time_just_passed_is_due_and_the_next_is_announced() -> None:
    plan = schedule.plan_schedule(
        EVERY_MINUTE,
        since=utc(2026, 1, 1, 9, 0),
        now=utc(2026, 1, 1, 9, 1, 0, 200),
        starting_deadline=HOUR,
    )
    assert plan.due == utc(2026, 1, 1, 9, 1)
    assert plan.next_time == utc(2026, 1, 1, 9, 2)
    assert (plan.missed, plan.too_many_missed) == (0, False)


def test_nothing_is_due_before_the_time() -> None:
    plan = schedule.plan_schedule(
        EVERY_MINUTE,
        since=utc(2026, 1, 1, 9, 1),
        now=utc(2026, 1, 1, 9, 1, 59),
        starting_deadline=HOUR,
    )
    assert plan.due is None
    assert plan.next_time == utc(2026, 1, 1, 9, 2)


def test_after_an_outage_only_the_most_recent_missed_time_runs() -> None:
    plan = schedule.plan_schedule(
        EVERY_MINUTE,
        since=utc(2026, 1, 1, 9, 0),
        now=utc(2026, 1, 1, 9, 3, 10),
        starting_deadline=HOUR,
    )
    assert plan.due == utc(2026, 1, 1, 9, 3)
    assert plan.missed == 2  # 09:01 and 09:02 never run
    assert plan.next_time == utc(2026, 1, 1, 9, 4)


def test_a_missed_time_older_than_the_starting_deadline_does_not_run() -> None:
    hourly = cron("0 * * * *")
    plan = schedule.plan_schedule(
        hourly,
        since=utc(2026, 1, 1, 8),
        now=utc(2026, 1, 1, 9, 30),
        starting_deadline=timedelta(minutes=10),
    )
    assert plan.due is None
    assert plan.missed == 1
    assert plan.latest == utc(2026, 1, 1, 9)  # handled: it is not looked at again
    assert plan.next_time == utc(2026, 1, 1, 10)
    # Without a deadline it runs, however late.
    late = schedule.plan_schedule(
        hourly, since=utc(2026, 1, 1, 8), now=utc(2026, 1, 1, 9, 30), starting_deadline=None
    )
    assert (late.due, late.missed) == (utc(2026, 1, 1, 9), 0)


def test_more_than_a_hundred_missed_times_are_reported_and_the_latest_still_runs() -> None:
    now = utc(2026, 1, 6, 9, 21, 30)
    plan = schedule.plan_schedule(
        EVERY_MINUTE, since=now - timedelta(days=5), now=now, starting_deadline=HOUR
    )
    assert plan.too_many_missed
    assert plan.missed >= schedule.TOO_MANY_MISSED
    assert plan.due == utc(2026, 1, 6, 9, 21)
    assert plan.next_time == utc(2026, 1, 6, 9, 22)


def test_exactly_a_hundred_missed_times_are_not_too_many() -> None:
    since = utc(2026, 1, 1, 9, 0)
    plan = schedule.plan_schedule(
        EVERY_MINUTE,
        since=since,
        now=since + timedelta(minutes=100, seconds=5),
        starting_deadline=HOUR,
    )
    assert (plan.too_many_missed, plan.missed) == (False, 99)
    assert plan.due == since + timedelta(minutes=100)


def test_a_last_time_in_the_future_runs_nothing_until_after_it() -> None:
    # The clock went back: what was scheduled up to 09:05 already ran.
    plan = schedule.plan_schedule(
        EVERY_MINUTE,
        since=utc(2026, 1, 1, 9, 5),
        now=utc(2026, 1, 1, 9, 2, 30),
        starting_deadline=HOUR,
    )
    assert plan.due is None
    assert plan.next_time == utc(2026, 1, 1, 9, 6)


def test_an_outage_across_the_repeated_hour_runs_the_latest_instant() -> None:
    every_half_hour = cron("*/30 * * * *", PARIS)
    plan = schedule.plan_schedule(
        every_half_hour,
        since=utc(2026, 10, 24, 23, 30),  # 01:30 CEST
        now=utc(2026, 10, 25, 1, 40),  # 02:40 CET, the second pass
        starting_deadline=HOUR,
    )
    assert local([plan.due], PARIS) == ["10-25 02:30+0100"]  # type: ignore[list-item]
    assert plan.missed == 3  # 02:00 and 02:30 CEST, 02:00 CET


def test_since_is_the_last_time_else_the_announced_next_else_now() -> None:
    now = utc(2026, 1, 1, 9, 30)
    last, announced = utc(2026, 1, 1, 9), utc(2026, 1, 1, 9, 10)
    assert schedule.schedule_since(last, announced, now) == last
    since = schedule.schedule_since(None, announced, now)
    assert since < announced
    plan = schedule.plan_schedule(cron("10 9 * * *"), since=since, now=now, starting_deadline=HOUR)
    assert plan.due == announced  # owed, although nobody was there at 09:10
    assert schedule.schedule_since(None, None, now) == now
    # An announced time still to come is not a reason to look back.
    assert schedule.schedule_since(None, utc(2026, 1, 1, 10), now) == now


# --- the execution ------------------------------------------------------------------------

JOB = {
    "metadata": {"name": "nightly-0123456789", "namespace": "ns"},
    "spec": {
        "displayName": "Nightly",
        "definition": {"name": "Nightly", "command": "true", "schedule": "0 3 * * *"},
        "source": {"repository": "jobs", "file": "jobs.yml", "commit": "abc123"},
        "active": True,
    },
}


def test_a_scheduled_execution_is_named_after_its_scheduled_time() -> None:
    when = utc(2026, 1, 1, 3)
    body = schedule.build_scheduled_execution(JOB, when)
    execution_id = names.execution_id(when)
    assert execution_id == "1767236400.000000"
    assert body["metadata"]["name"] == f"nightly-0123456789-{execution_id.replace('.', '-')}"
    assert body["metadata"]["namespace"] == "ns"
    assert body["metadata"]["labels"] == {execution_.JOB_LABEL: "nightly-0123456789"}
    assert body["metadata"]["annotations"] == {
        schedule.SCHEDULED_TIME_ANNOTATION: "2026-01-01T03:00:00Z"
    }
    spec = execution_.ExecutionSpec.model_validate(body["spec"])
    assert spec.trigger.type == "schedule"
    assert spec.execution_id == execution_id
    assert spec.commit == "abc123"
    assert spec.definition.name == "Nightly"
    # The same time always gives the same object: a second creation is a 409.
    assert schedule.build_scheduled_execution(JOB, when) == body
    assert schedule.build_scheduled_execution(JOB, when + timedelta(minutes=1)) != body
    # The repository's commit wins over the one the job was last changed at
    newer = schedule.build_scheduled_execution(JOB, when, "def456")
    assert newer["spec"]["commit"] == "def456"
    assert newer["metadata"]["name"] == body["metadata"]["name"]
