"""Status events reach the jobs' hooks: in order, signed, retried, at least once, recorded.

Real git repository, the real operator process, the real cluster, and a real HTTP
receiver on this host's loopback (the operator runs on this host too; its settings
allow 127.0.0.1/32 and nothing else private). Each test reads what the receiver got
and what ``status.deliveries`` says.
"""

from __future__ import annotations

import base64
import contextlib
import decimal
import json
import subprocess
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from standardwebhooks import webhooks as standard

from tests.e2e.test_executions import execute, status_of, statuses, wait_for_phase
from tests.support import recorder
from tests.support.cluster import Kube
from tests.support.gitserver import Upstream
from tests.support.operator import OperatorProcess, run_operator
from tests.support.overseer import eventually, repository, wait_for_jobs

pytestmark = pytest.mark.cluster

SECRET = "whsec_" + base64.b64encode(b"the e2e receiver's signing key!").decode()
API_URL = "https://overseer.example.com"
LINK_LOCAL = "http://169.254.169.254/latest/meta-data/"
PRIVATE = "http://10.255.255.1/hook"
NAMES = {"Deploy", "Away", "Exit three", "Refused"}
AWAY_OUTPUT = 30_000_000
"""Bytes the Away job writes before its event: a restarted operator reads them first."""


def jobs_yaml(hook: str) -> str:
    return yaml.safe_dump(
        [
            {
                "name": "Deploy",
                "command": """event deploying '{"pct": 40}'""",
                "hooks": {"start": hook, "deploying": hook, "complete": hook},
            },
            {
                "name": "Away",
                "command": f"sleep 5; head -c {AWAY_OUTPUT} /dev/zero; event deploying",
                "hooks": {"start": hook, "deploying": hook, "complete": hook},
            },
            {"name": "Exit three", "command": "exit 3", "hooks": {"start": hook, "fail": [hook]}},
            {
                "name": "Refused",
                "command": "sleep 3",
                "hooks": {"start": [LINK_LOCAL, PRIVATE, hook]},
            },
        ]
    )


@pytest.fixture
def receiver() -> Iterator[recorder.Recorder]:
    with recorder.serve() as served:
        yield served


@pytest.fixture
def upstream(tmp_path: Path, receiver: recorder.Recorder) -> Upstream:
    repo = Upstream.create(tmp_path / "git" / "jobs.git")
    repo.commit({"jobs.yml": jobs_yaml(f"{receiver.url}/hooks/overseer?token=t0k")}, "hooked jobs")
    return repo


OPERATOR_ENV = {
    "OVERSEER_API_URL": API_URL,
    "OVERSEER_WEBHOOK_SECRET": SECRET,
    # one namespace per test, without a Secret of its own: the operator's secret signs
    "OVERSEER_WEBHOOK_SIGNING_FALLBACK": "true",
    "OVERSEER_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.1/32",
    "OVERSEER_WEBHOOK_TIMEOUT": "10s",
}


def start_operator(kube: Kube, workdir: Path) -> Any:
    workdir.mkdir()
    return run_operator(kube.cluster, kube.namespace, workdir, extra_env=OPERATOR_ENV)


@pytest.fixture
def operator(
    kube: Kube, overseer_crds: None, tmp_path: Path, upstream: Upstream
) -> Iterator[OperatorProcess]:
    with start_operator(kube, tmp_path / "operator") as process:
        try:
            yield process
        finally:
            kube.kubectl("delete", "overseerrepositories", "--all", "--timeout=60s", check=False)


@pytest.fixture
def synced(kube: Kube, upstream: Upstream, operator: OperatorProcess) -> dict[str, Any]:
    kube.apply(repository("jobs", upstream.file_url))
    return wait_for_jobs(kube, NAMES)


# --- what the receiver got -----------------------------------------------------------------


def verify(headers: dict[str, str], body: bytes) -> bool:
    """What a receiver does, with the reference Standard Webhooks library."""
    try:
        standard.Webhook(SECRET).verify(body, headers)
    except standard.WebhookVerificationError:
        return False
    return True


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def headers_of(request: recorder.Request) -> dict[str, str]:
    return {k.lower(): v for k, v in request.headers.items()}


def received(receiver: recorder.Recorder, execution_id: str) -> list[recorder.Request]:
    return [r for r in receiver.requests if json.loads(r.body)["executionId"] == execution_id]


