"""The operator's delivery lanes against a real receiver on 127.0.0.1 and an in-memory API."""

from __future__ import annotations

import asyncio
import base64
import copy
import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from standardwebhooks import webhooks as standard

from overseer import errors
from overseer.crd.types import rfc3339
from overseer.operator import context, deliveries
from overseer.operator.settings import Settings
from tests.support import fake_kube, recorder

pytestmark = pytest.mark.timeout(60)

NS, NAME = "ns", "deploy-1a2b3c4d5e-1795944166-955902"
OPERATOR_SIGNED = {
    "OVERSEER_WEBHOOK_SECRET": "a-secret-of-16-bytes",
    "OVERSEER_WEBHOOK_SIGNING_FALLBACK": "true",  # namespace ns has no Secret of its own
}
KEY = context.Key(NS, NAME)


class FakeKube(fake_kube.FakeKube):
    """Just what the lanes use: get an execution, merge-patch its status."""

    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__()
        self.body: dict[str, Any] | None = body
        self.patches: list[dict[str, Any]] = []
        self.secrets: dict[tuple[str, str], dict[str, bytes]] = {}
        self.secret_reads = 0

    async def read_secret(self, namespace: str, name: str) -> dict[str, bytes]:
        self.secret_reads += 1
        if (namespace, name) not in self.secrets:
            raise errors.KubeSecretNotFoundError(f"Secret {namespace}/{name} does not exist")
        return dict(self.secrets[namespace, name])

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.body)

    async def patch_status(
        self, kind: str, namespace: str, name: str, status: Mapping[str, Any]
    ) -> None:
        assert self.body is not None
        self.patches.append(dict(status))
        self.body.setdefault("status", {}).update(copy.deepcopy(dict(status)))


def execution(url: str) -> dict[str, Any]:
    # Ended an hour ago: long past the terminal event's hold-back (30 s), well inside the
    # retry horizon (24 h from the event), which a fixed date would soon leave behind.
    start = datetime.now(UTC) - timedelta(hours=1)
    end = start + timedelta(seconds=5)
    return {
        "apiVersion": "overseer.dev/v1alpha1",
        "kind": "OverseerExecution",
        "metadata": {"namespace": NS, "name": NAME, "uid": "uid-1"},
        "spec": {
            "job": "deploy-1a2b3c4d5e",
            "executionId": "1795944166.955902",
            "definition": {"name": "Deploy", "hooks": {"start": url, "complete": [url]}},
        },
        "status": {
            "events": [
                {"id": "start", "status": "start", "time": rfc3339(start)},
                {"id": "complete", "status": "complete", "time": rfc3339(end)},
            ]
        },
    }


@pytest.fixture
def receiver() -> Iterator[recorder.Recorder]:
    with recorder.serve() as served:
        yield served


def lanes_for(
    kube: FakeKube, env: dict[str, str], output: context.OutputHook | None = None
) -> tuple[deliveries.Deliveries, list[Any]]:
    posted: list[Any] = []
    settings = Settings.from_env(
        {
            "OVERSEER_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.1/32",
            "OVERSEER_RETRY_MIN": "1s",
            # namespace ns has no Secret of its own: the operator's secret, when given, signs
            "OVERSEER_WEBHOOK_SIGNING_FALLBACK": "true",
            **env,
        }
    )
    lanes = deliveries.Deliveries(
        kube,
        settings,
        context.Tracker(),
        lambda obj, kind, reason, message: posted.append((kind, reason, message)),
        output=output,
    )
    return lanes, posted


async def settled(lanes: deliveries.Deliveries) -> None:
    for _ in range(400):
        if not lanes.lanes:
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"lanes still running: {lanes.lanes}")


async def test_owed_events_go_in_order_and_are_recorded_delivered(
    receiver: recorder.Recorder,
) -> None:
    kube = FakeKube(execution(f"{receiver.url}/hook"))
    lanes, posted = lanes_for(kube, OPERATOR_SIGNED)
    try:
        lanes.notice(kube.body or {})
        lanes.notice(kube.body or {})  # a second watch event joins the running lane
        assert len(lanes.lanes) == 1
        await settled(lanes)
    finally:
        await lanes.close()
    assert [json.loads(r.body)["status"] for r in receiver.requests] == ["start", "complete"]
    assert kube.body is not None
    records = kube.body["status"]["deliveries"]
    assert [(d["eventId"], d["status"], d["attempts"]) for d in records] == [
        ("start", "Delivered", 1),
        ("complete", "Delivered", 1),
    ]
    # each write is the deliveries alone, never the rest of the status
    assert all(set(patch) == {"deliveries"} for patch in kube.patches)
    assert posted == []
    # once all is delivered, a watch event starts nothing
    lanes.notice(kube.body)
    assert lanes.lanes == frozenset()


NS_SECRET = "whsec_" + base64.b64encode(b"namespace ns's own signing key").decode()


