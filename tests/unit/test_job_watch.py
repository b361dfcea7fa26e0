"""The operator's watch of OverseerJobs: ready after its first LIST, retried on failure."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

from tests.support import fake_kube

from overseer import errors, kube_watch
from overseer.operator import job_watch


def job(name: str) -> dict[str, Any]:
    return {"metadata": {"namespace": "team", "name": name, "labels": {}}}


class FakeKube(fake_kube.FakeKube):
    """The first watch is refused, the second fails unexpectedly; the next lists ``a``,
    then deletes it."""

    def __init__(self) -> None:
        super().__init__()
        self.watches: list[str | None] = []
        self.done = asyncio.Event()
        self.paged = asyncio.Event()
        self.listed = asyncio.Event()

    async def watch(
        self, kind: str, namespace: str | None, *, paged: bool = False
    ) -> AsyncIterator[kube_watch.WatchEvent]:
        assert kind == "OverseerJob"
        assert paged, "the job watch never holds a whole snapshot at once"
        self.watches.append(namespace)
        if len(self.watches) == 1:
            raise errors.KubeError("watching OverseerJob: connection refused")
        if len(self.watches) == 2:
            raise ValueError("a bug")
        yield "LISTING", {}
        yield "PAGE", {"items": [job("a")]}
        self.paged.set()
        await self.listed.wait()
        yield "LISTED", {"metadata": {"resourceVersion": "7"}}
        yield "DELETED", job("a")
        self.done.set()
        await asyncio.Event().wait()  # a watch that stays open


async def test_the_watch_retries_lists_and_notices_then_is_ready() -> None:
    client = FakeKube()
    noticed: list[tuple[str, bool]] = []

    def notice(body: Mapping[str, Any], deleted: bool) -> None:
        noticed.append((body["metadata"]["name"], deleted))
        if deleted:
            raise RuntimeError("a reaction that fails never stops the watch")

    watch = job_watch.JobWatch(client, ["team"], notice, retry_min=0.01, retry_max=0.01)
    assert not watch.ready.is_set()
    watch.start()
    try:
        await asyncio.wait_for(client.paged.wait(), timeout=5)
        assert not watch.ready.is_set(), "ready before the snapshot is whole"
        client.listed.set()
        await asyncio.wait_for(client.done.wait(), timeout=5)
        assert watch.ready.is_set()
        assert client.watches == ["team", "team", "team"]
        assert noticed == [("a", False), ("a", True)]
        assert watch.index.jobs == 0
    finally:
        await watch.close()


async def test_ready_waits_for_every_namespace() -> None:
    watch = job_watch.JobWatch(
        fake_kube.FakeKube(), ["a", "b"], lambda *_: None, retry_min=1, retry_max=1
    )
    watch.take("LIST", {"items": []}, "a")
    assert not watch.ready.is_set()
    watch.take("LIST", {"items": []}, "b")
    assert watch.ready.is_set()
