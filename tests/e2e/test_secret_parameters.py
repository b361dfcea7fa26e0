"""A secret parameter sent to the API reaches the job, and nothing else: no resource, log,
Event or answer holds it.

The real API process and the real operator (with its DEBUG log), real git, real pods.
The job prints the SHA-256 of the value it received, so the test checks it arrived
exactly without the value itself ever being written to an output.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from pathlib import Path
from typing import Any

import pytest
import yaml

from overseer.core import names
from tests.e2e.test_api_executions import output, wait_until
from tests.e2e.test_executions import ENDED
from tests.support.api_process import ApiProcess
from tests.support.cluster import Kube
from tests.support.gitserver import Upstream
from tests.support.operator import OperatorProcess
from tests.support.overseer import eventually, repository, wait_for_jobs

pytestmark = pytest.mark.cluster

HASH = "import hashlib, sys; print(hashlib.sha256(sys.argv[1].encode()).hexdigest(), sys.argv[2])"
JOBS = yaml.safe_dump(
    [
        {
            "name": "Deploy",
            "cmdspec": f'python3 -c "{HASH}" token region',
            "parameters": {
                "token": {"required": True, "secret": True},
                "region": {"default": "eu"},
            },
        }
    ]
)
# What a resource lists of the namespace: every kind a value could have been copied into.
KINDS = (
    "overseerrepositories,overseerjobs,overseerexecutions,jobs.batch,pods,configmaps,leases,events"
)


@pytest.fixture
def synced(kube: Kube, api: ApiProcess, tmp_path: Path) -> dict[str, Any]:
    upstream = Upstream.create(tmp_path / "git" / "jobs.git")
    upstream.commit({"jobs.yml": JOBS}, "a job with a secret parameter")
    kube.apply(repository("jobs", upstream.file_url))
    job: dict[str, Any] = wait_for_jobs(kube, {"Deploy"})["Deploy"]
    return job


def forms(value: str) -> list[str]:
    """The value, and the encodings in which a careless copy would still show it."""
    return [value, base64.b64encode(value.encode()).decode(), json.dumps(value)[1:-1]]


def test_a_secret_parameter_reaches_the_job_and_appears_nowhere_else(
    kube: Kube, api: ApiProcess, operator: OperatorProcess, synced: dict[str, Any]
) -> None:
    value = f"s3cr3t-{secrets.token_hex(12)}"
    digest = hashlib.sha256(value.encode()).hexdigest()
    client = api.client()
    # When the job is executed over HTTP with a secret parameter, and then repeated
    created = client.post("/jobs/Deploy", json={"token": value, "region": "us"})
    assert created.status_code == 201, created.text
    first = wait_until(client, created.json()["url"], ENDED)
    assert first["phase"] == "Complete", (first["reason"], first["message"])
    again = client.post(created.json()["url"])
    assert again.status_code == 201, again.text
    second = wait_until(client, again.json()["url"], ENDED)
    assert second["phase"] == "Complete", (second["reason"], second["message"])
    # Then both runs received the value exactly (the repeat reused it)
    for run in (created.json(), again.json()):
        assert output(client, run["url"]) == f"{digest} us\n".encode()
    # And the API shows it as *** only
    assert first["parameters"] == {"token": "***", "region": "us"}
    # And the execution's spec names the Secret that holds it, owned by the execution
    execution = kube.get(
        "overseerexecution", names.execution_resource_name(synced["metadata"]["name"], first["id"])
    )
    assert execution["spec"]["parameters"] == {"region": "us"}
    reference = execution["spec"]["secretParameters"]
    assert reference["names"] == ["token"]
    held = kube.get("secret", reference["secretName"])
    assert base64.b64decode(held["data"]["token"]).decode() == value
    [owner] = held["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"]) == ("OverseerExecution", execution["metadata"]["uid"])
    # And no resource of the namespace (spec, status, annotations, Events), no log line of
    # the operator (DEBUG) or the API, and no answer of the API holds it in any form
    listed = kube.kubectl("get", KINDS, "-o", "json").stdout
    answers = [
        client.get(path).text
        for path in (
            f"/jobs/Deploy/{first['id']}",
            f"/jobs/Deploy/{second['id']}",
            "/jobs/Deploy",
            "/jobs",
            "/executions",
            f"/jobs/Deploy/{first['id']}/stdout",
        )
    ]
    places = {"resources": listed, "operator": operator.log(), "api": api.log()}
    places.update({f"answer {i}": text for i, text in enumerate(answers)})
    for where, text in places.items():
        for form in forms(value):
            assert form not in text, f"the secret value is in the {where}"
    assert "DEBUG" in operator.log() or "debug" in operator.log().lower()
    # And the Secret goes with its execution
    kube.kubectl("delete", "overseerexecution", execution["metadata"]["name"], "--wait=true")
    eventually(
        lambda: kube.kubectl("get", "secret", reference["secretName"], check=False).returncode,
        60,
        "the garbage collector to delete the execution's Secret",
    )


def test_a_refused_secret_value_is_quoted_nowhere(
    kube: Kube, api: ApiProcess, operator: OperatorProcess, synced: dict[str, Any]
) -> None:
    value = f"-hunter2-{secrets.token_hex(8)}"
    client = api.client()
    # When a secret value the job cannot take is sent (it starts with '-')
    refused = client.post("/jobs/Deploy", json={"token": value})
    # Then it is refused naming the parameter, never quoting the value
    assert refused.status_code == 422, refused.text
    assert [e["field"] for e in refused.json()["errors"]] == ["token"]
    for text in (refused.text, api.log(), kube.kubectl("get", KINDS, "-o", "json").stdout):
        assert value not in text
    assert kube.kubectl("get", "secrets", "-o", "name").stdout.count("secret-parameters") == 0
