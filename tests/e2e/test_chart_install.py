"""The chart on the real cluster: operator, bundled S3 store and two API replicas, installed
by helm from this checkout, running a job whose output is read through each API replica.

The images must be the ones built from this checkout (hack/build-images.sh, imported by
hack/cluster.sh up or make up). One release serves the whole module, in a namespace of its
own that enforces the restricted Pod Security Standard; a git daemon on the node's address
serves the jobs to the in-cluster operator. The API's Ingress is routed by the local
cluster's ingress controller (Traefik, hack/ingress.sh), which the tests reach on this
machine's port 8480 (OVERSEER_INGRESS_PORT).

The acceptance run of issue 12 (a job writing both streams for 60 s while the operator's
pod and then the store's pod are deleted) is marked ``chaos``: it deletes pods and takes
about two minutes, so it runs in ``make chaos``, not in ``make test``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import yaml

from tests.e2e.test_executions import ENDED, execute, wait_for_phase
from tests.support import helm as helm_
from tests.support.cluster import REPO, Cluster, Kube
from tests.support.gitserver import Upstream, serve_git_daemon
from tests.support.overseer import eventually, repository, wait_for_jobs

# One worker runs the whole module under pytest-xdist: its module fixture is costly.
pytestmark = [pytest.mark.cluster, pytest.mark.xdist_group("chart-install")]

ROUNDS = 600  # a write to each stream every 0.1 s: 60 s
BLOCK = 64  # 32-byte digests per write: 2 KiB
BOTH_STREAMS = f"""\
import hashlib, sys, time
for i in range({ROUNDS}):
    for stream, name in ((sys.stdout.buffer, b"out"), (sys.stderr.buffer, b"err")):
        stream.write(hashlib.sha256(name + str(i).encode()).digest() * {BLOCK})
        stream.flush()
    time.sleep(0.1)
