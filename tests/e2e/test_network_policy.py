"""The chart's NetworkPolicy keeps executions' pods from the API server and Overseer's own pods.

A real operator runs a job whose script tries TCP connections from its pod; the chart,
installed for real (nothing scaled up), ships the policy. The cluster must enforce
NetworkPolicies: the local one runs kube-network-policies (hack/cluster.sh).
"""

from __future__ import annotations

import json
import runpy
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_executions import ENDED, execute, listed, stdout_of, wait_for_phase
from tests.support import helm as helm_binary
from tests.support.cluster import Kube
from tests.support.gitserver import Upstream
from tests.support.overseer import eventually, repository, wait_for_jobs
from tests.support.overseer import jobs as jobs_of

EXAMPLES = Path(__file__).parents[2] / "examples" / "jobs"

# One worker runs the whole module under pytest-xdist: its module fixture is costly.
pytestmark = [pytest.mark.cluster, pytest.mark.xdist_group("network-policy")]

TESTBOX = "localhost/overseer/testbox:dev"
# Connects to each HOST:PORT argument at once (2 s each), after a pause that lets the
# enforcer learn the pod's address (kube-network-policies reads it from the API server).
PROBE = """\
#!/usr/bin/env python3
import socket, sys, time
from concurrent.futures import ThreadPoolExecutor
time.sleep(3)
def probe(target):
    host, port = target.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
        return target + " open"
    except OSError as error:
        return target + " closed " + type(error).__name__
with ThreadPoolExecutor(len(sys.argv)) as pool:
    print("\\n".join(pool.map(probe, sys.argv[1:])))
"""
QUIET = {
    "operator": {"replicaCount": 0},
    "api": {"enabled": False},
    "archive": {"s3": {"endpoint": "https://s3.example.com"}},
}


@pytest.fixture(scope="module")
def helm() -> str:
    found, why = helm_binary.find_helm()
    if found is None:
        pytest.skip(f"no helm binary: {why}")
    return found


def http_server(kube: Kube, name: str, labels: dict[str, str]) -> str:
    """A pod serving HTTP on port 8000 (busybox httpd); its IP:8000 once it is ready."""
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "labels": labels},
            "spec": {
                "containers": [
                    {
                        "name": "httpd",
                        "image": TESTBOX,
                        "command": ["httpd", "-f", "-p", "8000", "-h", "/tmp"],
                        "readinessProbe": {"tcpSocket": {"port": 8000}, "periodSeconds": 1},
                    }
                ]
            },
        }
    )
    kube.wait_for("pod", name, "condition=Ready", timeout=60)
    return f"{kube.get('pod', name)['status']['podIP']}:8000"


@pytest.fixture
def targets(kube: Kube) -> dict[str, str]:
    """HOST:PORT of what a job pod must not reach (API server, Overseer) and may (a pod)."""
    service = json.loads(
        kube.cluster.run("-n", "default", "get", "service", "kubernetes", "-o", "json").stdout
    )
    slice_ = json.loads(
        kube.cluster.run("-n", "default", "get", "endpointslice", "kubernetes", "-o", "json").stdout
    )
    port = slice_["ports"][0]["port"]
    return {
        "api server ClusterIP": f"{service['spec']['clusterIP']}:443",
        "api server endpoint": f"{slice_['endpoints'][0]['addresses'][0]}:{port}",
        "an Overseer pod": http_server(
            kube, "overseer-api-like", {"app.kubernetes.io/part-of": "overseer"}
        ),
        "another pod": http_server(kube, "a-service", {"app": "a-service"}),
    }