def wait_received(
    receiver: recorder.Recorder, execution_id: str, count: int, timeout: float = 120
) -> list[recorder.Request]:
    got: list[recorder.Request] = eventually(
        lambda: r if len(r := received(receiver, execution_id)) >= count else None,
        timeout,
        f"{count} webhooks of execution {execution_id}",
    )
    return got


def posted_statuses(requests: list[recorder.Request]) -> list[str]:
    return [json.loads(r.body)["status"] for r in requests]


def wait_delivered(kube: Kube, name: str, count: int, timeout: float = 120) -> dict[str, Any]:
    """The execution's status once COUNT deliveries are final (Delivered or Failed)."""

    def check() -> dict[str, Any] | None:
        status = status_of(kube, name)
        final = [d for d in status.get("deliveries", []) if d["status"] != "Pending"]
        return status if len(final) >= count else None

    try:
        result: dict[str, Any] = eventually(check, timeout, f"{count} final deliveries of {name}")
    except TimeoutError:
        raise AssertionError(f"{name}: {status_of(kube, name)}") from None
    return result


def warnings_of(kube: Kube, name: str) -> list[dict[str, Any]]:
    out = kube.kubectl(
        "get", "events", "--field-selector", f"involvedObject.name={name}", "-o", "json"
    ).stdout
    return [e for e in json.loads(out)["items"] if e.get("type") == "Warning"]


@contextlib.contextmanager
def watch_status(
    kube: Kube, name: str, path: Path
) -> Iterator[Callable[[], list[tuple[str, list[str]]]]]:
    """Watch the execution's status: each version's phase and event statuses, in order."""
    command = [
        *(kube.cluster.kubectl, "--kubeconfig", str(kube.cluster.kubeconfig)),
        *("-n", kube.namespace, "get", "overseerexecution", name, "--watch"),
        "--output=jsonpath={.status.phase}{'|'}{.status.events[*].status}{'\\n'}",
    ]
    with path.open("w") as out, subprocess.Popen(command, stdout=out) as watch:

        def versions() -> list[tuple[str, list[str]]]:
            lines = path.read_text().splitlines()
            return [
                (phase, events.split()) for phase, _, events in (x.partition("|") for x in lines)
            ]

        try:
            yield versions
        finally:
            watch.kill()


# --- tests ---------------------------------------------------------------------------------


def test_each_status_event_is_posted_in_order_signed_and_recorded(
    kube: Kube, receiver: recorder.Recorder, synced: dict[str, Any], operator: OperatorProcess
) -> None:
    # When a job that emits a custom event runs, and a job that fails
    name, execution_id = execute(kube, synced["Deploy"])
    failing, failing_id = execute(kube, synced["Exit three"])
    # Then the receiver gets start, the custom event and complete, in that order
    requests = wait_received(receiver, execution_id, 3)
    assert posted_statuses(requests) == ["start", "deploying", "complete"]
    status = wait_delivered(kube, name, 3)
    assert status["phase"] == "Complete"
    for request, event in zip(requests, status["events"], strict=True):
        headers = headers_of(request)
        # each signed (Standard Webhooks), the event id the idempotency key
        assert verify(headers, request.body), headers
        assert request.method == "POST"
        assert request.path == "/hooks/overseer?token=t0k"
        assert headers["content-type"] == "application/json"
        assert headers["user-agent"].startswith("overseer/")
        payload = json.loads(request.body)
        assert payload["event"] == headers["webhook-id"]
        assert payload["event"].startswith("msg_")
        # with the original's fields
        assert payload["job"] == "Deploy"
        # execution a JSON number with the id's exact digits, executionId the same as text
        assert f'"execution":{execution_id},'.encode() in request.body
        assert json.loads(request.body, parse_float=decimal.Decimal)["execution"] == (
            decimal.Decimal(execution_id)
        )
        assert payload["executionId"] == execution_id
        assert payload["status"] == event["status"]
        assert payload["metadata"] == f"{API_URL}/jobs/Deploy/{execution_id}"
        assert payload["data"] == event.get("data")
    assert json.loads(requests[1].body)["data"] == {"pct": 40}
    # And start, the custom event and complete carry the supervisor's microsecond times,
    # in order, in the status and in what was sent
    recorded = [parse_time(e["time"]) for e in status["events"]]
    assert recorded[0] < recorded[1] < recorded[2], status["events"]
    assert all(t.microsecond for t in recorded), status["events"]
    assert [parse_time(json.loads(r.body)["time"]) for r in requests] == recorded
    assert len({headers_of(r)["webhook-id"] for r in requests}) == 3
    # And the execution records each delivery as Delivered, once
    deliveries = status["deliveries"]
    assert [d["eventId"] for d in deliveries] == [e["id"] for e in status["events"]]
    assert all(d["status"] == "Delivered" and d["attempts"] == 1 for d in deliveries), deliveries
    assert all(d["url"] == f"{receiver.url}/hooks/overseer?token=t0k" for d in deliveries)
    # And the failing job's start and fail reach the receiver, fail with its exit code
    failed = wait_received(receiver, failing_id, 2)
    assert posted_statuses(failed) == ["start", "fail"]
    assert json.loads(failed[1].body)["data"]["exitCode"] == 3
    assert all(verify(headers_of(r), r.body) for r in failed)
    assert [d["status"] for d in wait_delivered(kube, failing, 2)["deliveries"]] == [
        "Delivered",
        "Delivered",
    ]
    # And the signing secret was never logged
    assert SECRET not in operator.log()
    assert SECRET.removeprefix("whsec_") not in operator.log()