def verified(secret: str, request: recorder.Request) -> bool:
    try:
        standard.Webhook(secret).verify(request.body, dict(request.headers))
    except standard.WebhookVerificationError:
        return False
    return True


async def test_a_namespace_without_its_secret_gets_nothing_unsigned_until_it_has_one(
    receiver: recorder.Recorder,
) -> None:
    # Given the operator's own secret, but no fallback to it, and no Secret in namespace ns
    kube = FakeKube(execution(f"{receiver.url}/hook"))
    env = {
        "OVERSEER_WEBHOOK_SECRET": "a-secret-of-16-bytes",
        "OVERSEER_WEBHOOK_SIGNING_FALLBACK": "false",
        "OVERSEER_WEBHOOK_SIGNING_CACHE": "0",
    }
    lanes, posted = lanes_for(kube, env)
    try:
        # When the execution's events are owed
        lanes.notice(kube.body or {})
        # Then nothing is sent: the delivery is Pending, saying why, retried later
        await asyncio.sleep(0.5)
        assert receiver.requests == []
        assert kube.body is not None
        [record] = kube.body["status"]["deliveries"]
        assert (record["eventId"], record["status"], record["attempts"]) == ("start", "Pending", 1)
        assert (
            "no Secret overseer-webhook-signing with a key secret in namespace ns"
            in (record["lastError"])
        )
        assert record["nextAttemptAt"]
        # and one Warning Event says so
        assert [(kind, reason) for kind, reason, _ in posted] == [("Warning", "WebhookNotSigned")]
        # When the namespace gets its Secret
        kube.secrets[NS, "overseer-webhook-signing"] = {"secret": NS_SECRET.encode()}
        # Then the next attempts send everything, signed with the namespace's secret
        await settled(lanes)
    finally:
        await lanes.close()
    assert [json.loads(r.body)["status"] for r in receiver.requests] == ["start", "complete"]
    assert all(verified(NS_SECRET, r) for r in receiver.requests)
    assert all(json.loads(r.body)["namespace"] == NS for r in receiver.requests)
    assert len(posted) == 1, posted


async def test_the_namespace_secret_is_read_once_for_a_burst_and_wins_over_the_fallback(
    receiver: recorder.Recorder,
) -> None:
    kube = FakeKube(execution(f"{receiver.url}/hook"))
    kube.secrets[NS, "overseer-webhook-signing"] = {"secret": NS_SECRET.encode()}
    lanes, _ = lanes_for(kube, OPERATOR_SIGNED)
    try:
        lanes.notice(kube.body or {})
        await settled(lanes)
    finally:
        await lanes.close()
    assert len(receiver.requests) == 2
    assert all(verified(NS_SECRET, r) for r in receiver.requests)
    assert not verified("a-secret-of-16-bytes", receiver.requests[0])
    assert kube.secret_reads == 1


async def test_a_deleted_execution_stops_its_lanes(receiver: recorder.Recorder) -> None:
    receiver.script[:] = [(500, 0.0)]
    kube = FakeKube(execution(f"{receiver.url}/hook"))
    lanes, _ = lanes_for(kube, OPERATOR_SIGNED)
    try:
        lanes.notice(kube.body or {})
        await asyncio.to_thread(receiver.wait_for, 1)
        # the lane now waits for the retry; the execution goes away
        lanes.notice(kube.body or {}, deleted=True)
        assert lanes.lanes == frozenset()
    finally:
        await lanes.close()
    assert len(receiver.requests) == 1


class Reading(context.NoOutput):
    """An output follower still reading the pod's log, until ``done`` is set."""

    def __init__(self) -> None:
        self.done = False

    def settled(self, key: context.Key, pod: str | None, gone: bool) -> bool:
        return self.done


async def test_a_terminal_event_waits_while_the_log_is_still_read(
    receiver: recorder.Recorder,
) -> None:
    # After a restart the outcome is known from the pod before the log is read again:
    # a custom event still in the log would come after the terminal one.
    body = execution(f"{receiver.url}/hook")
    now = datetime.now(UTC)
    for event in body["status"]["events"]:
        event["time"] = now.isoformat()
    kube = FakeKube(body)
    reading = Reading()
    lanes, _ = lanes_for(kube, OPERATOR_SIGNED, reading)
    try:
        lanes.notice(kube.body or {})
        await asyncio.to_thread(receiver.wait_for, 1)
        await asyncio.sleep(1.5)
        assert [json.loads(r.body)["status"] for r in receiver.requests] == ["start"]
        # the log is read (its custom events in the status), so the end goes out
        reading.done = True
        await settled(lanes)
    finally:
        await lanes.close()
    assert [json.loads(r.body)["status"] for r in receiver.requests] == ["start", "complete"]