"""
GREETING = b"hello from the chart\n"
INGRESS_PORT = int(os.environ.get("OVERSEER_INGRESS_PORT", "8480"))
SLOW = "import time; print('first', flush=True); time.sleep(40); print('last')"
JOBS = yaml.safe_dump(
    [
        {"name": "Both streams", "command": ["python3", "-c", BOTH_STREAMS]},
        {"name": "Hello", "command": ["printf", GREETING.decode().replace("\n", "\\n")]},
        {"name": "Slow", "command": ["python3", "-c", SLOW]},
    ]
)


def expected(name: bytes) -> bytes:
    """What the job writes to one stream (b"out" or b"err")."""
    return b"".join(hashlib.sha256(name + str(i).encode()).digest() * BLOCK for i in range(ROUNDS))


@dataclass(frozen=True)
class Deployed:
    kube: Kube
    release: helm_.Release
    token: str
    jobs: dict[str, dict[str, Any]]

    def pods(self, component: str) -> list[str]:
        out = self.kube.kubectl(
            "get", "pods", "-o", "jsonpath={.items[*].metadata.name}",
            "-l", f"app.kubernetes.io/instance={self.release.name},"
            f"app.kubernetes.io/component={component}",
        ).stdout  # fmt: skip
        return out.split()

    def uids(self, component: str) -> set[str]:
        return {self.kube.get("pod", pod)["metadata"]["uid"] for pod in self.pods(component)}

    def values(self) -> dict[str, Any]:
        return values_for(self.kube.namespace)

    @property
    def host(self) -> str:
        return ingress_host(self.kube.namespace)


def ingress_host(namespace: str) -> str:
    """The Ingress's host: one per namespace, so that two test runs on one cluster (one
    controller) never share a route."""
    return f"{namespace}.overseer.test"


def values_for(namespace: str) -> dict[str, Any]:
    return {
        "watchNamespaces": [namespace],
        "operator": {"retry": {"min": "1s", "max": "5s"}},
        "store": {"persistence": {"size": "1Gi"}},
        # The local cluster's controller (hack/ingress.sh), as make up sets it
        "api": {
            "ingress": {"enabled": True, "host": ingress_host(namespace), "className": "traefik"}
        },
    }


@pytest.fixture(scope="module")
def deployed(
    kube_cluster: Cluster, overseer_crds: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployed]:
    """Given the chart installed in a restricted namespace it watches, and two jobs synced."""
    namespace = kube_cluster.create_namespace("chart-install")
    kube = Kube(kube_cluster, namespace)
    kube_cluster.run(
        "label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted"
    )
    found, why = helm_.find_helm()
    if found is None:
        pytest.skip(f"no helm binary: {why}")
    root = tmp_path_factory.mktemp("git")
    upstream = Upstream.create(root / "jobs.git")
    upstream.commit({"jobs.yml": JOBS}, "jobs that write output")
    # A unique release: its ClusterRoles must not meet make up's "overseer".
    name = f"t{secrets.token_hex(3)}"
    try:
        with (
            serve_git_daemon(root, host=kube_cluster.node_address()) as git,
            helm_.installed(found, kube_cluster, name, namespace, values_for(namespace)) as release,
        ):
            kube.apply(repository("jobs", git.url(upstream)))
            jobs = wait_for_jobs(kube, {"Both streams", "Hello", "Slow"}, timeout=120)
            token = kube.kubectl(
                "get", "secret", f"{name}-overseer-api-tokens",
                "-o", "jsonpath={.data.admin-token}",
            ).stdout  # fmt: skip
            yield Deployed(kube, release, base64.b64decode(token).decode(), jobs)
            kube.kubectl("delete", "overseerrepositories", "--all", "--timeout=60s", check=False)
    finally:
        kube_cluster.delete_namespace(namespace)


@pytest.fixture(scope="module")
def ingress(kube_cluster: Cluster) -> str:
    """The local cluster's ingress controller, deployed if it is not (never built here:
    hack/build-images.sh builds its image once); its base URL on this machine."""
    if kube_cluster.context != "overseer-local":
        pytest.skip("the ingress controller is the local cluster's (hack/ingress.sh)")
    script = str(REPO / "hack" / "ingress.sh")
    env = {**os.environ, "OVERSEER_INGRESS_PORT": str(INGRESS_PORT)}
    status = subprocess.run(["bash", script, "status"], env=env, capture_output=True, check=False)
    if status.returncode:
        env["OVERSEER_TRAEFIK_CACHED_ONLY"] = "1"
        up = subprocess.run(
            ["bash", script, "up"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert up.returncode == 0, up.stderr
    return f"http://127.0.0.1:{INGRESS_PORT}"


def through(ingress: str, deployed: Deployed) -> httpx.Client:
    """A client of the API through the ingress controller, at the Ingress's host."""
    headers = {"Host": deployed.host, "Authorization": f"Bearer {deployed.token}"}
    return httpx.Client(base_url=ingress, headers=headers, timeout=60)


def routed(deployed: Deployed, api: httpx.Client) -> httpx.Response:
    """GET /jobs once the controller routes the Ingress (it reads it within a second or so)."""
    name = f"{deployed.release.name}-overseer-api"
    eventually(
        lambda: deployed.kube.get("ingress", name)["status"].get("loadBalancer", {}).get("ingress"),
        60,
        "the ingress controller to take the Ingress (its address in the status)",
    )
    response: httpx.Response = eventually(
        lambda: (r := api.get("/jobs")).status_code == 200 and r, 30, "GET /jobs through it"
    )
    return response