def test_a_failing_receiver_is_retried_with_backoff_and_each_attempt_is_recorded(
    kube: Kube, receiver: recorder.Recorder, synced: dict[str, Any]
) -> None:
    # Given a receiver that answers 500 three times, then 200
    receiver.script[:] = [(500, 0.0), (500, 0.0), (500, 0.0)]
    # When a job runs
    name, execution_id = execute(kube, synced["Deploy"])
    # Then the start is Pending in between, with its attempts and the receiver's answer
    pending = eventually(
        lambda: next(
            (d for d in status_of(kube, name).get("deliveries", []) if d["status"] == "Pending"),
            None,
        ),
        60,
        "a Pending delivery",
    )
    assert pending["eventId"] == "start"
    assert pending["attempts"] >= 1
    assert "answered 500" in pending["lastError"]
    assert pending["nextAttemptAt"]
    # And it is delivered on the fourth attempt, before the later events (one lane, in order)
    requests = wait_received(receiver, execution_id, 6)
    assert posted_statuses(requests) == ["start"] * 4 + ["deploying", "complete"]
    ids = {headers_of(r)["webhook-id"] for r in requests[:4]}
    assert len(ids) == 1, "every attempt carries the same webhook-id"
    assert len({r.body for r in requests[:4]}) == 1, "and the same body"
    assert all(verify(headers_of(r), r.body) for r in requests)
    status = wait_delivered(kube, name, 3)
    event_status = {e["id"]: e["status"] for e in status["events"]}
    attempts = {
        event_status[d["eventId"]]: (d["status"], d["attempts"]) for d in status["deliveries"]
    }
    assert attempts == {
        "start": ("Delivered", 4),
        "deploying": ("Delivered", 1),
        "complete": ("Delivered", 1),
    }
    assert "lastError" not in status["deliveries"][0]


def test_a_delivery_cut_by_an_operator_kill_is_sent_again_under_the_same_id(
    kube: Kube, overseer_crds: None, tmp_path: Path, receiver: recorder.Recorder, upstream: Upstream
) -> None:
    # Given a receiver that takes a minute to answer its first request
    receiver.script[:] = [(200, 60.0)]
    with start_operator(kube, tmp_path / "first") as operator:
        kube.apply(repository("jobs", upstream.file_url))
        job = wait_for_jobs(kube, NAMES)["Deploy"]
        name, execution_id = execute(kube, job)
        # When the operator is killed while the start is being delivered
        wait_received(receiver, execution_id, 1)
        operator.process.kill()
        operator.process.wait(timeout=30)
    assert not any(d["status"] == "Delivered" for d in status_of(kube, name).get("deliveries", []))
    # And started again
    with start_operator(kube, tmp_path / "second") as operator:
        try:
            # Then every event is delivered, the start twice under one webhook-id
            status = wait_delivered(kube, name, 3)
            requests = wait_received(receiver, execution_id, 4)
            assert posted_statuses(requests) == ["start", "start", "deploying", "complete"]
            first, again = requests[0], requests[1]
            assert headers_of(first)["webhook-id"] == headers_of(again)["webhook-id"]
            assert first.body == again.body
            assert verify(headers_of(again), again.body)
            assert statuses(status) == ["start", "deploying", "complete"]
            assert [d["status"] for d in status["deliveries"]] == ["Delivered"] * 3
            operator.check_alive()
        finally:
            kube.kubectl("delete", "overseerrepositories", "--all", "--timeout=60s", check=False)


