"""The periodic resync observes again, at its interval, exactly the executions not settled."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from tests.support import fake_kube

from overseer import errors
from overseer.operator import context, executions, resync
from overseer.operator.settings import Settings


def body(name: str, phase: str | None, archive: str | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase} if phase else {}
    if archive:
        status["archive"] = {"state": archive}
    return {"metadata": {"namespace": "ns", "name": name}, "status": status}


def env() -> context.Environment:
    return context.Environment(
        client=fake_kube.FakeKube(),
        settings=Settings(),
        tracker=context.Tracker(),
        post_event=lambda *_: None,
    )


@pytest.fixture
def observed(monkeypatch: pytest.MonkeyPatch) -> list[context.Key]:
    seen: list[context.Key] = []

    async def observe(key: context.Key, env: context.Environment, **_: Any) -> None:
        seen.append(key)

    monkeypatch.setattr(executions, "observe_execution", observe)
    return seen


def refresher(refreshed: list[context.Key] | None = None) -> resync.Refresh:
    async def refresh(key: context.Key) -> None:
        if refreshed is not None:
            refreshed.append(key)

    return refresh


async def test_only_executions_not_ended_or_still_archiving_are_kept() -> None:
    keeper = resync.Resync(env, interval=3600, refresh=refresher())
    keeper.notice(body("pending", None))
    keeper.notice(body("running", "Running", "Archiving"))
    keeper.notice(body("archiving", "Complete", "Archiving"))
    keeper.notice(body("done", "Failed", "Complete"))
    keeper.notice(body("gone", "Running"))
    keeper.notice(body("gone", "Running"), deleted=True)
    assert {k.name for k in keeper.keys} == {"pending", "running", "archiving"}
    # An execution that settles leaves
    keeper.notice(body("running", "Complete", "Complete"))
    assert {k.name for k in keeper.keys} == {"pending", "archiving"}
    await keeper.close()


async def test_each_round_observes_every_unsettled_execution_at_the_interval(
    observed: list[context.Key],
) -> None:
    refreshed: list[context.Key] = []
    keeper = resync.Resync(env, interval=0.05, refresh=refresher(refreshed))
    keeper.notice(body("a", "Running"))
    keeper.notice(body("b", "Pending"))
    keeper.notice(body("c", "Complete", "Complete"))
    await asyncio.sleep(0.18)
    await keeper.close()
    assert len(observed) >= 4  # two rounds at least, with no watch event in between
    assert {k.name for k in observed} == {"a", "b"}
    # each observed as the API server shows it now, not as the watches last did
    assert refreshed[: len(observed)] == observed[: len(refreshed)]


async def test_a_round_that_cannot_refresh_still_observes(observed: list[context.Key]) -> None:
    async def failing(key: context.Key) -> None:
        raise errors.KubeError("the API server is away", 503)

    keeper = resync.Resync(env, interval=3600, refresh=failing)
    keeper.notice(body("a", "Running"))
    assert await keeper.round() == 1
    assert [k.name for k in observed] == ["a"]
    await keeper.close()