@pytest.fixture
def probe_job(kube: Kube, targets: dict[str, str], tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Given a repository whose one job runs bin/probe on every target."""
    upstream = Upstream.create(tmp_path / "git" / "jobs.git")
    command = json.dumps(["probe", *targets.values()])
    jobs = f"- name: Probe\n  command: {command}\n"
    upstream.commit({"jobs.yml": jobs, "bin/probe": (PROBE, 0o755)}, "a job that probes")
    kube.apply(repository("jobs", upstream.file_url))
    yield wait_for_jobs(kube, {"Probe"})["Probe"]


def probe(kube: Kube, job: dict[str, Any], targets: dict[str, str]) -> dict[str, bool]:
    """Run the job once; which targets its pod could connect to."""
    name, _ = execute(kube, job)
    status = wait_for_phase(kube, name, ENDED)
    assert status["phase"] == "Complete", status
    [pod] = listed(kube, "pods", name)
    lines = stdout_of(kube, pod["metadata"]["name"]).decode().split("\n")
    outcome = dict(line.split(" ", 2)[:2] for line in lines if line)
    return {what: outcome[target] == "open" for what, target in targets.items()}


@pytest.mark.usefixtures("operator")
def test_job_pods_reach_neither_the_api_server_nor_overseer_but_other_pods(
    helm: str,
    kube: Kube,
    probe_job: dict[str, Any],
    targets: dict[str, str],
) -> None:
    # Given no NetworkPolicy, a job pod reaches everything (what the policy is for)
    assert probe(kube, probe_job, targets) == dict.fromkeys(targets, True)
    # When the chart is installed to serve this namespace
    values = {**QUIET, "watchNamespaces": [kube.namespace]}
    name = f"t{secrets.token_hex(3)}"
    with helm_binary.installed(helm, kube.cluster, name, kube.namespace, values):
        eventually(lambda: kube.kubectl("get", "networkpolicy", "-o", "name").stdout, what="policy")
        # Then a job pod reaches the other pod only
        assert probe(kube, probe_job, targets) == {
            "api server ClusterIP": False,
            "api server endpoint": False,
            "an Overseer pod": False,
            "another pod": True,
        }


def make_up_examples() -> tuple[tuple[str, dict[str, str], list[str]], ...]:
    """What ``make up`` runs: (job, parameters, the events it must end with)."""
    script = runpy.run_path(str(Path(__file__).parents[2] / "hack" / "run-examples.py"))
    examples: tuple[tuple[str, dict[str, str], list[str]], ...] = script["EXAMPLES"]
    return examples


@pytest.mark.usefixtures("operator")
def test_the_example_jobs_complete_under_the_policy(helm: str, kube: Kube, tmp_path: Path) -> None:
    # Given the chart's policy in the namespace, and make up's examples as they are
    values = {**QUIET, "watchNamespaces": [kube.namespace]}
    with helm_binary.installed(helm, kube.cluster, "examples", kube.namespace, values):
        eventually(lambda: kube.kubectl("get", "networkpolicy", "-o", "name").stdout, what="policy")
        upstream = Upstream.create(tmp_path / "git" / "jobs.git")
        upstream.commit(
            {
                str(path.relative_to(EXAMPLES)): (path.read_bytes(), path.stat().st_mode & 0o777)
                for path in EXAMPLES.rglob("*")
                if path.is_file()
            },
            "the examples",
        )
        kube.apply(repository("jobs", upstream.file_url))
        examples = make_up_examples()
        wanted = {display for display, _, _ in examples}

        def synced() -> dict[str, dict[str, Any]] | None:
            found = jobs_of(kube)
            return found if wanted <= set(found) else None

        jobs = eventually(synced, what="the examples synced")
        # When make up's examples run, with its parameters
        names = {
            display: execute(kube, jobs[display], parameters)[0]
            for display, parameters, _ in examples
        }
        # Then each completes with its events: none needs what the policy takes away
        # (the API server). The enforcer may learn a new pod's address a moment after
        # the pod starts, so a job that reached it in its first second passed here once.
        ended = {display: wait_for_phase(kube, name, ENDED) for display, name in names.items()}
        assert {
            display: (status["phase"], [e["status"] for e in status.get("events") or []])
            for display, status in ended.items()
        } == {display: ("Complete", events) for display, _, events in examples}, [
            (display, status.get("message")) for display, status in ended.items()
        ]