@contextmanager
def forwarded(kube: Kube, pod: str) -> Iterator[str]:
    """``kubectl port-forward`` to the API port of one pod; yields its base URL."""
    cluster = kube.cluster
    process = subprocess.Popen(
        [cluster.kubectl, "--kubeconfig", str(cluster.kubeconfig), "-n", kube.namespace,
         "port-forward", f"pod/{pod}", ":8000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        port = re.search(r"127\.0\.0\.1:(\d+)", line)
        assert port, f"port-forward to {pod}: {line!r} {process.stderr}"
        yield f"http://127.0.0.1:{port.group(1)}"
    finally:
        process.terminate()
        process.wait(10)


def read_output(deployed: Deployed, pod: str, job: str, eid: str) -> dict[str, bytes]:
    """stdout and stderr of an execution, read through the API replica POD."""
    path = f"/jobs/{job.replace(' ', '%20')}/{eid}"
    headers = {"Authorization": f"Bearer {deployed.token}"}
    with forwarded(deployed.kube, pod) as url, httpx.Client(base_url=url, headers=headers) as api:
        found = {}
        for stream in ("stdout", "stderr"):
            response = api.get(f"{path}/{stream}", timeout=120)
            assert response.status_code == 200, (pod, stream, response.text[:500])
            assert response.headers["overseer-output-state"] == "Complete", (pod, stream)
            found[stream] = response.content
        return found


def wait_archived(kube: Kube, name: str) -> None:
    """Wait until the execution's archive is whole (the phase can turn first)."""
    eventually(
        lambda: (
            kube.get("overseerexecution", name)["status"].get("archive", {}).get("state")
            == "Complete"
        ),
        timeout=120,
        what=f"the archive of {name} to be Complete",
    )


def test_the_chart_runs_its_store_on_a_bound_claim_and_serves_output(
    deployed: Deployed,
) -> None:
    kube = deployed.kube
    # The store's claim is bound by the cluster's default StorageClass
    (claim,) = json.loads(kube.kubectl("get", "pvc", "-o", "json").stdout)["items"]
    assert claim["status"]["phase"] == "Bound"
    # Two API replicas, apart from the operator's pod
    api_pods = deployed.pods("api")
    assert len(api_pods) == 2 and not set(api_pods) & set(deployed.pods("operator"))
    # When a job prints a line, its output is in the store, read through either replica
    name, eid = execute(kube, deployed.jobs["Hello"])
    assert wait_for_phase(kube, name, ENDED)["phase"] == "Complete"
    wait_archived(kube, name)
    for pod in api_pods:
        assert read_output(deployed, pod, "Hello", eid) == {"stdout": GREETING, "stderr": b""}
    # And an upgrade keeps the store's generated access key (lookup), so nothing restarts
    secret = f"{deployed.release.name}-overseer-store"
    before = kube.get("secret", secret)["data"]
    store_pod = kube.get("pod", deployed.pods("store")[0])["metadata"]["uid"]
    result = deployed.release.upgrade(deployed.values())
    assert result.returncode == 0, result.stderr
    assert kube.get("secret", secret)["data"] == before
    assert kube.get("pod", deployed.pods("store")[0])["metadata"]["uid"] == store_pod


def test_the_ingress_controller_routes_the_api_by_host(deployed: Deployed, ingress: str) -> None:
    with through(ingress, deployed) as api:
        # When a client asks for the jobs at the Ingress's host, through the controller
        response = routed(deployed, api)
        # Then the API answers them
        assert {job["name"] for job in response.json()["items"]} >= {"Hello", "Slow"}
        # And without its token the API itself refuses
        assert api.get("/jobs", headers={"Authorization": ""}).status_code == 401
        # And its reference page's Swagger UI comes from the API's image, not a CDN
        page = api.get("/docs", headers={"Authorization": ""})
        assert page.status_code == 200 and "/docs/swagger-ui-bundle.js" in page.text
        bundle = api.get("/docs/swagger-ui-bundle.js", headers={"Authorization": ""})
        assert bundle.status_code == 200 and b"SwaggerUIBundle" in bundle.content
        # While another host gets the controller's own 404, never the API
        other = api.get("/jobs", headers={"Host": "elsewhere.test"})
    assert other.status_code == 404
    assert other.text == "404 page not found\n"
    assert "problem" not in other.headers.get("content-type", "")


def test_the_ingress_is_accepted_and_the_api_answers_with_its_public_url(
    deployed: Deployed, ingress: str
) -> None:
    kube = deployed.kube
    # The API server took the chart's Ingress, of the local cluster's class
    resource = kube.get("ingress", f"{deployed.release.name}-overseer-api")
    [rule] = resource["spec"]["rules"]
    backend = rule["http"]["paths"][0]["backend"]["service"]
    service = kube.get("service", backend["name"])
    assert backend["port"]["name"] in {port["name"] for port in service["spec"]["ports"]}
    assert rule["host"] == deployed.host
    assert resource["spec"]["ingressClassName"] == "traefik"
    # When a client executes a job through the controller, the Location it gets back is
    # the ingress's URL, not the address it reached
    with through(ingress, deployed) as api:
        routed(deployed, api)
        response = api.post("/jobs/Hello", json={})
    assert response.status_code == 201, response.text[:500]
    assert response.headers["location"].startswith(f"http://{deployed.host}/jobs/Hello/")


def test_followed_stdout_streams_through_the_ingress_before_the_execution_ends(
    deployed: Deployed, ingress: str
) -> None:
    kube = deployed.kube
    # Given a job that prints a line, then sleeps 40 s before it prints its last
    name, eid = execute(kube, deployed.jobs["Slow"])
    wait_for_phase(kube, name, {"Running"})
    url = f"/jobs/Slow/{eid}/stdout"
    with through(ingress, deployed) as api:
        routed(deployed, api)
        eventually(lambda: api.get(url).status_code == 200, 30, "the execution in the API")
        # When a client follows its stdout through the controller
        started = time.monotonic()
        with api.stream("GET", url, params={"follow": "true"}) as response:
            assert response.status_code == 200
            assert response.headers.get("transfer-encoding") == "chunked"
            first = next(response.iter_raw())
            waited = time.monotonic() - started
            phase = kube.get("overseerexecution", name)["status"]["phase"]
    # Then the first line arrives while the job still sleeps: nothing buffers the stream
    assert first == b"first\n"
    assert phase == "Running"
    assert waited < 20, waited


@pytest.mark.chaos
def test_output_is_whole_after_the_operator_and_the_store_are_deleted(
    deployed: Deployed,
) -> None:
    kube = deployed.kube
    # When a job writes to both streams for 60 s
    name, eid = execute(kube, deployed.jobs["Both streams"])
    wait_for_phase(kube, name, {"Running"})
    started = time.monotonic()
    # and the operator's pod is deleted at 20 s, the store's at 40 s, while it runs
    deleted = {}
    for at, component in ((20, "operator"), (40, "store")):
        time.sleep(max(0.0, started + at - time.monotonic()))
        deleted[component] = deployed.uids(component)
        for pod in deployed.pods(component):
            kube.kubectl("delete", "pod", pod, "--wait=false")
        assert kube.get("overseerexecution", name)["status"]["phase"] == "Running"
    # Then the execution completes, its archive whole, nothing flagged lost
    status = wait_for_phase(kube, name, ENDED, timeout=300)
    assert status["phase"] == "Complete", status
    wait_archived(kube, name)
    assert not kube.get("overseerexecution", name)["status"]["archive"].get("lost")
    # (by pods that really replaced the deleted ones)
    for component, uids in deleted.items():
        assert uids and not uids & deployed.uids(component), component
    # And each API replica serves both streams byte for byte
    want = {"stdout": expected(b"out"), "stderr": expected(b"err")}
    for pod in deployed.pods("api"):
        got = read_output(deployed, pod, "Both streams", eid)
        for stream in ("stdout", "stderr"):
            assert len(got[stream]) == len(want[stream]), (pod, stream)
            assert (
                hashlib.sha256(got[stream]).hexdigest() == hashlib.sha256(want[stream]).hexdigest()
            ), (pod, stream)


def lease_holder(kube: Kube) -> str:
    lease = kube.get("lease", "overseer-operator")
    return str(lease["spec"].get("holderIdentity") or "")


def test_deleting_the_leading_operator_pod_hands_over_to_the_standby(deployed: Deployed) -> None:
    kube = deployed.kube
    # Given the chart's two operator replicas, one of which holds the namespace's Lease
    pods = deployed.pods("operator")
    assert len(pods) == 2
    holder = eventually(lambda: lease_holder(kube), 60, "a leader")
    (leader,) = [pod for pod in pods if holder.startswith(f"{pod}_")]
    # When the leader's pod is deleted (SIGTERM: it stops, then releases the Lease)
    deleted = time.monotonic()
    kube.kubectl("delete", "pod", leader, "--wait=false")
    # Then another replica (the standby, or the pod replacing the leader) holds it within
    # 30 s, and runs the next execution, once
    eventually(lambda: lease_holder(kube) not in ("", holder), 30, "another replica to lead")
    handover = time.monotonic() - deleted
    assert lease_holder(kube).split("_")[0] in deployed.pods("operator")
    print(f"handover after a pod delete: {handover:.1f}s")
    name, _ = execute(kube, deployed.jobs["Hello"])
    assert wait_for_phase(kube, name, ENDED)["phase"] == "Complete"
    jobs = kube.kubectl("get", "jobs", "-l", f"overseer.dev/execution={name}", "-o", "name")
    assert len(jobs.stdout.split()) == 1
    assert handover < 30
