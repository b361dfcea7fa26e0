"""The output archive on S3: a store that goes away loses nothing while the pod lives, a
loss past the pod's life is flagged, retention empties the bucket, the uid rule holds.

The real operator and API as host processes with the s3 backend, against a real S3
server (versitygw) on loopback: pods never reach the store, the operator does. The
operator writes chunks of 64 KiB (``OVERSEER_ARCHIVE_S3_CHUNK_SIZE``), so a job writing
a few hundred KiB while the store is down fills the writer and holds the follower. The
outage lasts 15 s here; ``make chaos`` runs the issue's 60 s (acceptance 3).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.test_api_output import output_url
from tests.e2e.test_executions import ENDED, execute, listed, status_of, wait_for_phase
from tests.support import s3server
from tests.support.api_process import ApiProcess, run_api
from tests.support.cluster import Kube
from tests.support.gitserver import Upstream
from tests.support.operator import OperatorProcess, run_operator
from tests.support.overseer import eventually, execution, repository, wait_for_jobs

pytestmark = pytest.mark.cluster

BUCKET = "overseer"
LINES, PAUSE = 400, 0.1  # 40 s of output, 1 KiB a line on stdout
WRITER = f"""\
import sys, time
for n in range({LINES} * int(sys.argv[1])):
    sys.stdout.write(f"out {{n:06d}} " + "x" * 1012 + "\\n"); sys.stdout.flush()
    sys.stderr.write(f"err {{n:06d}}\\n"); sys.stderr.flush()
    time.sleep({PAUSE})
