"""What the fault suite (``tests/e2e/test_chaos_*.py``, ``make chaos``) shares.

- :class:`Operators`: the real operator as a host process that a test SIGKILLs and
  starts again, every incarnation archiving into the same directory.
- :class:`JobWatch`: every batch/v1 Job created in the namespace, by execution, seen
  through a ``kubectl --watch`` that outlives the test's faults (a Job created, deleted
  and created again is two uids, whatever the end state shows).
- :func:`record`: a row of the table ``make chaos`` prints (fault, count, what was lost).
- :func:`cluster_event`: the line written to ``/tmp/logs/cluster-events.log`` before a
  fault that every user of the shared cluster feels (the API server, containerd).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.support.cluster import CLUSTER_SCRIPT, LOCAL_STATE, Cluster, Kube
from tests.support.operator import OperatorProcess, run_operator

EXECUTION_LABEL = "overseer.dev/execution"
EVENTS_LOG = Path("/tmp/logs/cluster-events.log")
TABLE = pytest.StashKey[list[tuple[str, str, str]]]()


# --- the table make chaos prints --------------------------------------------------------


def record(config: pytest.Config, fault: str, count: str, lost: Mapping[str, int]) -> None:
    """Add a row: ``lost`` counts what each check found missing or doubled (all zero)."""
    said = ", ".join(f"{what} {n}" for what, n in lost.items())
    config.stash.setdefault(TABLE, []).append((fault, count, said))


def table(config: pytest.Config) -> list[str]:
    """The rows recorded so far, as lines of text."""
    rows = config.stash.get(TABLE, [])
    if not rows:
        return []
    header = ("fault", "count", "lost (each must be 0)")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]


# --- faults of the shared cluster -------------------------------------------------------


def cluster_event(what: str, seconds: float) -> None:
    """Tell the other users of the shared cluster what is about to happen, and for how long."""
    EVENTS_LOG.parent.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    with EVENTS_LOG.open("a") as log:
        log.write(f"{stamp} rel-chaos: {what} for about {seconds:.0f}s\n")


def require_local_cluster(cluster: Cluster) -> None:
    """Faults of the control plane or the node need the local cluster's own processes."""
    if cluster.context != "overseer-local" or not (LOCAL_STATE / "bin-path").exists():
        pytest.skip("stopping the API server or containerd needs the local cluster (hack/)")


def cluster_script(command: str) -> None:
    """Run ``hack/cluster.sh COMMAND`` (stop-apiserver, start-apiserver, restart-containerd)."""
    done = subprocess.run(
        ["bash", str(CLUSTER_SCRIPT), command],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode:
        raise AssertionError(f"hack/cluster.sh {command} failed:\n{done.stderr[-3000:]}")


# --- an operator that is killed and started again ---------------------------------------


@dataclass
class Operators:
    """The operator of one test, killed (SIGKILL) and started again at will."""

    kube: Kube
    workdir: Path
    env: Mapping[str, str]
    kills: int = 0
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    current: OperatorProcess | None = None

    def start(self) -> OperatorProcess:
        folder = self.workdir / f"operator-{self.kills}"
        folder.mkdir(parents=True, exist_ok=True)
        self.current = self._stack.enter_context(
            run_operator(self.kube.cluster, self.kube.namespace, folder, extra_env=self.env)
        )
        return self.current

    def kill(self) -> None:
        """SIGKILL the running operator (no clean-up of any kind) and start another."""
        assert self.current is not None
        self.current.check_alive()
        self.current.process.kill()
        self.current.process.wait(timeout=30)
        self.kills += 1
        self.start()

    def logs(self) -> str:
        folders = sorted(self.workdir.glob("operator-*"), key=lambda p: int(p.name.split("-")[1]))
        return "".join((f / "operator.log").read_text(errors="replace") for f in folders)

    def close(self) -> None:
        self._stack.close()


# --- every Job ever created -------------------------------------------------------------


@dataclass
class JobWatch:
    """The uids of every Job of each execution, from a kubectl watch kept running."""

    cluster: Cluster
    namespace: str
    uids: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    _stop: threading.Event = field(default_factory=threading.Event)
    _process: subprocess.Popen[str] | None = None

    @contextlib.contextmanager
    def running(self) -> Iterator[JobWatch]:
        thread = threading.Thread(target=self._run, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            if self._process is not None:
                self._process.kill()
            thread.join(timeout=10)

    def _run(self) -> None:
        template = '{.metadata.labels.overseer\\.dev/execution} {.metadata.uid}{"\\n"}'
        while not self._stop.is_set():
            # Each (re)start lists every Job first, then watches: none is missed while
            # the API server was away and the watch had to start again.
            self._process = subprocess.Popen(
                [
                    *(self.cluster.kubectl, "--kubeconfig", str(self.cluster.kubeconfig)),
                    *("-n", self.namespace, "get", "jobs", "-l", EXECUTION_LABEL),
                    *("--watch", "-o", f"jsonpath={template}"),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            assert self._process.stdout is not None
            for line in self._process.stdout:
                execution, _, uid = line.strip().partition(" ")
                if execution and uid:
                    self.uids[execution].add(uid)
            self._process.wait()
            self._stop.wait(1.0)

    def duplicated(self) -> dict[str, int]:
        """Executions that had more than one Job, with how many."""
        return {name: len(uids) for name, uids in self.uids.items() if len(uids) > 1}


def executions(kube: Kube) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads(
        kube.kubectl("get", "overseerexecutions", "-o", "json").stdout
    )["items"]
    return items


def is_settled(item: Mapping[str, Any]) -> bool:
    """The execution has ended, its output is archived and its deliveries are final."""
    status = item.get("status") or {}
    if status.get("phase") not in {"Complete", "Failed", "TimedOut", "Killed"}:
        return False
    if (status.get("archive") or {}).get("state") != "Complete":
        return False
    deliveries = status.get("deliveries") or []
    if len(deliveries) < len(status.get("events") or []):
        return False
    return not any(d["status"] == "Pending" for d in deliveries)


T = TypeVar("T")


def settle(
    check: Callable[[], T | None], timeout: float, what: str = "every execution to settle"
) -> T:
    """Poll CHECK until it returns something (not None), through faults: a failing kubectl
    (the API server away) is asked again."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if (found := check()) is not None:
                return found
        except (subprocess.CalledProcessError, ValueError):
            pass  # the API server away, or an answer cut short: ask again
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(1.0)
