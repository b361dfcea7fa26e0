"""A receiver down for long, on the real cluster: retried past 15 attempts up to the retry
horizon, recorded GivenUp, then replayed by resetting the record, and delivered.

The horizon is compressed by the operator's settings (``OVERSEER_WEBHOOK_RETRY_MIN``,
``_MAX``, ``_HORIZON``: 100 ms, 400 ms, 6 s instead of 1 s, 5 min, 24 h). The replay is
what the API's ``POST .../deliveries/{id}`` does: a status patch with the record reset
by :func:`overseer.core.delivery_records.replay`, here sent with kubectl.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from overseer.core import delivery_records, settlement
from overseer.crd import base
from overseer.crd import execution as execution_
from tests.e2e.test_executions import execute, status_of, statuses, wait_for_phase
from tests.e2e.test_webhooks import (
    NAMES,
    OPERATOR_ENV,
    headers_of,
    jobs_yaml,
    received,
    warnings_of,
)
from tests.support import recorder
from tests.support.cluster import Kube
from tests.support.gitserver import Upstream
from tests.support.operator import run_operator
from tests.support.overseer import eventually, repository, wait_for_jobs

pytestmark = pytest.mark.cluster

COMPRESSED = {
    "OVERSEER_WEBHOOK_RETRY_MIN": "100ms",
    "OVERSEER_WEBHOOK_RETRY_MAX": "400ms",
    "OVERSEER_WEBHOOK_RETRY_HORIZON": "6s",
}


@pytest.fixture
def receiver() -> Iterator[recorder.Recorder]:
    with recorder.serve() as served:
        yield served


def by_event(kube: Kube, name: str) -> dict[str, dict[str, Any]]:
    status = status_of(kube, name)
    ids = {e["id"]: e["status"] for e in status.get("events", [])}
    return {ids[d["eventId"]]: d for d in status.get("deliveries", [])}


def test_a_receiver_down_past_the_horizon_is_given_up_then_replayed(
    kube: Kube, overseer_crds: None, tmp_path: Path, receiver: recorder.Recorder
) -> None:
    # Given a receiver that answers 503 for longer than the (compressed) retry horizon
    receiver.script[:] = [(503, 0.0)] * 100_000
    upstream = Upstream.create(tmp_path / "git" / "jobs.git")
    upstream.commit({"jobs.yml": jobs_yaml(f"{receiver.url}/hooks/overseer")}, "hooked jobs")
    workdir = tmp_path / "operator"
    workdir.mkdir()
    env = {**OPERATOR_ENV, **COMPRESSED}
    with run_operator(kube.cluster, kube.namespace, workdir, extra_env=env) as operator:
        try:
            kube.apply(repository("jobs", upstream.file_url))
            job = wait_for_jobs(kube, NAMES)["Deploy"]
            # When a job with hooks on start, a custom event and complete runs
            name, execution_id = execute(kube, job)
            assert wait_for_phase(kube, name, {"Complete"})["phase"] == "Complete"
            # Then each delivery is retried well past 15 attempts, then recorded GivenUp
            records = eventually(
                lambda: (
                    d
                    if len(d := by_event(kube, name)) == 3
                    and all(r["status"] == "GivenUp" for r in d.values())
                    else None
                ),
                timeout=120,
                what="three deliveries given up",
            )
            for record in records.values():
                assert record["attempts"] > 15, record
                assert record["lastError"].startswith(
                    f"gave up after {record['attempts']} attempts over 6s: "
                ), record
                assert "503" in record["lastError"]
                assert "nextAttemptAt" not in record
            attempts = sum(r["attempts"] for r in records.values())
            assert len(received(receiver, execution_id)) == attempts
            reasons = [e["reason"] for e in warnings_of(kube, name)]
            assert "WebhookGivenUp" in reasons
            # When the receiver is back and the start is replayed (a reset of its record)
            receiver.script.clear()
            current = [
                execution_.Delivery.model_validate(d) for d in status_of(kube, name)["deliveries"]
            ]
            start = next(d for d in current if d.event_id == "start")
            replayed = delivery_records.replay(
                current, delivery_records.delivery_id(start), datetime.now(UTC)
            )
            patch = {"status": {"deliveries": [base.to_body(d) for d in replayed]}}
            kube.kubectl(
                "patch", "osx", name, "--subresource=status", "--type=merge",
                "-p", json.dumps(patch),
            )  # fmt: skip
            # It had settled and left the operator's watch: its label goes after the
            # reset (docs/webhooks.rst)
            kube.kubectl("label", "osx", name, f"{settlement.SETTLED_LABEL}-")
            # Then it is delivered at once, under the id it was first sent with
            delivered = eventually(
                lambda: (
                    r if (r := by_event(kube, name)["start"])["status"] == "Delivered" else None
                ),
                timeout=60,
                what="the replayed start to be delivered",
            )
            assert (delivered["attempts"], delivered["replays"]) == (1, 1)
            sent = received(receiver, execution_id)
            assert len({headers_of(r)["webhook-id"] for r in sent if b'"start"' in r.body}) == 1
            # And the others stay given up: nothing else was sent
            assert len(sent) == attempts + 1
            assert statuses(status_of(kube, name)) == ["start", "deploying", "complete"]
            operator.check_alive()
        finally:
            kube.kubectl("delete", "overseerrepositories", "--all", "--timeout=60s", check=False)
