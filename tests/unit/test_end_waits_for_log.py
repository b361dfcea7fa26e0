"""An ended execution's status waits for its log: no version says the end without its events.

After an operator restart (or a leader's handover) the outcome is known from the pod status
at once, while the job's custom events are still in the log the new process reads again
from its start. The scene of ``test_output_memory`` (the real observation and followers over
a local archive), with a log that holds a custom event.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from tests.unit import test_output_memory as scene

from overseer import errors
from overseer.operator import context, executions, output
from overseer_library import protocol

LOG = b"".join(
    [
        protocol.encode(protocol.Start(1, 7, "python3", 1795938122.5)),
        protocol.encode(protocol.Output(2, "stdout", b"hello\n")),
        protocol.encode(protocol.Event(3, "halfway", {"line": 1}, 1795938123.25)),
        protocol.encode(protocol.Exit(4, code=0, signal=None, time=1795938124.0)),
    ]
)
KEY = context.Key(scene.NS, scene.name_of(0))


class Cluster(scene.Cluster):
    """Serves LOG in pieces, a moment apart (or never: ``readable`` False), and keeps
    every status written."""

    def __init__(self, *, readable: bool = True) -> None:
        super().__init__(1)
        self.readable = readable
        self.written: list[dict[str, Any]] = []

    async def patch_status(
        self, kind: str, namespace: str, name: str, status: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        written = await super().patch_status(kind, namespace, name, status)
        assert written is not None
        self.written.append(copy.deepcopy(written["status"]))
        return written

    async def follow_log(self, namespace: str, pod: str, container: str) -> AsyncIterator[bytes]:
        if not self.readable:
            raise errors.KubeError("the kubelet does not answer", None)
        for offset in range(0, len(LOG), 16):
            await asyncio.sleep(0.001)
            yield LOG[offset : offset + 16]


def statuses(status: Mapping[str, Any]) -> list[str]:
    return [event["status"] for event in status.get("events", [])]


async def settle(followers: output.Followers) -> None:
    while followers.running():
        await asyncio.gather(*followers.running())
        await asyncio.sleep(0)


async def test_an_end_seen_before_the_log_is_read_waits_for_the_log(tmp_path: Path) -> None:
    # Given an execution that ended while no operator ran: its Job complete, its pod
    # terminated, and a custom event in its log
    cluster = Cluster()
    followers = output.Followers(scene.Counted(tmp_path), retry_min=0.01, retry_max=0.02)
    env = scene.env_for(cluster, followers)
    try:
        # When the operator observes it (the pod status says the end before the log is read)
        await executions.observe_execution(KEY, env)
        await settle(followers)
        # Then it ends Complete with every event, and no status it wrote said the end without
        # the custom event
        final = cluster.objects[("OverseerExecution", KEY.name)]["status"]
        assert final["phase"] == "Complete"
        assert statuses(final) == ["start", "halfway", "complete"]
        ended = [s for s in cluster.written if s.get("phase") == "Complete"]
        assert ended and all(statuses(s) == ["start", "halfway", "complete"] for s in ended), [
            (s.get("phase"), statuses(s)) for s in cluster.written
        ]
    finally:
        env.tracker.close()


async def test_an_end_whose_log_cannot_be_read_is_written_once_the_hold_runs_out(
    tmp_path: Path,
) -> None:
    # Given an ended execution whose pod's log cannot be read (its node is unreachable)
    cluster = Cluster(readable=False)
    followers = output.Followers(
        scene.Counted(tmp_path), retry_min=0.01, retry_max=0.02, end_hold=timedelta(seconds=0.3)
    )
    env = scene.env_for(cluster, followers)
    try:
        # When the operator observes it
        await executions.observe_execution(KEY, env)
        # Then the status does not say the end at once
        assert all(s.get("phase") != "Complete" for s in cluster.written)
        # but once the hold has run out: the outcome is the pod's, what the log had is late
        for _ in range(100):
            status = cluster.objects[("OverseerExecution", KEY.name)]["status"]
            if status.get("phase") == "Complete":
                break
            await asyncio.sleep(0.05)
        assert status["phase"] == "Complete", status
        assert statuses(status) == ["start", "complete"]
    finally:
        env.tracker.close()
        await followers.close()
