"""A given-up webhook delivery sent again through the API, on the real cluster: the API's
``POST /jobs/{name}/{id}/deliveries/{delivery}`` resets the record, and the operator
delivers it to a real loopback receiver under the id it was first sent with.

The retry horizon is compressed by the operator's settings (as in
``test_webhook_faults``: 100 ms, 400 ms, 3 s instead of 1 s, 5 min, 24 h).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.e2e.test_webhooks import OPERATOR_ENV, headers_of, received
from tests.support import recorder
from tests.support.api_process import run_api
from tests.support.cluster import Kube
from tests.support.gitserver import Upstream
from tests.support.operator import run_operator
from tests.support.overseer import eventually, repository, wait_for_jobs

pytestmark = pytest.mark.cluster

COMPRESSED = {
    "OVERSEER_WEBHOOK_RETRY_MIN": "100ms",
    "OVERSEER_WEBHOOK_RETRY_MAX": "400ms",
    "OVERSEER_WEBHOOK_RETRY_HORIZON": "3s",
}


@pytest.fixture
def receiver() -> Iterator[recorder.Recorder]:
    with recorder.serve() as served:
        yield served


def deliveries(client: httpx.Client, url: str) -> list[dict[str, Any]]:
    answer = client.get(url)
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["deliveries"]
    return found


def test_a_given_up_delivery_is_replayed_through_the_api(
    kube: Kube, overseer_crds: None, tmp_path: Path, receiver: recorder.Recorder
) -> None:
    # Given a job hooked on start to a receiver that answers 503 past the retry horizon
    receiver.script[:] = [(503, 0.0)] * 100_000
    hook = f"{receiver.url}/hooks/overseer"
    upstream = Upstream.create(tmp_path / "git" / "jobs.git")
    jobs = [{"name": "Hooked", "command": "true", "hooks": {"start": hook}}]
    upstream.commit({"jobs.yml": yaml.safe_dump(jobs)}, "a hooked job")
    (tmp_path / "operator").mkdir()
    env = {**OPERATOR_ENV, **COMPRESSED}
    with (
        run_operator(
            kube.cluster, kube.namespace, tmp_path / "operator", extra_env=env
        ) as operator,
        run_api(kube.cluster, kube.namespace, tmp_path) as api,
        api.client("runner") as client,
    ):
        try:
            kube.apply(repository("jobs", upstream.file_url))
            wait_for_jobs(kube, {"Hooked"})
            created = client.post("/jobs/Hooked", json={})
            assert created.status_code == 201, created.text
            url, execution_id = created.json()["url"], created.json()["id"]
            # When its start delivery is given up
            [record] = eventually(
                lambda: (
                    d if (d := deliveries(client, url)) and d[0]["status"] == "GivenUp" else None
                ),
                timeout=90,
                what="the start delivery given up",
            )
            attempts = len(received(receiver, execution_id))
            assert attempts == record["attempts"] > 1
            # And the receiver is back, and a reader may not replay it but a runner may
            receiver.script.clear()
            replay = f"{url}/deliveries/{record['id']}"
            with api.client("reader") as reader:
                assert reader.post(replay).status_code == 403
            answer = client.post(replay)
            assert answer.status_code == 202, answer.text
            assert answer.json()["delivery"]["status"] == "Pending"
            # Then the operator delivers it at once, under the id it was first sent with
            [done] = eventually(
                lambda: d if (d := deliveries(client, url))[0]["status"] == "Delivered" else None,
                timeout=60,
                what="the replayed delivery delivered",
            )
            assert (done["attempts"], done["replays"]) == (1, 1)
            sent = received(receiver, execution_id)
            assert len(sent) == attempts + 1
            assert len({headers_of(r)["webhook-id"] for r in sent}) == 1
            assert json.loads(sent[-1].body)["status"] == "start"
            # And who asked is on record
            events = kube.kubectl("get", "events", "-o", "json").stdout
            replayed = [
                e for e in json.loads(events)["items"] if e["reason"] == "WebhookReplayRequested"
            ]
            assert len(replayed) == 1 and "(by token:runner)" in replayed[0]["message"]
            operator.check_alive()
        finally:
            kube.kubectl("delete", "overseerrepositories", "--all", "--timeout=60s", check=False)
