"""The scheduler's tasks, with a fake API client and a clock that starts where a test says."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.support import fake_kube

from overseer.core import schedule
from overseer.operator import scheduler, write_gate
from overseer.operator.settings import Settings

NAMESPACE, NAME = "ns", "every-minute-0123456789"


class FakeKube(fake_kube.FakeKube):
    """Records creations and status patches; ``exists`` makes every creation a 409."""

    def __init__(self, *, exists: bool = False) -> None:
        super().__init__()
        self.exists = exists
        self.created: list[dict[str, Any]] = []
        self.statuses: list[dict[str, Any]] = []
        self.changed = asyncio.Event()

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        assert (kind, namespace, name) == ("OverseerRepository", NAMESPACE, "jobs")
        return {"status": {"commit": "newest"}}

    async def create(self, body: Mapping[str, Any]) -> dict[str, Any] | None:
        self.created.append(dict(body))
        self.changed.set()
        return None if self.exists else dict(body)

    async def patch_status(
        self, kind: str, namespace: str, name: str, status: Mapping[str, Any]
    ) -> None:
        assert (kind, namespace, name) == ("OverseerJob", NAMESPACE, NAME)
        self.statuses.append(dict(status))
        self.changed.set()

    async def until(self, check: Callable[[], bool]) -> None:
        async with asyncio.timeout(5):
            while not check():
                self.changed.clear()
                await self.changed.wait()


def clock_from(start: datetime) -> Callable[[], datetime]:
    """A clock that reads START now and runs at the real pace."""
    origin = time.monotonic()
    return lambda: start + timedelta(seconds=time.monotonic() - origin)


def job(
    *, status: dict[str, Any] | None = None, active: bool = True, cron: str = "* * * * *"
) -> dict[str, Any]:
    return {
        "apiVersion": "overseer.dev/v1alpha1",
        "kind": "OverseerJob",
        "metadata": {"name": NAME, "namespace": NAMESPACE, "uid": "u"},
        "spec": {
            "displayName": "Every minute",
            "definition": {"name": "Every minute", "command": "true", "schedule": cron},
            "source": {"repository": "jobs", "file": "jobs.yml", "commit": "abc"},
            "active": active,
        },
        "status": status or {},
    }


@pytest.fixture
def events() -> list[tuple[str, str, str]]:
    return []


def make(
    client: FakeKube,
    start: datetime,
    events: list[tuple[str, str, str]],
    deadline: float | None = 3600.0,
    gate: write_gate.WriteGate | None = None,
) -> scheduler.Scheduler:
    def post(obj: Any, type_: str, reason: str, message: str) -> None:
        events.append((type_, reason, message))

    settings = Settings(retry_min=0.1, retry_max=0.5, schedule_starting_deadline=deadline)
    return scheduler.Scheduler(client, settings, post, clock_from(start), gate=gate)


def at(minute: int, second: float = 0) -> datetime:
    return datetime(2026, 1, 1, 9, minute, tzinfo=UTC) + timedelta(seconds=second)


def execution_times(client: FakeKube) -> list[str]:
    return [
        c["metadata"]["annotations"][schedule.SCHEDULED_TIME_ANNOTATION] for c in client.created
    ]


async def test_a_new_schedule_announces_its_next_time_then_runs_it(
    events: list[tuple[str, str, str]],
) -> None:
    client = FakeKube()
    tasks = make(client, at(0, 59.7), events)
    try:
        # When a job with a schedule is seen for the first time
        tasks.observe(job(), deleted=False)
        # Then nothing runs at once, the next minute is announced
        await client.until(lambda: bool(client.statuses))
        assert client.created == []
        assert client.statuses[0] == {"nextScheduleTime": "2026-01-01T09:01:00Z"}
        # And at that minute, its execution is created, and the status says so
        await client.until(lambda: len(client.statuses) > 1)
        assert execution_times(client) == ["2026-01-01T09:01:00Z"]
        assert client.created[0]["spec"]["trigger"] == {"type": "schedule"}
        assert client.created[0]["spec"]["commit"] == "newest"  # the repository's
        assert client.statuses[1] == {
            "lastScheduleTime": "2026-01-01T09:01:00Z",
            "nextScheduleTime": "2026-01-01T09:02:00Z",
        }
        assert events == []
    finally:
        await tasks.close()


async def test_a_restart_rewrites_no_status_that_already_says_it(
    events: list[tuple[str, str, str]],
) -> None:
    client = FakeKube()
    tasks = make(client, at(0, 59.7), events)
    try:
        # Given a job whose status, written before a restart, says what the task knows
        status = {
            "lastScheduleTime": "2026-01-01T09:00:00Z",
            "nextScheduleTime": "2026-01-01T09:01:00Z",
        }
        # When the restarted operator sees it (its job watch lists every job again)
        tasks.observe(job(status=status), deleted=False)
        # Then its first status write is the next run's, not the same status again
        await client.until(lambda: bool(client.statuses))
        assert execution_times(client) == ["2026-01-01T09:01:00Z"]
        assert client.statuses == [
            {"lastScheduleTime": "2026-01-01T09:01:00Z", "nextScheduleTime": "2026-01-01T09:02:00Z"}
        ]
    finally:
        await tasks.close()


async def test_after_an_outage_only_the_latest_missed_time_runs(
    events: list[tuple[str, str, str]],
) -> None:
    client = FakeKube()
    tasks = make(client, at(3, 10), events)
    try:
        # Given a job that last ran at 09:00 and announced 09:01, seen again at 09:03:10
        status = {
            "lastScheduleTime": "2026-01-01T09:00:00Z",
            "nextScheduleTime": "2026-01-01T09:01:00Z",
        }
        tasks.observe(job(status=status), deleted=False)
        # Then 09:03 runs, once; 09:01 and 09:02 do not
        await client.until(lambda: bool(client.statuses))
        assert execution_times(client) == ["2026-01-01T09:03:00Z"]
        assert client.statuses == [
            {"lastScheduleTime": "2026-01-01T09:03:00Z", "nextScheduleTime": "2026-01-01T09:04:00Z"}
        ]
    finally:
        await tasks.close()


async def test_without_a_last_time_the_announced_one_is_still_owed(
    events: list[tuple[str, str, str]],
) -> None:
    # (The status lost lastScheduleTime, or the operator stopped right after announcing.)
    client = FakeKube()
    tasks = make(client, at(2, 30), events)
    try:
        tasks.observe(job(status={"nextScheduleTime": "2026-01-01T09:01:00Z"}), deleted=False)
        await client.until(lambda: bool(client.statuses))
        assert execution_times(client) == ["2026-01-01T09:02:00Z"]
    finally:
        await tasks.close()


async def test_an_execution_that_exists_already_counts_as_created(
    events: list[tuple[str, str, str]],
) -> None:
    # A restart between the creation and the status write: the creation is a 409
    client = FakeKube(exists=True)
    tasks = make(client, at(1, 5), events)
    try:
        status = {"lastScheduleTime": "2026-01-01T09:00:00Z"}
        tasks.observe(job(status=status), deleted=False)
        await client.until(lambda: bool(client.statuses))
        assert len(client.created) == 1
        assert client.statuses[0]["lastScheduleTime"] == "2026-01-01T09:01:00Z"
        # And seeing the job again (its own status write) creates nothing more
        tasks.observe(job(status=client.statuses[0]), deleted=False)
        await asyncio.sleep(0.2)
        assert len(client.created) == 1
    finally:
        await tasks.close()


async def test_a_missed_time_past_the_deadline_does_not_run(
    events: list[tuple[str, str, str]],
) -> None:
    client = FakeKube()
    tasks = make(client, at(3, 10), events, deadline=60.0)
    try:
        status = {"lastScheduleTime": "2026-01-01T09:00:00Z"}
        tasks.observe(job(status=status, cron="1 9 * * *"), deleted=False)
        await client.until(lambda: bool(client.statuses))
        assert client.created == []
        assert client.statuses[0]["lastScheduleTime"] == "2026-01-01T09:01:00Z"
    finally:
        await tasks.close()


async def test_too_many_missed_times_are_reported(events: list[tuple[str, str, str]]) -> None:
    client = FakeKube()
    tasks = make(client, at(0) + timedelta(days=1, seconds=30), events, deadline=None)
    try:
        tasks.observe(job(status={"lastScheduleTime": "2026-01-01T09:00:00Z"}), deleted=False)
        await client.until(lambda: bool(client.statuses))
        assert execution_times(client) == ["2026-01-02T09:00:00Z"]
        [(kind, reason, message)] = events
        assert (kind, reason) == ("Warning", "TooManyMissedTimes")
        assert "more than 100" in message
    finally:
        await tasks.close()


async def test_a_deactivated_job_stops_and_loses_its_next_time(
    events: list[tuple[str, str, str]],
) -> None:
    client = FakeKube()
    tasks = make(client, at(0, 30), events)
    try:
        tasks.observe(job(), deleted=False)
        await client.until(lambda: bool(client.statuses))
        announced = {"nextScheduleTime": "2026-01-01T09:01:00Z"}
        # When the job is deactivated
        tasks.observe(job(status=announced, active=False), deleted=False)
        # Then its next time is removed, and nothing runs at that time
        await client.until(lambda: len(client.statuses) > 1)
        assert client.statuses[1] == {"nextScheduleTime": None}
        assert tasks._entries == {}
        # And a deleted job is simply forgotten
        tasks.observe(job(), deleted=False)
        tasks.observe(job(), deleted=True)
        assert tasks._entries == {}
    finally:
        await tasks.close()
    assert client.created == []


async def test_a_changed_schedule_wakes_the_task(events: list[tuple[str, str, str]]) -> None:
    client = FakeKube()
    tasks = make(client, at(0, 30), events)
    try:
        tasks.observe(job(cron="0 10 * * *"), deleted=False)
        await client.until(lambda: bool(client.statuses))
        assert client.statuses[0] == {"nextScheduleTime": "2026-01-01T10:00:00Z"}
        tasks.observe(job(cron="*/5 * * * *"), deleted=False)
        await client.until(lambda: len(client.statuses) > 1)
        assert client.statuses[1] == {"nextScheduleTime": "2026-01-01T09:05:00Z"}
    finally:
        await tasks.close()


class AnyJobKube(FakeKube):
    """Records the status writes of any job, by name."""

    def __init__(self) -> None:
        super().__init__()
        self.by_name: list[tuple[str, dict[str, Any]]] = []

    async def patch_status(
        self, kind: str, namespace: str, name: str, status: Mapping[str, Any]
    ) -> None:
        self.by_name.append((name, dict(status)))
        self.changed.set()


async def test_a_run_is_recorded_at_once_while_announcements_wait_behind_a_sync(
    events: list[tuple[str, str, str]],
) -> None:
    client = AnyJobKube()
    gate = write_gate.WriteGate(1)
    tasks = make(client, at(3, 10), events, gate=gate)
    sync = gate.slot(write_gate.SYNC)
    await sync.__aenter__()  # a repository sync holds every slot
    try:
        # When a job owed a run, and a new job, are seen during the sync
        tasks.observe(job(status={"lastScheduleTime": "2026-01-01T09:02:00Z"}), deleted=False)
        new = job()
        new["metadata"]["name"] = "new"
        tasks.observe(new, deleted=False)
        # Then the run is created and recorded in its status at once
        await client.until(lambda: bool(client.by_name))
        assert execution_times(client) == ["2026-01-01T09:03:00Z"]
        assert client.by_name[0][0] == NAME
        assert client.by_name[0][1]["lastScheduleTime"] == "2026-01-01T09:03:00Z"
        # And the new job's next run is announced only once the sync is done
        await asyncio.sleep(0.1)
        assert [name for name, _ in client.by_name] == [NAME]
        await sync.__aexit__(None, None, None)
        await client.until(lambda: len(client.by_name) == 2)
        assert client.by_name[1] == ("new", {"nextScheduleTime": "2026-01-01T09:04:00Z"})
    finally:
        await tasks.close()
