"""Secret parameters: kept out of the execution's spec, in a Secret it owns, secret in its Job."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from overseer import errors
from overseer.core import execution_job, execution_resource
from overseer.crd import execution as execution_

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
