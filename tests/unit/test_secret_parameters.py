"""Secret parameters: kept out of the execution's spec, in a Secret it owns, secret in its Job."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from tests.support import fake_kube

from overseer import errors
from overseer.core import execution_job, execution_resource
from overseer.crd import execution as execution_
from overseer.operator import execution_inputs

VALUE = "hunter2-$(HOME)-s3cr3t"
JOB: dict[str, Any] = {
    "metadata": {"name": "deploy", "namespace": "team-a"},
    "spec": {
        "displayName": "Deploy",
        "definition": {
            "name": "Deploy",
            "cmdspec": "deploy token region",
            "parameters": {"token": {"secret": True}, "region": {"default": "eu"}},
        },
        "source": {"repository": "ops", "commit": "c0ffee"},
    },
}


def created(names: list[str], uid: str = "uid-1") -> dict[str, Any]:
    body = execution_resource.build_execution(
        JOB,
        "1489895624.840211",
        trigger=execution_.Trigger(type="api"),
        parameters={"region": "us"},
        secret_names=names,
    )
    body["metadata"]["uid"] = uid
    return body


def test_the_spec_names_the_secret_and_never_holds_the_value() -> None:
    body = created(["token"])
    assert body["spec"]["parameters"] == {"region": "us"}
    assert body["spec"]["secretParameters"] == {
        "secretName": "deploy-1489895624-840211-secret-parameters",
        "names": ["token"],
    }
    secret = execution_resource.build_secret_parameters(body, {"token": VALUE})
    assert VALUE not in json.dumps(body)
    assert base64.b64decode(secret["data"]["token"]).decode() == VALUE
    assert secret["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert secret["immutable"] is True


def test_a_parameter_is_never_both_plain_and_secret() -> None:
    with pytest.raises(ValueError, match="both"):
        execution_resource.build_execution(
            JOB,
            "1489895624.840211",
            trigger=execution_.Trigger(type="api"),
            parameters={"token": "x"},
            secret_names=["token"],
        )


def test_only_a_secret_owned_by_the_execution_is_read() -> None:
    body = created(["token"])
    secret = execution_resource.build_secret_parameters(body, {"token": VALUE})
    assert execution_resource.read_secret_parameters(body, secret) == {"token": VALUE}
    other = created(["token"], uid="uid-2")
    with pytest.raises(errors.SecretParametersError, match="not this execution's"):
        execution_resource.read_secret_parameters(other, secret)
    with pytest.raises(errors.SecretParametersError, match="does not exist"):
        execution_resource.read_secret_parameters(body, None)
    secret["data"] = {}
    with pytest.raises(errors.SecretParametersError, match="'token'") as raised:
        execution_resource.read_secret_parameters(body, secret)
    assert VALUE not in raised.value.message


def test_a_value_supplied_secretly_is_secret_in_the_job_even_if_not_declared_so() -> None:
    body = created(["token"])
    body["spec"]["parameters"] = {}
    body["spec"]["secretParameters"]["names"] = ["region", "token"]  # region: not declared so
    values = {"region": "moon-base", "token": VALUE}
    context = execution_job.ExecutionContext.from_body(body, None, values)
    job = json.dumps(execution_job.build_execution_job(context))
    assert "moon-base" not in job
    assert "$(OVERSEER_PARAM_REGION)" in job
    secret = execution_job.build_parameters_secret(context)
    assert secret is not None
    assert base64.b64decode(secret["data"]["param.region"]).decode() == "moon-base"


class NoSecret(fake_kube.FakeKube):
    """A cluster where the execution's Secret is not (yet) there."""

    def __init__(self) -> None:
        super().__init__()
        self.gets = 0

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        assert (kind, name) == ("Secret", "deploy-1489895624-840211-secret-parameters")
        self.gets += 1
        return None


async def test_a_secret_not_there_yet_is_waited_for_a_minute_then_fails_the_execution(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(execution_inputs, "SECRET_POLL_DELAY", 0.0)
    body = created(["token"])
    created_at = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)
    body["metadata"]["creationTimestamp"] = "2026-12-06T08:00:00Z"
    client = NoSecret()
    # Just created: looked for a few times, then retried later (a waiting error)
    with pytest.raises(errors.SecretParametersPendingError) as waiting:
        await execution_inputs.read_secret_values(body, client, now=created_at)
    assert not waiting.value.stalled
    assert client.gets == execution_inputs.SECRET_POLLS
    # A minute on: the execution fails, saying what is missing
    late = created_at + execution_inputs.SECRET_GRACE
    with pytest.raises(errors.SecretParametersError, match="does not exist") as failed:
        await execution_inputs.read_secret_values(body, client, now=late)
    assert failed.value.stalled
    # And an execution without secret parameters reads nothing
    assert await execution_inputs.read_secret_values(created([]), client) == {}
