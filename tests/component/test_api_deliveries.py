"""Replaying a webhook delivery through the ASGI app: the record is reset to owed by a
status write guarded by the execution's resourceVersion, and who asked is an Event. The
writes reach the one fake client (``api.WatchFeed``); the operator sending it again, on
the real cluster: ``tests/e2e/test_api_deliveries.py``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from overseer import archive_local
from overseer.core import delivery_records, schedule, settlement
from overseer.crd import execution as execution_
from overseer_api import app as app_
from overseer_api import settings
from tests.support import api

READER, EXECUTOR = "reader-token-1", "executor-token-2"
EXECUTION = "OverseerExecution"
JOB = api.job_body({"name": "Hooked job", "command": "true"})
HOOK = "https://hooks.example/overseer/secret-path-token"


def given_up(event: str) -> dict[str, Any]:
    return {
        "eventId": event,
        "url": HOOK,
        "status": "GivenUp",
        "attempts": 40,
        "lastError": "gave up after 40 attempts over 24h: HTTP 503",
    }


def execution() -> dict[str, Any]:
    body = schedule.build_scheduled_execution(JOB, datetime(2026, 12, 6, 4, tzinfo=UTC))
    body["metadata"]["resourceVersion"] = "7"
    body["status"] = {"phase": "Complete", "deliveries": [given_up("start"), given_up("c1")]}
    return body


def delivery_id(event: str) -> str:
    return delivery_records.delivery_id(execution_.Delivery.model_validate(given_up(event)))


class Busy(api.WatchFeed):
    """An operator writing the status between every read and write of the API."""

    async def patch_status_unchanged(
        self,
        kind: str,
        namespace: str,
        name: str,
        version: str,
        status: Mapping[str, Any],
    ) -> dict[str, Any] | None:
        return None


async def serve(feed: api.WatchFeed, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    body = execution()
    feed.add("OverseerJob", JOB)
    feed.add(EXECUTION, body)
    feed.stored[(EXECUTION, "default", body["metadata"]["name"])] = body
    tokens = api.write_tokens(
        tmp_path / "tokens.json", {"r": (READER, ["read"]), "x": (EXECUTOR, ["execute"])}
    )
    app = app_.create_app(
        settings.Settings(tokens_file=tokens), feed, archive_local.LocalArchive(tmp_path / "a")
    )
    async with api.client_of(app, EXECUTOR) as client:
        yield client


@pytest.fixture
def feed() -> api.WatchFeed:
    return api.WatchFeed()


@pytest.fixture
async def client(feed: api.WatchFeed, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async for served in serve(feed, tmp_path):
        yield served


URL = "/jobs/Hooked%20job/1796529600.000000"


async def test_a_given_up_delivery_is_owed_again_and_the_replay_audited(
    client: httpx.AsyncClient, feed: api.WatchFeed
) -> None:
    # Given an execution whose deliveries were given up, listed with their ids
    listed = (await client.get(URL)).json()["deliveries"]
    assert [d["id"] for d in listed] == [delivery_id("start"), delivery_id("c1")]
    # When one is replayed
    answer = await client.post(f"{URL}/deliveries/{delivery_id('start')}")
    # Then it is owed again, due now, counted as a replay; the other is left alone
    assert answer.status_code == 202, answer.text
    assert answer.json()["delivery"]["status"] == "Pending"
    assert answer.json()["delivery"]["replays"] == 1
    assert answer.json()["url"] == f"http://api.test{URL}"
    [(_, _, patch)] = [p for p in feed.patches if p[0] == EXECUTION]
    start, other = patch["status"]["deliveries"]
    assert (start["eventId"], start["status"], start["attempts"], start["replays"]) == (
        "start", "Pending", 0, 1,
    )  # fmt: skip
    assert "retrySince" in start and "lastError" not in start
    assert other == given_up("c1")
    shown = (await client.get(URL)).json()["deliveries"]
    assert [d["status"] for d in shown] == ["Pending", "GivenUp"]  # read your write
    # And an Event says who asked, without the hook's path (it may hold a token)
    [event] = [b for b in feed.created if b["kind"] == "Event"]
    assert event["reason"] == "WebhookReplayRequested"
    assert "(by token:x)" in event["message"]
    assert "secret-path-token" not in str(event)
    assert "https://hooks.example/" in event["message"]


async def test_a_read_token_may_not_replay(client: httpx.AsyncClient, feed: api.WatchFeed) -> None:
    answer = await client.post(
        f"{URL}/deliveries/{delivery_id('start')}", headers={"Authorization": f"Bearer {READER}"}
    )
    assert answer.status_code == 403
    assert not feed.patches


@pytest.mark.parametrize(
    "path",
    [
        f"{URL}/deliveries/0123456789abcdef",
        "/jobs/Hooked%20job/1.000001/deliveries/0123456789abcdef",
        "/jobs/Nobody/1796529600.000000/deliveries/0123456789abcdef",
    ],
)
async def test_unknown_delivery_execution_or_job_is_404(
    client: httpx.AsyncClient, feed: api.WatchFeed, path: str
) -> None:
    answer = await client.post(path)
    assert answer.status_code == 404, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert not feed.patches


async def test_a_status_that_keeps_changing_is_409_and_writes_nothing(tmp_path: Path) -> None:
    feed = Busy()
    async for client in serve(feed, tmp_path):
        answer = await client.post(f"{URL}/deliveries/{delivery_id('start')}")
        assert answer.status_code == 409, answer.text
        assert not [b for b in feed.created if b["kind"] == "Event"]


async def test_a_replay_brings_a_settled_execution_back_to_the_operators_watch(
    feed: api.WatchFeed, tmp_path: Path
) -> None:
    # Given a settled execution: labelled, out of the operator's watch
    feed.stored.clear()
    async for client in serve(feed, tmp_path):
        stored = next(iter(feed.stored.values()))
        stored["metadata"]["labels"] = {settlement.SETTLED_LABEL: "true"}
        # When a delivery of it is replayed
        answer = await client.post(f"{URL}/deliveries/{delivery_id('start')}")
        assert answer.status_code == 202, answer.text
        # Then the status is reset first, then the label taken off (the operator sees it
        # again, owing the delivery; the other order would let it label it again first)
        writes = [patch for kind, _, patch in feed.patches if kind == EXECUTION]
        assert [list(w) for w in writes] == [["status"], ["metadata"]]
        assert writes[1] == settlement.UNSETTLE
        assert SETTLED not in (next(iter(feed.stored.values()))["metadata"].get("labels") or {})


async def test_a_replay_of_an_execution_in_the_watch_writes_its_status_only(
    client: httpx.AsyncClient, feed: api.WatchFeed
) -> None:
    answer = await client.post(f"{URL}/deliveries/{delivery_id('start')}")
    assert answer.status_code == 202, answer.text
    assert [list(p) for kind, _, p in feed.patches if kind == EXECUTION] == [["status"]]


SETTLED = settlement.SETTLED_LABEL