def test_events_written_while_the_operator_was_away_are_posted_before_the_end(
    kube: Kube, overseer_crds: None, tmp_path: Path, receiver: recorder.Recorder, upstream: Upstream
) -> None:
    # Given an execution whose start was delivered
    with start_operator(kube, tmp_path / "first") as operator:
        kube.apply(repository("jobs", upstream.file_url))
        job = wait_for_jobs(kube, NAMES)["Away"]
        name, execution_id = execute(kube, job)
        wait_received(receiver, execution_id, 1)
        pod = wait_for_phase(kube, name, {"Running"})["podName"]
        # When the operator stops, and the job writes its output and an event, and ends
        operator.process.kill()
        operator.process.wait(timeout=30)
    kube.wait_for_pod_end(pod, timeout=60)
    assert status_of(kube, name)["phase"] == "Running"
    # And a new operator finds it ended: it has 30 MB of log to read before the event
    with (
        watch_status(kube, name, tmp_path / "watched") as watched,
        start_operator(kube, tmp_path / "second") as operator,
    ):
        try:
            # Then the receiver gets the event before complete, as if it had never been away
            requests = wait_received(receiver, execution_id, 3)
            assert posted_statuses(requests) == ["start", "deploying", "complete"]
            # and the status records them in that order, with the whole output, from the
            # first version that says Complete on (no reader sees an end without the event)
            status = wait_delivered(kube, name, 3)
            assert statuses(status) == ["start", "deploying", "complete"]
            ended = [v for v in watched() if v[0] == "Complete"]
            assert ended and all(v[1] == ["start", "deploying", "complete"] for v in ended), ended
            assert status["archive"]["stdout"]["size"] == AWAY_OUTPUT
            operator.check_alive()
        finally:
            kube.kubectl("delete", "overseerrepositories", "--all", "--timeout=60s", check=False)


def test_a_hook_to_a_refused_address_fails_at_once_and_is_never_retried(
    kube: Kube, receiver: recorder.Recorder, synced: dict[str, Any], operator: OperatorProcess
) -> None:
    # When a job whose start hooks include link-local and private addresses runs
    name, execution_id = execute(kube, synced["Refused"])
    # Then those deliveries fail at once, saying why, and the allowed one is delivered
    status = wait_delivered(kube, name, 3)
    by_url = {d["url"]: d for d in status["deliveries"]}
    assert by_url[LINK_LOCAL]["status"] == "Failed"
    assert "link-local" in by_url[LINK_LOCAL]["lastError"]
    assert by_url[PRIVATE]["status"] == "Failed"
    assert "private" in by_url[PRIVATE]["lastError"]
    assert by_url[f"{receiver.url}/hooks/overseer?token=t0k"]["status"] == "Delivered"
    assert posted_statuses(wait_received(receiver, execution_id, 1)) == ["start"]
    # And each is reported by a Warning Event on the execution
    reasons = eventually(
        lambda: [e["reason"] for e in warnings_of(kube, name)].count("WebhookUrlRefused") >= 2,
        60,
        "two WebhookUrlRefused events",
    )
    assert reasons
    # And, after the job is done (longer than a first retry would wait), never retried
    assert wait_for_phase(kube, name, {"Complete"})["phase"] == "Complete"
    final = {d["url"]: d for d in status_of(kube, name)["deliveries"]}
    assert final[LINK_LOCAL]["attempts"] == 1 and final[PRIVATE]["attempts"] == 1
    assert "nextAttemptAt" not in final[LINK_LOCAL]
    log = operator.log()
    assert log.count("to http://169.254.169.254/… failed") == 1, log[-3000:]
    assert log.count("to http://10.255.255.1/… failed") == 1
