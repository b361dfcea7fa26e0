"""Receivers that misbehave for long: hung, down past the horizon, gone; and slow DNS.

The operator's real delivery lanes and webhook adapter against real HTTP servers on
127.0.0.1, with the executions in memory (the typed fake client). Times are compressed
by the operator's own settings (``OVERSEER_WEBHOOK_RETRY_*``, ``OVERSEER_WEBHOOK_TIMEOUT``).
"""

from __future__ import annotations

import asyncio
import copy
import json
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from overseer import errors, webhooks
from overseer.core import delivery_records
from overseer.core import webhooks as core
from overseer.crd import execution as execution_
from overseer.operator import context, deliveries
from overseer.operator.settings import Settings
from tests.support import fake_kube, recorder

pytestmark = pytest.mark.timeout(90)

NS = "ns"
SIGNED = {
    "OVERSEER_WEBHOOK_SECRET": "a-secret-of-16-bytes",
    "OVERSEER_WEBHOOK_SIGNING_FALLBACK": "true",  # namespace ns has no Secret of its own
}


class Executions(fake_kube.FakeKube):
    """Many executions in memory: get one, merge-patch its status."""

    def __init__(self) -> None:
        super().__init__()
        self.bodies: dict[str, dict[str, Any]] = {}

    def add(self, name: str, hooks: Mapping[str, Any], statuses: list[str]) -> dict[str, Any]:
        self.bodies[name] = {
            "metadata": {"namespace": NS, "name": name, "uid": f"uid-{name}"},
            "spec": {
                "job": "deploy-1a2b3c4d5e",
                "executionId": "1795944166.955902",
                "definition": {"name": "Deploy", "hooks": dict(hooks)},
            },
            "status": {
                "events": [
                    {"id": s, "status": s, "time": f"2026-11-29T09:00:0{i}Z"}
                    for i, s in enumerate(statuses)
                ]
            },
        }
        return self.bodies[name]

    async def read_secret(self, namespace: str, name: str) -> dict[str, bytes]:
        raise errors.KubeSecretNotFoundError(f"Secret {namespace}/{name} does not exist")

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        body = self.bodies.get(name)
        return copy.deepcopy(body) if body is not None else None

    async def patch_status(
        self, kind: str, namespace: str, name: str, status: Mapping[str, Any]
    ) -> None:
        self.bodies[name].setdefault("status", {}).update(copy.deepcopy(dict(status)))

    def records(self, name: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.bodies[name]["status"].get("deliveries") or []
        return found


def lanes_for(kube: Executions, env: dict[str, str]) -> tuple[deliveries.Deliveries, list[Any]]:
    posted: list[Any] = []
    settings = Settings.from_env(
        {"OVERSEER_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.1/32", **SIGNED, **env}
    )
    lanes = deliveries.Deliveries(
        kube,
        settings,
        context.Tracker(),
        lambda obj, kind, reason, message: posted.append((kind, reason, message)),
    )
    return lanes, posted


@pytest.fixture
def hung() -> Iterator[str]:
    """A receiver that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def healthy() -> Iterator[recorder.Recorder]:
    with recorder.serve() as served:
        yield served


async def until(check: Any, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def test_a_hung_host_with_50_owed_deliveries_never_delays_a_healthy_one(
    hung: str, healthy: recorder.Recorder
) -> None:
    # Given 50 executions owing a delivery to a receiver that never answers
    kube = Executions()
    timeout = 3.0
    lanes, _ = lanes_for(kube, {"OVERSEER_WEBHOOK_TIMEOUT": f"{timeout:g}s"})
    try:
        for i in range(50):
            lanes.notice(kube.add(f"stuck-{i}", {"start": f"{hung}/hook/{i}"}, ["start"]))
        await asyncio.sleep(0.3)  # every hung attempt that may start has started
        # When one execution owes a delivery to a healthy receiver
        began = time.monotonic()
        lanes.notice(kube.add("fine", {"start": f"{healthy.url}/hook"}, ["start"]))
        # Then it is delivered within its own timeout, not after the hung ones'
        await until(lambda: kube.records("fine"), timeout, "the healthy delivery")
        assert time.monotonic() - began < timeout
        [record] = kube.records("fine")
        assert record["status"] == "Delivered"
        assert len(healthy.requests) == 1
    finally:
        await lanes.close()


async def test_a_receiver_down_past_the_horizon_is_given_up_then_replayed(
    healthy: recorder.Recorder,
) -> None:
    # Given a receiver that answers 503 for longer than the (compressed) horizon
    healthy.script[:] = [(503, 0.0)] * 1000
    kube = Executions()
    body = kube.add("down", {"start": f"{healthy.url}/hook"}, ["start"])
    env = {
        "OVERSEER_WEBHOOK_RETRY_MIN": "20ms",
        "OVERSEER_WEBHOOK_RETRY_MAX": "100ms",
        # 4 s: 25 attempts or more at 100 ms apart; 2 s gave 15 on a loaded machine
        "OVERSEER_WEBHOOK_RETRY_HORIZON": "4s",
    }
    lanes, posted = lanes_for(kube, env)
    try:
        lanes.notice(body)
        # When the horizon passes
        await until(
            lambda: [r["status"] for r in kube.records("down")] == ["GivenUp"], 20, "giving up"
        )
        # Then deliveries went on with capped backoff well past 15 attempts, then stopped
        [record] = kube.records("down")
        assert record["attempts"] == len(healthy.requests) > 15
        assert record["lastError"].startswith(f"gave up after {record['attempts']} attempts")
        assert "503" in record["lastError"]
        assert [reason for _, reason, _ in posted] == ["WebhookGivenUp"]
        await until(lambda: not lanes.lanes, 2, "the lane to end")
        # And when the receiver is back and the delivery is replayed (what the API does)
        healthy.script.clear()
        records = [execution_.Delivery.model_validate(r) for r in kube.records("down")]
        replayed = delivery_records.replay(
            records, delivery_records.delivery_id(records[0]), datetime.now(UTC)
        )
        kube.bodies["down"]["status"]["deliveries"] = [
            r.model_dump(mode="json", by_alias=True, exclude_none=True) for r in replayed
        ]
        lanes.notice(kube.bodies["down"])
        # Then it is delivered, under the same webhook-id
        await until(
            lambda: [r["status"] for r in kube.records("down")] == ["Delivered"], 5, "delivery"
        )
        ids = {r.headers["webhook-id"] for r in healthy.requests}
        assert len(ids) == 1
    finally:
        await lanes.close()


async def test_410_gone_stops_deliveries_to_that_url_for_that_execution(
    healthy: recorder.Recorder,
) -> None:
    # Given a receiver that answers 410 Gone, hooked to three events, and another URL
    kube = Executions()
    with recorder.serve(status=410) as gone_receiver:
        gone, other = f"{gone_receiver.url}/gone", f"{healthy.url}/other"
        hooks = {"start": [gone, other], "deploying": gone, "complete": [gone, other]}
        lanes, posted = lanes_for(kube, {})
        try:
            lanes.notice(kube.add("x", hooks, ["start", "deploying", "complete"]))
            await until(lambda: len(kube.records("x")) == 3 and not lanes.lanes, 10, "the lanes")
            await asyncio.sleep(0.2)  # time enough for a wrong request to arrive
        finally:
            await lanes.close()
        # Then the gone URL got one request, the start, recorded Gone
        assert [json.loads(r.body)["status"] for r in gone_receiver.requests] == ["start"]
    # And the other URL got all of its own
    assert [json.loads(r.body)["status"] for r in healthy.requests] == ["start", "complete"]
    records = {(r["eventId"], r["url"]): r["status"] for r in kube.records("x")}
    assert records == {
        ("start", gone): "Gone",
        ("start", other): "Delivered",
        ("complete", other): "Delivered",
    }
    assert [reason for _, reason, _ in posted] == ["WebhookGone"]


async def test_hung_name_resolution_never_blocks_git_syncs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a DNS server that never answers for the hooks' domain
    released = threading.Event()
    real = socket.getaddrinfo
    looked_up: list[str] = []

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if str(host).endswith(".hung.example"):
            looked_up.append(str(host))
            released.wait(30)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    policy = webhooks.SendPolicy(timeout=1.0)
    message = core.Message("", "start", "msg_1", b"{}", datetime.now(UTC))
    try:
        async with webhooks.new_client(policy) as client:
            # When 40 deliveries to 40 such hosts wait on name resolution
            sends = [
                asyncio.create_task(
                    webhooks.send(
                        message._replace(url=f"https://h{i}.hung.example/hook"),
                        SIGNED["OVERSEER_WEBHOOK_SECRET"],
                        client,
                        policy,
                    )
                )
                for i in [*[0] * 10, *range(40)]
            ]
            await asyncio.sleep(0.2)
            # Then a git sync's blocking work (repositories.py runs it with
            # asyncio.to_thread, on the default executor) still runs at once
            began = time.monotonic()
            assert await asyncio.wait_for(asyncio.to_thread(lambda: "fetched"), 5) == "fetched"
            assert time.monotonic() - began < 0.5
            results = await asyncio.gather(*sends)
        # And each delivery failed within its own timeout, to be retried
        assert all(r.retry for r in results)
        # And the 11 deliveries to one host waited on one lookup, not on 11 threads
        assert looked_up.count("h0.hung.example") == 1
    finally:
        released.set()