async def test_a_terminal_event_is_held_back_for_a_while_only(receiver: recorder.Recorder) -> None:
    kube = FakeKube(execution(f"{receiver.url}/hook"))  # it ended long ago
    lanes, _ = lanes_for(kube, OPERATOR_SIGNED, Reading())
    try:
        lanes.notice(kube.body or {})
        await settled(lanes)
    finally:
        await lanes.close()
    assert [json.loads(r.body)["status"] for r in receiver.requests] == ["start", "complete"]


async def test_a_start_on_a_whole_second_waits_for_the_frames_microseconds(
    receiver: recorder.Recorder,
) -> None:
    # The pod status said the container started (whole seconds) before the supervisor's
    # start frame was read: sent now, the start would carry the pod's coarse time.
    body = execution(f"{receiver.url}/hook")
    whole = datetime.now(UTC).replace(microsecond=0)
    body["status"]["events"] = [
        {"id": "start", "status": "start", "time": whole.isoformat().replace("+00:00", "Z")}
    ]
    kube = FakeKube(body)
    lanes, _ = lanes_for(kube, OPERATOR_SIGNED)
    try:
        lanes.notice(kube.body or {})
        await asyncio.sleep(1.0)
        assert receiver.requests == []
        # the start frame is read: the status has its microseconds, and they go out
        assert kube.body is not None
        kube.body["status"]["events"][0]["time"] = "2026-11-29T09:00:00.250001Z"
        lanes.notice(kube.body)
        await asyncio.to_thread(receiver.wait_for, 1)
    finally:
        await lanes.close()
    assert json.loads(receiver.requests[0].body)["time"] == "2026-11-29T09:00:00.250001Z"


async def test_a_start_never_refined_goes_out_after_a_while(receiver: recorder.Recorder) -> None:
    body = execution(f"{receiver.url}/hook")
    whole = datetime.now(UTC).replace(microsecond=0)
    body["status"]["events"] = [
        {"id": "start", "status": "start", "time": whole.isoformat().replace("+00:00", "Z")}
    ]
    kube = FakeKube(body)
    lanes, _ = lanes_for(kube, OPERATOR_SIGNED)
    try:
        lanes.notice(kube.body or {})
        await asyncio.to_thread(receiver.wait_for, 1, 15)
    finally:
        await lanes.close()
    assert [json.loads(r.body)["status"] for r in receiver.requests] == ["start"]


async def test_a_start_on_a_whole_second_waits_while_its_log_is_read_again(
    receiver: recorder.Recorder,
) -> None:
    # An operator started (after a kill) 8 s after the container: the pod's whole-second
    # start is older than the refining hold, but the log is still being read again, and
    # the first operator may have sent the start with the frame's microseconds already:
    # sent now, the same webhook-id would carry another body.
    body = execution(f"{receiver.url}/hook")
    whole = (datetime.now(UTC) - timedelta(seconds=8)).replace(microsecond=0)
    body["status"]["events"] = [
        {"id": "start", "status": "start", "time": whole.isoformat().replace("+00:00", "Z")}
    ]
    kube = FakeKube(body)
    reading = Reading()
    lanes, _ = lanes_for(kube, OPERATOR_SIGNED, reading)
    try:
        lanes.notice(kube.body or {})
        await asyncio.sleep(1.5)
        assert receiver.requests == []
        # the start frame is read again: the status has its microseconds, and they go out
        assert kube.body is not None
        kube.body["status"]["events"][0]["time"] = "2026-11-29T09:00:00.250001Z"
        lanes.notice(kube.body)
        await asyncio.to_thread(receiver.wait_for, 1)
    finally:
        await lanes.close()
    assert json.loads(receiver.requests[0].body)["time"] == "2026-11-29T09:00:00.250001Z"


async def test_a_start_on_a_whole_second_waits_for_its_log_however_old_after_a_restart(
    receiver: recorder.Recorder,
) -> None:
    # After a run of operator restarts none of which read the log far enough, the pod's
    # whole-second start is 40 s old: this operator still reads the log again first.
    body = execution(f"{receiver.url}/hook")
    whole = (datetime.now(UTC) - timedelta(seconds=40)).replace(microsecond=0)
    body["status"]["events"] = [
        {"id": "start", "status": "start", "time": whole.isoformat().replace("+00:00", "Z")}
    ]
    kube = FakeKube(body)
    lanes, _ = lanes_for(kube, OPERATOR_SIGNED, Reading())
    try:
        lanes.notice(kube.body or {})
        await asyncio.sleep(1.5)
        assert receiver.requests == []
        assert kube.body is not None
        kube.body["status"]["events"][0]["time"] = "2026-11-29T09:00:00.250001Z"
        lanes.notice(kube.body)
        await asyncio.to_thread(receiver.wait_for, 1)
    finally:
        await lanes.close()
    assert json.loads(receiver.requests[0].body)["time"] == "2026-11-29T09:00:00.250001Z"
