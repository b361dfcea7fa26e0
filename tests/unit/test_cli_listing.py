"""The CLI's pure parts behind executions, sync --wait and -o yaml: pages, rows, commits."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml

from overseer_cli import core, paging, render, revisions

NOW = datetime(2026, 12, 6, 19, 0, 0, tzinfo=UTC)


class Pages:
    """A list of items served as the API pages it: ``limit`` honoured, a cursor per page."""

    def __init__(self, items: list[int]) -> None:
        self.items = items
        self.asked: list[dict[str, str]] = []

    def __call__(self, params: Mapping[str, str]) -> dict[str, Any]:
        self.asked.append(dict(params))
        start = int(params.get("continue", "c0")[1:])
        end = start + int(params["limit"])
        more = end < len(self.items)
        return {"items": self.items[start:end], "continue": f"c{end}" if more else None}


def test_every_page_is_followed_to_the_end_with_the_filters_on_each() -> None:
    pages = Pages(list(range(2500)))
    assert paging.collect(pages, {"phase": "Failed"}) == list(range(2500))
    assert pages.asked == [
        {"phase": "Failed", "limit": "1000"},
        {"phase": "Failed", "limit": "1000", "continue": "c1000"},
        {"phase": "Failed", "limit": "1000", "continue": "c2000"},
    ]


def test_a_limit_asks_only_for_what_is_still_wanted_and_stops_there() -> None:
    pages = Pages(list(range(2500)))
    assert paging.collect(pages, {}, limit=1200) == list(range(1200))
    assert [p["limit"] for p in pages.asked] == ["1000", "200"]
    small = Pages(list(range(10)))
    assert paging.collect(small, {}, limit=3) == [0, 1, 2]
    assert small.asked == [{"limit": "3"}]


def test_a_page_longer_than_asked_is_cut_to_the_limit() -> None:
    def generous(params: Mapping[str, str]) -> dict[str, Any]:
        return {"items": list(range(50)), "continue": "more"}

    assert paging.collect(generous, {}, limit=7) == list(range(7))


def test_a_cursor_sent_twice_is_an_error_not_an_endless_loop() -> None:
    def stuck(params: Mapping[str, str]) -> dict[str, Any]:
        return {"items": [1], "continue": "same"}

    with pytest.raises(paging.PagingError, match="same"):
        paging.collect(stuck, {})


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, "0.0s"),
        (0.44, "0.4s"),
        (9.94, "9.9s"),
        (42.7, "42s"),
        (185, "3m05s"),
        (7380, "2h03m"),
        (349_200, "4d01h"),
        (-1, "0.0s"),
    ],
)
def test_durations_read_at_a_glance(seconds: float, text: str) -> None:
    assert render.duration_text(seconds) == text


def test_an_execution_row_has_job_id_phase_exit_trigger_start_and_duration() -> None:
    ended = {
        "id": "1489895624.840211",
        "job": "Sauvegarde é",
        "phase": "Complete",
        "exitCode": 0,
        "trigger": {"type": "schedule"},
        "startTime": "2026-12-06T18:58:00.25Z",
        "completionTime": "2026-12-06T18:59:05.25+00:00",
    }
    assert render.execution_row(ended, NOW) == [
        "Sauvegarde é",
        "1489895624.840211",
        "Complete",
        "0",
        "schedule",
        "2026-12-06T18:58:00Z",
        "1m05s",
    ]
    running = {"id": "2.0", "job": "x", "phase": "Running", "startTime": "2026-12-06T18:59:30Z"}
    assert render.execution_row(running, NOW)[2:] == [
        "Running", "-", "-", "2026-12-06T18:59:30Z", "30s"
    ]  # fmt: skip
    fresh = {"id": "3.0", "job": "x", "phase": None, "trigger": {"type": "api"}}
    assert render.execution_row(fresh, NOW)[2:] == ["Pending", "-", "api", "-", "-"]
    killed = {"id": "4.0", "job": "x", "phase": "Failed", "exitCode": None, "signal": "SIGKILL"}
    assert render.execution_row(killed, NOW)[3] == "SIGKILL"


def test_the_executions_table_aligns_its_columns() -> None:
    rows = [
        render.execution_row(
            {
                "id": "10.5",
                "job": "a/b",
                "phase": "Failed",
                "exitCode": 127,
                "startTime": "2026-12-06T18:59:58Z",
            },
            NOW,
        ),
        render.execution_row({"id": "9.0", "job": "A longer job", "phase": "Running"}, NOW),
    ]
    assert core.format_table(render.EXECUTION_HEADERS, rows) == (
        "JOB           ID    PHASE    EXIT  TRIGGER  START                 DURATION\n"
        "a/b           10.5  Failed   127   -        2026-12-06T18:59:58Z  2.0s\n"
        "A longer job  9.0   Running  -     -        -                     -\n"
    )


def test_yaml_reads_back_as_the_same_value_with_scripts_as_blocks() -> None:
    job = {
        "name": "Sauvegarde é",
        "definition": {"script": "set -e\nprintf '%s\\n' \"$1\"\n", "timeout": "10m"},
        "lastExecution": {"id": "1489895624.840211", "phase": None},
        "ids": ["1489888092.0", "0123"],
        "active": True,
    }
    text = render.document(job, "yaml")
    assert yaml.safe_load(text) == job
    assert "name: Sauvegarde é\n" in text
    assert "script: |\n" in text
    assert "'1489895624.840211'" in text  # a float-looking id stays a text
    assert list(yaml.safe_load(text)) == list(job)  # the API's key order
    assert json.loads(render.document(job, "json")) == job


def test_a_delivery_row_keeps_a_long_error_on_one_short_line() -> None:
    delivery = {
        "id": "3f2a9c1e0b7d4e65",
        "status": "GivenUp",
        "attempts": 31,
        "url": "https://hooks.example/x",
        "lastError": "HTTP 503\nService Unavailable " + "x" * 200,
    }
    row = render.delivery_row(delivery)
    assert row[:5] == ["3f2a9c1e0b7d4e65", "GivenUp", "31", "0", "https://hooks.example/x"]
    assert row[5].startswith("HTTP 503 Service Unavailable x")
    assert len(row[5]) == 80


FULL = "9fceb02d0ae598e95dc970b74767f19372d61af8"
ASKED = "2026-12-06T19:00:00.250000Z"


def repo(
    *,
    handled: str | None = None,
    synced: str = "2026-12-06T18:00:00Z",
    commit: str = "0ld" * 4,
    ready: bool | None = True,
    reason: str = "Synced",
    message: str = "3 job(s) in sync",
    errors: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """An item of GET /repositories, as far as the wait reads it."""
    return {
        "name": "jobs",
        "commit": commit,
        "lastSyncTime": synced,
        "syncHandledAt": handled,
        "ready": ready,
        "reason": reason,
        "message": message,
        "jobCount": 3,
        "errors": errors or [],
    }


def test_a_sync_is_done_once_the_repository_handled_the_request_even_changing_nothing() -> None:
    before = revisions.progress("jobs", repo(handled="2026-12-06T18:59:00Z"), ASKED, None)
    assert (before.done, before.failed) == (False, False)
    assert before.describe() == "jobs: no sync since the request (at 0ld0ld0ld0ld)"
    same = revisions.progress("jobs", repo(handled="2026-12-06T19:00:00.250100Z"), ASKED, None)
    assert (same.done, same.failed) == (True, False)
    assert same.describe() == "jobs: synced 0ld0ld0ld0ld (3 jobs)"
    # An API or operator without the echo: a status written after the request counts
    moved = revisions.progress(
        "jobs", repo(synced="2026-12-06T19:00:01Z", commit=FULL), ASKED, None
    )
    assert (moved.done, moved.commit) == (True, FULL)
    assert not revisions.progress("jobs", None, ASKED, None).done  # not (yet) listed


def test_a_failed_sync_is_done_and_failed_with_the_reason_and_each_file_error() -> None:
    failed = revisions.progress(
        "jobs",
        repo(
            handled="2026-12-06T19:00:01Z",
            ready=False,
            reason="RepositoryNotFound",
            message="jobs may be out of date: no repository at file:///gone.git",
        ),
        ASKED,
        None,
    )
    assert (failed.done, failed.failed) == (True, True)
    assert failed.describe() == (
        "jobs: sync failed (RepositoryNotFound): jobs may be out of date: no repository at "
        "file:///gone.git"
    )
    bad = {"file": "jobs/a.yml", "line": 3, "job": "A", "message": "no command"}
    invalid = revisions.progress(
        "jobs",
        repo(handled="2026-12-06T19:00:01Z", ready=False, reason="InvalidDefinitions",
             message="1 error(s) in jobs/a.yml", errors=[bad]),
        ASKED,
        None,
    )  # fmt: skip
    assert invalid.failed
    assert invalid.describe().splitlines()[1:] == ["  jobs/a.yml:3: job 'A': no command"]


def test_a_revision_is_waited_for_in_the_synced_commit() -> None:
    at = revisions.progress("jobs", repo(commit=FULL), ASKED, "9fceb02")
    assert (at.done, at.failed) == (True, False)  # already there: nothing to wait for
    assert at.describe() == "jobs: synced 9fceb02d0ae5 (3 jobs)"
    other = revisions.progress("jobs", repo(handled="2026-12-06T19:00:01Z"), ASKED, "9fceb02")
    assert not other.done  # a sync ran, but of another commit: the push may come later
    assert other.describe() == "jobs: not at 9fceb02 (at 0ld0ld0ld0ld)"
    lost = revisions.progress(
        "jobs", repo(handled="2026-12-06T19:00:01Z", ready=False, reason="RefNotFound"), ASKED,
        "9fceb02",
    )  # fmt: skip
    assert (lost.done, lost.failed) == (True, True)  # failed after the request: no waiting


@pytest.mark.parametrize("bad", ["abc", "not-hex!", "g" * 8, "a" * 65, ""])
def test_a_revision_is_a_commit_id_or_a_usage_error(bad: str) -> None:
    with pytest.raises(core.UsageError, match="--revision"):
        revisions.check_revision(bad)


def test_a_revision_is_taken_in_lower_case() -> None:
    assert revisions.check_revision("9FCEB02") == "9fceb02"
    assert revisions.check_revision(None) is None


def test_giving_up_says_what_was_seen_and_where_to_look() -> None:
    waiting = [revisions.progress("jobs", repo(), ASKED, "abcd")]
    message = revisions.gave_up_message(30.0, waiting)
    assert message.startswith("no sync seen within 30s (jobs: not at abcd (at 0ld0ld0ld0ld))")
    assert "overseer repositories" in message
