"""The local cluster does what Overseer needs from Kubernetes (issue: a real single-node cluster).

Given / When / Then, against real pods running real commands in the local images.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support import recorder
from tests.support.cluster import Kube

pytestmark = pytest.mark.cluster

LIBRARY_IMAGE = "localhost/overseer/library:dev"

RESTRICTED_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def batch_job(name: str, command: list[str], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            **spec,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "containers": [
                        {
                            "name": "main",
                            "image": LIBRARY_IMAGE,
                            "imagePullPolicy": "Never",
                            "command": command,
                            "securityContext": RESTRICTED_SECURITY,
                        }
                    ],
                }
            },
        },
    }


def pod(name: str, command: list[str], image: str = LIBRARY_IMAGE, **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "main",
                    "image": image,
                    "imagePullPolicy": "Never",
                    "command": command,
                    "securityContext": RESTRICTED_SECURITY,
                }
            ],
            **extra,
        },
    }


def run_pod_to_completion(kube: Kube, name: str, command: list[str], **extra: Any) -> str:
    """Run a pod, require it to succeed, return its log."""
    kube.apply(pod(name, command, **extra))
    phase = kube.wait_for_pod_end(name)
    logs = kube.logs(f"pod/{name}")
    assert phase == "Succeeded", f"pod {name} ended {phase}:\n{logs}"
    return logs


def test_job_output_reaches_kubectl_logs(kube: Kube) -> None:
    # Given a Job in the library image printing to both streams
    script = "import sys; print('out-line'); print('err-line', file=sys.stderr)"
    kube.apply(batch_job("streams", ["python3", "-c", script]))
    # When it runs
    kube.wait_for("job", "streams", "condition=Complete")
    # Then kubectl logs shows both lines
    logs = kube.logs("job/streams")
    assert "out-line" in logs
    assert "err-line" in logs


def test_job_past_its_deadline_fails_with_deadline_exceeded(kube: Kube) -> None:
    # Given a Job that sleeps past activeDeadlineSeconds
    kube.apply(batch_job("sleeper", ["sleep", "300"], activeDeadlineSeconds=3))
    # When the deadline passes
    kube.wait_for("job", "sleeper", "condition=Failed", timeout=90)
    # Then the Job failed because of the deadline
    conditions = kube.get("job", "sleeper")["status"]["conditions"]
    failed = next(c for c in conditions if c["type"] == "Failed")
    assert failed["reason"] == "DeadlineExceeded"


def test_pod_reaches_api_server_through_kubernetes_service(kube: Kube) -> None:
    # Given a pod with its service account token, talking to the Service's cluster IP
    script = """
import json, os, ssl, urllib.request
sa = "/var/run/secrets/kubernetes.io/serviceaccount"
host, port = os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"]
ctx = ssl.create_default_context(cafile=sa + "/ca.crt")
token = open(sa + "/token").read()
auth = {"Authorization": "Bearer " + token}
req = urllib.request.Request(f"https://{host}:{port}/version", headers=auth)
print(json.dumps({"host": host, "version": json.load(urllib.request.urlopen(req, context=ctx))}))
"""
    # When it calls /version
    out = run_pod_to_completion(kube, "api-client", ["python3", "-c", script])
    # Then it reached the API server through the service IP
    answer = json.loads(out.strip().splitlines()[-1])
    assert answer["version"]["gitVersion"].startswith("v1.")
    cluster_ip = kube.cluster.run(
        "-n", "default", "get", "svc", "kubernetes", "-o", "jsonpath={.spec.clusterIP}"
    )
    assert answer["host"] == cluster_ip.stdout


def test_pod_reaches_another_pod_through_a_service(kube: Kube) -> None:
    # Given an HTTP server pod behind a Service
    server = pod("web", ["python3", "-m", "http.server", "8080", "--directory", "/opt/overseer"])
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    kube.apply(server, service)
    kube.wait_for("pod", "web", "condition=Ready")
    cluster_ip = kube.get("service", "web")["spec"]["clusterIP"]
    # When a client pod fetches the Service's cluster IP (retrying while endpoints propagate)
    out = fetch_from_pod(kube, f"http://{cluster_ip}/")
    # Then the server's directory listing came back
    assert "library/" in out


def fetch_from_pod(kube: Kube, url: str) -> str:
    """GET url from a pod, retrying for up to 30 s while routes and endpoints settle."""
    script = f"""
import sys, time, urllib.request
for attempt in range(30):
    try:
        sys.stdout.write(urllib.request.urlopen({url!r}, timeout=3).read().decode())
        break
    except OSError as error:
        print("attempt", attempt, error, file=sys.stderr)
        time.sleep(1)
else:
    sys.exit(1)
"""
    return run_pod_to_completion(kube, "client", ["python3", "-c", script])


def test_pod_reaches_http_server_on_the_host(kube: Kube) -> None:
    # Given an HTTP server on this host, on the address pods route to
    with recorder.serve(kube.cluster.node_address()) as server:
        # When a pod posts to it
        url = f"{server.url}/hook?from=pod"
        fetch_from_pod(kube, url)
        # Then the server recorded the request
        requests = server.wait_for(1, timeout=10)
    assert requests[0].path == "/hook?from=pod"


def test_restricted_namespace_admits_compliant_pods_and_rejects_privileged_ones(kube: Kube) -> None:
    # Given a namespace enforcing the restricted Pod Security Standard
    kube.kubectl(
        "label", "namespace", kube.namespace, "pod-security.kubernetes.io/enforce=restricted"
    )
    # When a compliant pod and a privileged pod are created
    compliant = kube.create(pod("compliant", ["true"]), check=False)
    privileged_pod = pod("privileged", ["true"])
    privileged_pod["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    privileged = kube.create(privileged_pod, check=False)
    # Then only the compliant one is admitted, and the refusal names the policy
    assert compliant.returncode == 0, compliant.stderr
    assert privileged.returncode != 0
    assert "violates PodSecurity" in privileged.stderr
    assert "restricted:latest" in privileged.stderr