"""
JOBS = yaml.safe_dump(
    [
        {"name": "Writer", "command": ["python3", "-c", WRITER, "1"]},
        {"name": "Long writer", "command": ["python3", "-c", WRITER, "10"]},
        {"name": "Hello", "command": ["sh", "-c", "echo hello; echo e >&2"]},
    ]
)
NAMES = {"Writer", "Long writer", "Hello"}


def written(lines: int) -> tuple[bytes, bytes]:
    out = b"".join(f"out {n:06d} ".encode() + b"x" * 1012 + b"\n" for n in range(lines))
    err = b"".join(f"err {n:06d}\n".encode() for n in range(lines))
    return out, err


@dataclass
class Setup:
    kube: Kube
    server: s3server.S3Server
    workdir: Path
    env: dict[str, str]
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    api: ApiProcess | None = None
    operator: OperatorProcess | None = None
    _operator_stack: ExitStack = field(default_factory=ExitStack)
    _runs: int = 0

    def start_operator(self) -> OperatorProcess:
        self._runs += 1
        workdir = self.workdir / f"operator-{self._runs}"
        workdir.mkdir()
        run = run_operator(self.kube.cluster, self.kube.namespace, workdir, extra_env=self.env)
        self.operator = self._operator_stack.enter_context(run)
        return self.operator

    def stop_operator(self) -> None:
        if self.operator is not None:
            self.operator.check_alive()
        self._operator_stack.close()
        self.operator = None

    def manifest(self, name: str) -> dict[str, Any] | None:
        """The execution's manifest, from the store's own folders."""
        found = sorted(
            (self.server.root / BUCKET / self.kube.namespace / name).glob("*/manifest.json")
        )
        return json.loads(found[-1].read_bytes()) if found else None

    def keys(self, name: str = "") -> list[str]:
        """The bucket's keys (under the execution's name, when given), listed over S3."""
        client = s3server.client(self.server)
        prefix = f"{self.kube.namespace}/{name}/" if name else ""
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]


@pytest.fixture
def setup(
    kube: Kube, overseer_crds: None, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Setup]:
    """Given a store on loopback, the operator and the API on the s3 backend, jobs synced;
    ``request.param``: the execution TTL (none by default)."""
    upstream = Upstream.create(tmp_path / "git" / "jobs.git")
    upstream.commit({"jobs.yml": JOBS}, "jobs that write for a while")
    ttl = getattr(request, "param", None)
    with s3server.running(tmp_path / "store") as server:
        s3server.client(server).create_bucket(Bucket=BUCKET)
        env = {
            **server.env("OVERSEER_", BUCKET),
            "OVERSEER_ARCHIVE_S3_CHUNK_SIZE": "64Ki",
            "OVERSEER_FINISHED_JOB_TTL": "0",
            **({"OVERSEER_EXECUTION_TTL": ttl} if ttl else {}),
        }
        api_env = {**server.env("OVERSEER_API_", BUCKET), "OVERSEER_API_OUTPUT_WAIT": "60"}
        setup = Setup(kube, server, tmp_path, env)
        setup.start_operator()
        try:
            kube.apply(repository("jobs", upstream.file_url))
            setup.jobs = wait_for_jobs(kube, NAMES)
            with run_api(kube.cluster, kube.namespace, tmp_path, extra_env=api_env) as api:
                setup.api = api
                yield setup
        finally:
            if setup.operator is None:
                setup.start_operator()  # its finalizer holds the repository
            kube.kubectl("delete", "overseerrepositories", "--all", "--timeout=60s", check=False)
            setup.stop_operator()


def started_archiving(setup: Setup, name: str) -> None:
    eventually(
        lambda: (setup.manifest(name) or {}).get("sizes", {}).get("stdout", 0) > 0,
        timeout=120,
        what="the first output in the store",
    )


def run_through_an_outage(setup: Setup, outage: float) -> None:
    kube = setup.kube
    # When a job writes to both streams for 40 s, and the store is down for a while of it
    name, eid = execute(kube, setup.jobs["Writer"])
    started_archiving(setup, name)
    setup.server.stop()
    assert setup.operator is not None and setup.api is not None
    setup.operator.wait_for_log("trying again", timeout=30)
    time.sleep(outage)
    assert status_of(kube, name).get("archive", {}).get("state") == "Archiving"
    setup.server.start()
    # Then, once it is back, the output is whole: byte-exact through the API
    assert wait_for_phase(kube, name, ENDED, timeout=180)["phase"] == "Complete"
    out, err = written(LINES)
    with setup.api.client("reader", timeout=120) as client:
        stdout = client.get(output_url("Writer", eid, "stdout"))
        stderr = client.get(output_url("Writer", eid, "stderr"))
    assert stdout.headers.get("overseer-output-state") == "Complete"
    assert (len(stdout.content), len(stderr.content)) == (len(out), len(err))
    assert (stdout.content, stderr.content) == (out, err)
    # And the status and the manifest say so: complete, nothing lost, the SHA-256 of each
    status = status_of(kube, name)
    assert status["archive"]["state"] == "Complete"
    assert status["archive"]["stdout"] == {"size": len(out)}
    assert "lost" not in status["archive"]
    manifest = setup.manifest(name)
    assert manifest is not None
    assert manifest["sha256"] == {
        "stdout": hashlib.sha256(out).hexdigest(),
        "stderr": hashlib.sha256(err).hexdigest(),
    }
    assert (manifest["complete"], manifest["lost"]) == (True, [])


def test_a_store_down_while_a_job_writes_loses_nothing(setup: Setup) -> None:
    run_through_an_outage(setup, 15)


@pytest.mark.chaos
def test_a_store_down_for_60_s_while_a_job_writes_loses_nothing(setup: Setup) -> None:
    run_through_an_outage(setup, 60)


def test_a_pod_deleted_while_the_store_is_down_is_flagged_lost(setup: Setup) -> None:
    kube = setup.kube
    # Given a job writing for minutes, its first output in the store
    name, _ = execute(kube, setup.jobs["Long writer"])
    started_archiving(setup, name)
    # When the store goes down (the follower holds what it read, then waits), the
    # operator stops with it, and the pod is deleted before anything reads its log again
    setup.server.stop()
    assert setup.operator is not None
    setup.operator.wait_for_log("trying again", timeout=30)
    time.sleep(3)
    setup.stop_operator()
    [pod] = listed(kube, "pods", name)
    pod_name = pod["metadata"]["name"]
    kube.kubectl("delete", "pod", pod_name, "--grace-period=0", "--force", "--wait=true")
    setup.start_operator()
    time.sleep(5)
    setup.server.start()
    # Then the loss is flagged with its range: in the manifest, the status and an Event
    manifest = eventually(
        lambda: (m := setup.manifest(name)) and m["lost"] and m,
        timeout=90,
        what="the loss in the manifest",
    )
    [lost] = manifest["lost"]
    assert (lost["reason"], lost["beforeSeq"]) == ("PodDeleted", None)
    assert lost["offsets"] == manifest["sizes"]  # the missing bytes belong at the end
    assert manifest["complete"] is False
    # And what was stored is byte-exact: whole lines, in order, none twice
    out = written(manifest["sizes"]["stdout"] // 1024)[0]
    err = written(manifest["sizes"]["stderr"] // 11)[1]
    assert manifest["sizes"] == {"stdout": len(out), "stderr": len(err)}
    assert manifest["sha256"] == {
        "stdout": hashlib.sha256(out).hexdigest(),
        "stderr": hashlib.sha256(err).hexdigest(),
    }
    status = eventually(
        lambda: s if (s := status_of(kube, name)).get("archive", {}).get("lost") else None,
        timeout=60,
        what="the loss in the status",
    )
    assert status["archive"]["state"] == "Incomplete"
    assert status["archive"]["lost"] == [
        {
            "afterSeq": lost["afterSeq"],
            "reason": "PodDeleted",
            "stdoutOffset": lost["offsets"]["stdout"],
            "stderrOffset": lost["offsets"]["stderr"],
        }
    ]
    events = kube.kubectl(
        "get", "events", "--field-selector", f"involvedObject.name={name}", "-o", "json"
    ).stdout
    messages = [
        e["message"] for e in json.loads(events)["items"] if e["reason"] == "OutputIncomplete"
    ]
    assert any(pod_name in m and "deleted before its log was read" in m for m in messages)


@pytest.mark.parametrize("setup", ["20s"], indirect=True)
def test_retention_empties_the_bucket_and_a_recreated_execution_starts_empty(
    setup: Setup,
) -> None:
    kube = setup.kube
    # Given an execution whose output is in the store
    manifest = execution(setup.jobs["Hello"])
    name = manifest["metadata"]["name"]
    kube.create(manifest)
    assert wait_for_phase(kube, name, ENDED)["phase"] == "Complete"
    eventually(lambda: (setup.manifest(name) or {}).get("complete"), what="the output stored")
    first = setup.keys(name)
    # When it is deleted by hand (its output stays) and created again under its name
    kube.kubectl("delete", "osx", name, "--wait=true")
    eventually(lambda: listed(kube, "jobs", name) == [], timeout=60, what="its Job gone")
    assert setup.keys(name) == first
    kube.create(manifest)
    assert wait_for_phase(kube, name, ENDED)["phase"] == "Complete"
    uid = kube.get("osx", name)["metadata"]["uid"]
    assert uid != first[0].split("/")[2]
    # (Complete can be written before the new output is: until then the old is there.)
    stored = eventually(
        lambda: (m := setup.manifest(name)) and m["uid"] == uid and m["complete"] and m,
        what="the new output stored",
    )
    # Then the new execution's output starts empty: the earlier uid's objects are gone
    assert stored["sizes"] == {"stdout": len(b"hello\n"), "stderr": len(b"e\n")}
    assert all(f"/{stored['uid']}/" in key for key in setup.keys(name))
    # And past its TTL the execution goes, and with it every object: the bucket is empty
    eventually(
        lambda: "NotFound" in kube.kubectl("get", "osx", name, check=False).stderr,
        timeout=90,
        what="the execution deleted at its TTL",
    )
    assert setup.keys(name) == []
