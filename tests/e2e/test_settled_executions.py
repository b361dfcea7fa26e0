"""A settled execution leaves the operator's watch, and a replay brings it back.

On the real cluster, with the real operator, API and a loopback receiver: an execution
that completed, whose output is archived and whose webhook delivery was delivered, is
labelled ``overseer.dev/settled``; a restarted operator does not list it (its watch's
events, counted in ``/metrics``, never include it); a delivery of it replayed through
the API is delivered again, and it settles again; deleting it needs nothing of the
operator (no finalizer).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.e2e.test_api_deliveries import deliveries
from tests.e2e.test_webhooks import OPERATOR_ENV, headers_of, received
from tests.support import recorder
from tests.support.api_process import run_api
from tests.support.cluster import Kube
from tests.support.gitserver import Upstream
from tests.support.operator import OperatorProcess, run_operator
from tests.support.overseer import eventually, repository, wait_for_jobs

pytestmark = pytest.mark.cluster

SETTLED = "overseer.dev/settled"
ENV = {**OPERATOR_ENV, "OVERSEER_FINISHED_JOB_TTL": "0"}


def labelled(kube: Kube) -> list[str]:
    """The names of the namespace's executions labelled settled."""
    found = kube.kubectl("get", "osx", "-l", f"{SETTLED}=true", "-o", "name").stdout
    return [line.split("/", 1)[1] for line in found.split()]


def watch_events(operator: OperatorProcess, kind: str) -> float:
    return operator.metric("overseer_execution_watch_events_total", type=kind)


def test_a_settled_execution_leaves_the_watch_and_a_replay_brings_it_back(
    kube: Kube, overseer_crds: None, tmp_path: Path
) -> None:
    upstream = Upstream.create(tmp_path / "git" / "jobs.git")
    with recorder.serve() as receiver, run_api(kube.cluster, kube.namespace, tmp_path) as api:
        jobs = [{"name": "Hooked", "command": "true", "hooks": {"complete": receiver.url}}]
        upstream.commit({"jobs.yml": yaml.safe_dump(jobs)}, "a hooked job")
        first, second = tmp_path / "first", tmp_path / "second"
        first.mkdir()
        second.mkdir()
        try:
            # Given an execution that completed and whose delivery was delivered
            with run_operator(kube.cluster, kube.namespace, first, extra_env=ENV) as operator:
                kube.apply(repository("jobs", upstream.file_url))
                wait_for_jobs(kube, {"Hooked"})
                with api.client("runner") as client:
                    created = client.post("/jobs/Hooked", json={})
                    assert created.status_code == 201, created.text
                url, execution_id = created.json()["url"], created.json()["id"]
                # Then the operator labels it settled, once
                [name] = eventually(lambda: labelled(kube), timeout=120, what="the label")
                assert len(received(receiver, execution_id)) == 1
                assert operator.metric("overseer_executions_settled_total") == 1
                eventually(  # it left the watch: the API server shows it as DELETED
                    lambda: watch_events(operator, "DELETED") >= 1, timeout=30, what="DELETED"
                )
                operator.check_alive()
            # When the operator starts again
            with run_operator(kube.cluster, kube.namespace, second, extra_env=ENV) as operator:
                operator.wait_for_log("Starting the watch-stream for overseerexecutions")
                # And a runner replays its delivery through the API
                with api.client("runner") as client:
                    [record] = deliveries(client, url)
                    assert record["status"] == "Delivered"
                    answer = client.post(f"{url}/deliveries/{record['id']}")
                    assert answer.status_code == 202, answer.text
                # Then the replay is delivered again, under the same id
                sent = eventually(
                    lambda: r if len(r := received(receiver, execution_id)) == 2 else None,
                    timeout=60,
                    what="the replayed delivery",
                )
                assert len({headers_of(r)["webhook-id"] for r in sent}) == 1
                assert json.loads(sent[-1].body)["status"] == "complete"
                # And the restarted operator never listed the execution: it saw it only
                # once the replay took the label off
                assert watch_events(operator, "LISTED") == 0
                assert watch_events(operator, "ADDED") >= 1
                # And it settles again
                eventually(
                    lambda: operator.metric("overseer_executions_settled_total") == 1,
                    timeout=60,
                    what="the execution labelled settled again",
                )
                assert labelled(kube) == [name]
                # And deleting it needs nothing of the operator
                kube.kubectl("delete", "osx", name, "--timeout=30s")
                operator.check_alive()
        finally:
            kube.kubectl("delete", "overseerrepositories", "--all", "--timeout=60s", check=False)
