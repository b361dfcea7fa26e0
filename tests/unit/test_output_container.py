"""The output follower reads the job container's state through execution_facts."""

from __future__ import annotations

from typing import Any

import pytest

from overseer.core import execution_job
from overseer.operator import log_reading
from overseer_library import protocol


def pod(state: dict[str, Any], name: str = execution_job.CONTAINER) -> dict[str, Any]:
    return {
        "status": {
            "containerStatuses": [{"name": "other", "state": {}}, {"name": name, "state": state}]
        }
    }


@pytest.mark.parametrize(
    ("state", "started", "terminated"),
    [
        ({}, False, False),
        ({"waiting": {"reason": "ContainerCreating"}}, False, False),
        ({"running": {}}, True, False),
        ({"terminated": {"exitCode": 0}}, True, True),
    ],
)
def test_started_and_terminated(state: dict[str, Any], started: bool, terminated: bool) -> None:
    assert log_reading.container_started(pod(state)) is started
    assert log_reading.container_terminated(pod(state)) is terminated


def test_another_container_or_no_pod_is_not_the_job() -> None:
    assert not log_reading.container_started(pod({"running": {}}, name="sidecar"))
    assert not log_reading.container_terminated(None)


def test_the_last_seq_comes_from_the_termination_message() -> None:
    message = protocol.encode_summary(protocol.Summary(0, None, 42))
    assert log_reading.summary_seq(pod({"terminated": {"message": message}})) == 42
    assert log_reading.summary_seq(pod({"running": {}})) is None
