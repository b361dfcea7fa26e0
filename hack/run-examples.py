"""Run some of the example jobs on the cluster and show how each went (``make up``'s last step).

Creates an OverseerExecution per example with kubectl, as the REST API will: the job's
definition and commit frozen into it, the parameters given. Then waits for each to end,
printing each phase change, and shows its status events and its stdout and stderr,
decoded from the pod's log. Exits 1 when an example did not complete.

Usage: python hack/run-examples.py NAMESPACE [--timeout SECONDS]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any

from overseer.core import names
from overseer_library import protocol

# (job display name, parameters, the events it must end with): the parameters are
# hostile on purpose, to show that they arrive as sent.
EXAMPLES: tuple[tuple[str, dict[str, str], list[str]], ...] = (
    (
        "A job",
        {"positional_var": "hello world", "some_opt": "$(rm -rf /); echo pwned"},
        ["start", "complete"],
    ),
    ("Say hello", {}, ["start", "greeted", "complete"]),
    ("Library tour", {"greeting": "hi; $(id)"}, ["start", "ready", "complete"]),
)
TERMINAL = {"Complete", "Failed", "TimedOut", "Killed"}


def kubectl(namespace: str, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        ["kubectl", "-n", namespace, *args],
        check=False,
        input=stdin,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        sys.exit(f"kubectl {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def find_job(namespace: str, display_name: str) -> dict[str, Any]:
    jobs = json.loads(kubectl(namespace, "get", "overseerjobs", "-o", "json"))["items"]
    for job in jobs:
        if job["spec"]["definition"]["name"] == display_name:
            found: dict[str, Any] = job
            return found
    sys.exit(f"no OverseerJob named {display_name!r} in {namespace}: was the repository synced?")


def create_execution(namespace: str, job: dict[str, Any], parameters: dict[str, str]) -> str:
    # The repository's commit, not the job's: see docs/repositories.rst.
    repository = job["spec"]["source"]["repository"]
    commit = kubectl(
        namespace, "get", "overseerrepository", repository, "-o", "jsonpath={.status.commit}"
    )
    execution_id = names.execution_id(datetime.now(UTC))
    name = names.execution_resource_name(job["metadata"]["name"], execution_id)
    manifest = {
        "apiVersion": "overseer.dev/v1alpha1",
        "kind": "OverseerExecution",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "job": job["metadata"]["name"],
            "executionId": execution_id,
            "trigger": {"type": "manual"},
            "parameters": parameters,
            "definition": job["spec"]["definition"],
            "commit": commit or job["spec"]["source"]["commit"],
        },
    }
    kubectl(namespace, "create", "-f", "-", stdin=json.dumps(manifest))
    return name


def wait_all(
    namespace: str, pending: dict[str, list[str]], timeout: float
) -> dict[str, dict[str, Any]]:
    """Wait for the executions to end, saying each phase change; return their statuses.

    ``pending`` maps each execution to the events it should end with: a custom event
    may reach the status a moment after the phase, so an ended execution is given a
    few more seconds to show them.
    """
    seen: dict[str, str] = {}
    ended: dict[str, dict[str, Any]] = {}
    ended_at: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while len(ended) < len(pending) and time.monotonic() < deadline:
        items = json.loads(kubectl(namespace, "get", "overseerexecutions", "-o", "json"))["items"]
        for item in items:
            name, status = item["metadata"]["name"], item.get("status") or {}
            if name not in pending or name in ended:
                continue
            phase = status.get("phase") or "(new)"
            if seen.get(name) != phase:
                reason = f" ({status['reason']})" if status.get("reason") else ""
                print(f"      {name}: {phase}{reason}", flush=True)
                seen[name] = phase
            if phase in TERMINAL:
                first = ended_at.setdefault(name, time.monotonic())
                events = [event["status"] for event in status.get("events") or []]
                if events == pending[name] or time.monotonic() - first > 10:
                    ended[name] = status
        time.sleep(1)
    return ended


def show(namespace: str, name: str, status: dict[str, Any] | None, expected: list[str]) -> bool:
    """Print how the execution went; True when it completed with the EXPECTED events."""
    print(f"\n  {name}")
    if status is None:
        print("    did not end in time; see: kubectl describe osx", name, "-n", namespace)
        return False
    exit_code = status.get("exitCode")
    print(f"    phase {status['phase']}, exit code {exit_code}, took {status.get('duration')}")
    for event in status.get("events") or []:
        data = f" {json.dumps(event['data'])}" if event.get("data") is not None else ""
        print(f"    event {event['time']} {event['status']}{data}")
    pod = status.get("podName")
    if pod:
        log = subprocess.run(
            ["kubectl", "-n", namespace, "logs", pod, "-c", "job"], check=False, capture_output=True
        ).stdout
        streams: dict[str, bytes] = {"stdout": b"", "stderr": b""}
        for record in protocol.decode_all([log]):
            if isinstance(record, protocol.Output):
                streams[record.stream] += record.data
        for stream, data in streams.items():
            for line in data.decode(errors="replace").splitlines() or ["(nothing)"]:
                print(f"    {stream}: {line}")
    if status.get("message"):
        print(f"    message: {status['message']}")
    events = [event["status"] for event in status.get("events") or []]
    if events != expected:
        print(f"    expected the events {expected}, got {events}: see the operator's log")
    return bool(status["phase"] == "Complete" and events == expected)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("namespace", help="namespace holding the synced example jobs")
    parser.add_argument("--timeout", type=float, default=180, help="seconds to wait (180)")
    args = parser.parse_args()
    created: dict[str, list[str]] = {}
    for display_name, parameters, expected in EXAMPLES:
        job = find_job(args.namespace, display_name)
        name = create_execution(args.namespace, job, parameters)
        shown = json.dumps(parameters, ensure_ascii=False) if parameters else "no parameters"
        print(f"      created {name}: {display_name!r} with {shown}", flush=True)
        created[name] = expected
    statuses = wait_all(args.namespace, created, args.timeout)
    ok = [show(args.namespace, name, statuses.get(name), created[name]) for name in created]
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main())
