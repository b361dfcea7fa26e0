"""Benchmark executions on the real cluster. Prints figures; asserts nothing.

Run from the repository root::

    .venv/bin/python bench/executions.py [--count 100] [--rate 2] [--stream-mib 100]

It commits two jobs into a real git repository (read through ``file://``), creates a
fresh namespace, installs the CRDs, starts the real operator process (``python -m
overseer.operator``) watching only that namespace and archiving into a directory of
its own, syncs the repository, and then measures:

1. Overseer: N OverseerExecutions of a job that runs ``true``, created at a fixed
   rate. Per execution: creation (the create call answered) to the container's start,
   and the container's exit to the terminal phase, seen by a watch on
   OverseerExecutions (the local time the event arrived).
2. Bare Jobs: N batch/v1 Jobs of the same pod (a copy of the Job the operator made for
   a warm-up execution, without Overseer's owner reference and labels, so the operator
   ignores them), created at the same rate in the same namespace. Per Job: creation to
   the container's start, the container's exit to the Job's Complete condition, seen
   by a watch on Jobs.
3. The archive: one execution writing ``--stream-mib`` MiB of pseudo-random bytes to
   stdout and as many to stderr. From the container's start to each archive file
   reaching its size and to the archive recorded complete; the sizes and contents are
   checked against what the job wrote; the operator's RSS is sampled meanwhile.

The container's start and exit are the ``start`` and ``exit`` frames of the in-pod
supervisor (Unix times with microseconds, taken in the pod: the pod's clock must be
this host's, as on the local cluster), read from the pod's log; where a frame is
missing, the container's ``startedAt``/``finishedAt`` (whole seconds) stand in, and
the report counts how often. Watches, not polling, observe the cluster; the archive's
files are local and are sampled every 0.1s. The operator's CPU time and RSS come from
``/proc``. It exits non-zero only when something is broken (the operator exits, an
execution never ends within ``--timeout``), never because of a figure. The namespace
and the operator are removed at the end, on Ctrl-C too.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import faulthandler
import hashlib
import json
import math
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import lightkube
import yaml
from lightkube import codecs, types
from lightkube.config.kubeconfig import KubeConfig
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import Pod

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support import cluster as test_cluster  # noqa: E402
from tests.support import gitserver, overseer  # noqa: E402
from tests.support import operator as support_operator  # noqa: E402

from overseer import kube  # noqa: E402
from overseer.core import execution_job  # noqa: E402
from overseer.crd import execution as execution_  # noqa: E402
from overseer_library import protocol  # noqa: E402

REPOSITORY = "bench"
QUICK, OUTPUT = "Quick", "Output"
MIB = 1 << 20
SEEDS = {"stdout": 1, "stderr": 2}
BARE_LABEL = "overseer.dev/bench"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
WRITER = """\
import random, sys
mib = {mib}
streams = [(sys.stdout.buffer, random.Random({out})), (sys.stderr.buffer, random.Random({err}))]
for _ in range(mib):
    for stream, rng in streams:
        stream.write(rng.randbytes({chunk}))
for stream, _ in streams:
    stream.flush()
"""


class BrokenError(RuntimeError):
    """Something that must work did not: the benchmark cannot give a figure."""


def expected_stream(stream: str, mib: int) -> tuple[int, str]:
    """(size, sha256) of what WRITER writes to STREAM, computed the same way here."""
    rng, digest = random.Random(SEEDS[stream]), hashlib.sha256()
    for _ in range(mib):
        digest.update(rng.randbytes(MIB))
    return mib * MIB, digest.hexdigest()


def jobs_file(mib: int) -> str:
    writer = WRITER.format(mib=mib, out=SEEDS["stdout"], err=SEEDS["stderr"], chunk=MIB)
    return yaml.safe_dump(
        [
            {"name": QUICK, "command": ["true"]},
            {"name": OUTPUT, "command": ["python3", "-c", writer], "timeout": "30m"},
        ]
    )


# --- the operator process ---------------------------------------------------------------


class Usage:
    """The operator's CPU time and memory from /proc, and its RSS sampled every 0.1s."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_rss = 0  # KiB, since the last reset
        self._lock = threading.Lock()
        threading.Thread(target=self._sample, name="rss", daemon=True).start()

    def _field(self, name: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key == name:
                return int(value.split()[0])
        return 0

    def rss(self) -> int:
        return self._field("VmRSS")

    def hwm(self) -> int:
        return self._field("VmHWM")

    def cpu(self) -> float:
        """User and system seconds, to the clock tick (not rounded to whole seconds)."""
        stat = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")

    def reset_peak(self) -> int:
        with self._lock:
            self.peak_rss = self.rss()
            return self.peak_rss

    def _sample(self) -> None:
        with contextlib.suppress(OSError):  # the process ended
            while True:
                rss = self.rss()
                with self._lock:
                    self.peak_rss = max(self.peak_rss, rss)
                time.sleep(0.1)


# --- what the watches see ---------------------------------------------------------------


class Seen:
    """Everything the watches report in the namespace, with the local arrival times.

    Keys are Job names: an execution's Job is named after it, so one key follows an
    execution, its Job and its pod.
    """

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.terminal: dict[str, tuple[float, str]] = {}
        """Execution -> (arrival time, phase) of the first event with a terminal phase."""
        self.finished: dict[str, tuple[float, str]] = {}
        """Job -> (arrival time, condition) of the first event with Complete or Failed."""
        self.pods: dict[str, dict[str, Any]] = {}
        """Job -> the newest state of its pod."""
        self.errors: list[str] = []

    def execution(self, body: dict[str, Any], now: float) -> None:
        phase = (body.get("status") or {}).get("phase")
        if phase in execution_.TERMINAL_PHASES:
            self.terminal.setdefault(body["metadata"]["name"], (now, phase))

    def job(self, body: dict[str, Any], now: float) -> None:
        for condition in (body.get("status") or {}).get("conditions") or ():
            if condition["type"] in ("Complete", "Failed") and condition["status"] == "True":
                self.finished.setdefault(body["metadata"]["name"], (now, condition["type"]))

    def pod(self, body: dict[str, Any], now: float) -> None:
        job = (body["metadata"].get("labels") or {}).get(JOB_NAME_LABEL)
        if job is not None:
            self.pods[job] = body

    def started(self, names: list[str]) -> int:
        return sum(1 for n in names if container_state(self.pods.get(n), "startedAt"))

    def watch(self, config: Any, resource: Any, namespace: str, take: Callable[..., None]) -> None:
        """List RESOURCE, then feed TAKE, in a thread, with every change after the list.

        Each watch starts from its own list's resourceVersion: a watch cache that has not
        seen a newer version (another resource's) answers 429 until it has.
        """
        client = lightkube.Client(config=config)
        listing = client.list(resource, namespace=namespace)
        for obj in listing:
            with self.changed:
                take(obj.to_dict(), time.time())
        version = listing.resourceVersion

        def retry(error: Exception, count: int) -> types.OnErrorResult:
            if count > 30:
                return types.OnErrorResult(types.OnErrorAction.RAISE)
            return types.OnErrorResult(types.OnErrorAction.RETRY, sleep=1.0)

        def run() -> None:
            try:
                for _, obj in client.watch(
                    resource, namespace=namespace, resource_version=version, on_error=retry
                ):
                    now = time.time()
                    with self.changed:
                        take(obj.to_dict(), now)
                        self.changed.notify_all()
            except Exception as error:  # reported by the waits
                with self.changed:
                    self.errors.append(f"watch of {resource.__name__}: {error!r}")
                    self.changed.notify_all()

        threading.Thread(target=run, name=f"watch {resource.__name__}", daemon=True).start()


def container_state(pod: dict[str, Any] | None, field: str) -> str | None:
    """startedAt or finishedAt of the job container of POD, when it has one."""
    for status in ((pod or {}).get("status") or {}).get("containerStatuses") or ():
        if status.get("name") == execution_job.CONTAINER:
            for state in (status.get("state") or {}).values():
                if isinstance(state, dict) and state.get(field):
                    return str(state[field])
    return None


def timestamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile: with fewer than 100 values, p99 is the maximum."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def bare_job(template: dict[str, Any], name: str) -> dict[str, Any]:
    """The Job the operator made for an execution, as a plain Job named NAME.

    Without Overseer's owner reference, labels and annotations (the operator watches
    pods and Jobs by its execution label, so it leaves these alone), and without what
    the Job controller added (the selector and its labels).
    """
    job = copy.deepcopy(template)
    spec = job["spec"]
    spec.pop("selector", None)
    spec.pop("manualSelector", None)
    pod_metadata = spec["template"].setdefault("metadata", {})
    pod_metadata["labels"] = {BARE_LABEL: "bare"}
    pod_metadata.pop("annotations", None)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": {BARE_LABEL: "bare"}},
        "spec": spec,
    }


def archive_state(folder: Path) -> dict[str, Any]:
    try:
        state: dict[str, Any] = json.loads((folder / "state.json").read_text())
    except (OSError, ValueError):
        return {}
    return state


def size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


class Result:
    """The figures of one series (executions or bare Jobs)."""

    def __init__(self, what: str, count: int) -> None:
        self.what = what
        self.count = count
        self.to_start: list[float] = []
        self.to_end: list[float] = []
        self.total: list[float] = []
        self.exits: dict[str, float] = {}
        self.outcomes: dict[str, int] = {}
        self.fallbacks = {"start": 0, "exit": 0, "missing": 0}
        self.rate = 0.0
        self.elapsed = 0.0
        self.cpu = 0.0
        self.peak_rss = 0
        self.own_jobs: list[float] = []
        """For executions: container exit to their own Job's Complete condition."""

    def add(
        self,
        created: float,
        frames: tuple[float | None, float | None],
        pod: dict[str, Any] | None,
        end: tuple[float, str],
    ) -> float | None:
        """One execution or Job; returns the container's exit time if known."""
        self.outcomes[end[1]] = self.outcomes.get(end[1], 0) + 1
        self.total.append(end[0] - created)
        start, exit_ = frames
        if start is None and (started := container_state(pod, "startedAt")):
            start, self.fallbacks["start"] = timestamp(started), self.fallbacks["start"] + 1
        if exit_ is None and (finished := container_state(pod, "finishedAt")):
            exit_, self.fallbacks["exit"] = timestamp(finished), self.fallbacks["exit"] + 1
        if start is None or exit_ is None:
            self.fallbacks["missing"] += 1
            return None
        self.to_start.append(start - created)
        self.to_end.append(end[0] - exit_)
        return exit_


# --- one benchmark run ------------------------------------------------------------------


class Bench:
    """The options, the namespace, the clients, the watches and the operator."""

    def __init__(
        self,
        args: argparse.Namespace,
        kubectl: test_cluster.Kube,
        config: Any,
        operator: support_operator.OperatorProcess,
        archive: Path,
    ) -> None:
        self.args = args
        self.kubectl = kubectl
        self.namespace = kubectl.namespace
        self.client = lightkube.Client(config=config, field_manager="overseer-bench")
        self.operator = operator
        self.usage = Usage(operator.process.pid)
        self.archive = archive
        self.jobs: dict[str, dict[str, Any]] = {}
        self.seen = Seen()
        for resource, take in (
            (kube.OverseerExecution, self.seen.execution),
            (Job, self.seen.job),
            (Pod, self.seen.pod),
        ):
            self.seen.watch(config, resource, self.namespace, take)

    def wait(self, what: str, done: Callable[[], bool], progress: Callable[[], str]) -> None:
        """Wait for DONE, woken by the watches; print PROGRESS every --progress seconds."""
        start = shown = time.monotonic()
        with self.seen.changed:
            while not done():
                if self.seen.errors:
                    raise BrokenError("; ".join(self.seen.errors))
                self.operator.check_alive()
                now = time.monotonic()
                if now - start > self.args.timeout:
                    raise BrokenError(f"{what}: not done after {self.args.timeout:.0f}s")
                if now - shown >= self.args.progress:
                    print(f"  {what}: {progress()} after {now - start:.0f}s", flush=True)
                    shown = now
                self.seen.changed.wait(timeout=1.0)

    def create_at_rate(self, manifests: list[dict[str, Any]], created: dict[str, float]) -> None:
        """Create each manifest, --rate a second; note when each create call answered."""
        begin = time.monotonic()
        for index, manifest in enumerate(manifests):
            delay = begin + index / self.args.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)  # pacing the creations, not waiting for a state
            body = {**manifest, "metadata": {**manifest["metadata"], "namespace": self.namespace}}
            self.client.create(codecs.from_dict(body))
            created[manifest["metadata"]["name"]] = time.time()

    def read_log(self, pod: str, **params: str) -> bytes:
        """A pod's raw log (lightkube's own ``log()`` splits lines on the frames' \\x1e)."""
        http = self.client._client._client  # lightkube's httpx client, as in overseer.kube
        url = f"/api/v1/namespaces/{self.namespace}/pods/{pod}/log"
        response = http.get(url, params={"container": execution_job.CONTAINER, **params})
        response.raise_for_status()
        return bytes(response.content)

    def frames(self, pod: str | None, **params: str) -> tuple[float | None, float | None]:
        """The supervisor's (start, exit) times from the pod's log, None when not found."""
        start = exit_ = None
        if pod is not None:
            for record in protocol.decode_all([self.read_log(pod, **params)]):
                if isinstance(record, protocol.Start):
                    start = record.time
                elif isinstance(record, protocol.Exit):
                    exit_ = record.time
        return start, exit_

    def prepare(self) -> dict[str, Any]:
        """Sync the repository; run one execution to warm up; return the Job it made."""
        self.kubectl.apply(overseer.repository(REPOSITORY, self.args.upstream, interval="1h"))
        self.jobs = overseer.wait_for_jobs(self.kubectl, {QUICK, OUTPUT}, self.args.timeout)
        manifest = overseer.execution(self.jobs[QUICK])
        name = manifest["metadata"]["name"]
        self.create_at_rate([manifest], {})
        self.wait("warm-up execution", lambda: name in self.seen.terminal, lambda: "running")
        print(f"warm-up execution: {self.seen.terminal[name][1]}", flush=True)
        return self.kubectl.get("job", name)

    def run_executions(self) -> Result:
        manifests = []
        for _ in range(self.args.count):
            manifests.append(overseer.execution(self.jobs[QUICK]))
            time.sleep(0.00001)  # execution ids are times in microseconds: keep them apart
        return self.measure("Overseer", manifests, self.seen.terminal)

    def run_bare_jobs(self, template: dict[str, Any]) -> Result:
        manifests = [bare_job(template, f"bare-{i:04d}") for i in range(self.args.count)]
        return self.measure("bare Jobs", manifests, self.seen.finished)

    def measure(
        self, what: str, manifests: list[dict[str, Any]], ends: dict[str, tuple[float, str]]
    ) -> Result:
        """Create MANIFESTS at the rate; wait until each has an end in ENDS; the figures."""
        names = [m["metadata"]["name"] for m in manifests]
        print(f"{what}: creating {len(names)} at {self.args.rate:g}/s", flush=True)
        result = Result(what, len(names))
        cpu = self.usage.cpu()
        self.usage.reset_peak()
        created: dict[str, float] = {}
        failed: list[BaseException] = []

        def create() -> None:
            try:
                self.create_at_rate(manifests, created)
            except Exception as error:  # raised below
                failed.append(error)
            with self.seen.changed:
                self.seen.changed.notify_all()

        creator = threading.Thread(target=create, name="creator", daemon=True)
        creator.start()
        self.wait(
            what,
            lambda: bool(failed) or (not creator.is_alive() and all(n in ends for n in names)),
            lambda: (
                f"{len(created)} created, {self.seen.started(names)} started, "
                f"{sum(1 for n in names if n in ends)} ended"
            ),
        )
        if failed:
            raise BrokenError(f"{what}: creating failed: {failed[0]!r}")
        result.cpu = self.usage.cpu() - cpu
        result.peak_rss = self.usage.peak_rss
        if ends is self.seen.terminal:  # for comparison, not timed: their own Jobs' ends
            self.wait(
                f"{what}: their Jobs",
                lambda: all(n in self.seen.finished for n in names),
                lambda: f"{sum(1 for n in names if n in self.seen.finished)} Jobs ended",
            )
        first, last = min(created.values()), max(created.values())
        result.elapsed = max(ends[n][0] for n in names) - first
        result.rate = (len(names) - 1) / (last - first) if last > first else 0.0
        print(f"{what}: reading {len(names)} pod logs", flush=True)
        for name in names:
            pod = self.seen.pods.get(name)
            frames = self.frames(pod["metadata"]["name"] if pod else None)
            exit_ = result.add(created[name], frames, pod, ends[name])
            if ends is self.seen.terminal and exit_ is not None and name in self.seen.finished:
                result.own_jobs.append(self.seen.finished[name][0] - exit_)
        return result

    def run_archive(self) -> Archived:
        """One execution writing --stream-mib MiB to each stream, until archived."""
        mib = self.args.stream_mib
        manifest = overseer.execution(self.jobs[OUTPUT])
        name = manifest["metadata"]["name"]
        folder = self.archive / self.namespace / name
        expected: dict[str, tuple[int, str]] = {
            s: expected_stream(s, mib) for s in protocol.STREAMS
        }
        print(f"archive: one execution writing {mib} MiB to stdout and to stderr", flush=True)
        done = Archived(mib, expected, self.usage.reset_peak())
        cpu = self.usage.cpu()
        self.create_at_rate([manifest], {})
        deadline = shown = time.monotonic()
        deadline += self.args.timeout
        while done.complete is None or name not in self.seen.terminal:
            self.operator.check_alive()
            if time.monotonic() > deadline:
                print(f"  archive: not complete after {self.args.timeout:.0f}s", flush=True)
                break
            now = time.time()
            for stream, (want, _) in expected.items():
                if stream not in done.full and size(folder / stream) >= want:
                    done.full[stream] = now
            if done.complete is None and archive_state(folder).get("complete"):
                done.complete = now
            if time.monotonic() - shown >= self.args.progress:
                sizes = ", ".join(f"{s} {size(folder / s) / MIB:.0f}" for s in protocol.STREAMS)
                rss = self.usage.rss() / 1024
                print(f"  archive: {sizes} MiB, operator RSS {rss:.0f} MiB", flush=True)
                shown = time.monotonic()
            time.sleep(0.1)  # local files have no watch: sample their sizes
        done.cpu = self.usage.cpu() - cpu
        done.peak_rss, done.hwm = self.usage.peak_rss, self.usage.hwm()
        done.terminal = self.seen.terminal.get(name)
        status: dict[str, Any] = self.kubectl.get("overseerexecution", name).get("status") or {}
        if status.get("startTime"):
            done.start = timestamp(status["startTime"])  # the start frame's time, as read live
        pod = status.get("podName")
        if pod:  # the log may have been rotated: its last lines hold the exit frame
            done.exit = self.frames(pod, tailLines="5")[1]
        for stream in protocol.STREAMS:
            done.sizes[stream] = size(folder / stream)
            done.digests[stream] = digest(folder / stream)
        return done


def digest(path: Path) -> str:
    sha = hashlib.sha256()
    with contextlib.suppress(OSError), path.open("rb") as file:
        while chunk := file.read(MIB):
            sha.update(chunk)
    return sha.hexdigest()


class Archived:
    """The figures of the archive run."""

    def __init__(self, mib: int, expected: dict[str, tuple[int, str]], rss_before: int) -> None:
        self.mib = mib
        self.expected = expected
        self.rss_before = rss_before
        self.full: dict[str, float] = {}
        self.complete: float | None = None
        self.terminal: tuple[float, str] | None = None
        self.start: float | None = None
        self.exit: float | None = None
        self.sizes: dict[str, int] = {}
        self.digests: dict[str, str] = {}
        self.cpu = 0.0
        self.peak_rss = 0
        self.hwm = 0


# --- the report -------------------------------------------------------------------------


def figures(values: list[float]) -> str:
    if not values:
        return f"{'-':>8}{'-':>8}{'-':>8}"
    return "".join(
        f"{v:>7.2f}s" for v in (percentile(values, 0.5), percentile(values, 0.99), max(values))
    )


def print_report(args: argparse.Namespace, results: list[Result]) -> None:
    print(
        f"\nexecutions benchmark: {args.count} of a job running `true`, created at "
        f"{args.rate:g}/s, {os.cpu_count()} cores"
    )
    width = 34
    print(f"{'':<{width}}" + "".join(f"  {r.what:<24}" for r in results))
    print(f"{'':<{width}}" + "".join(f"  {'p50':>7}{'p99':>8}{'max':>8} " for _ in results))
    rows = [
        ("creation -> container start", "to_start"),
        ("container exit -> terminal", "to_end"),
        ("creation -> terminal", "total"),
    ]
    for label, field in rows:
        print(f"{label:<{width}}" + "".join(f"  {figures(getattr(r, field))} " for r in results))
    lines: dict[str, Callable[[Result], str]] = {
        "creations a second (achieved)": lambda r: f"{r.rate:.2f}/s",
        "first creation -> last terminal": lambda r: f"{r.elapsed:.1f}s",
        "outcomes": lambda r: ", ".join(f"{k} {v}" for k, v in sorted(r.outcomes.items())),
        "operator CPU meanwhile": lambda r: f"{r.cpu:.1f}s",
        "operator peak RSS meanwhile": lambda r: f"{r.peak_rss / 1024:.0f} MiB",
        "startedAt/finishedAt fallbacks": lambda r: "{start}/{exit}, {missing} missing".format(
            **r.fallbacks
        ),
    }
    for label, show in lines.items():
        print(f"{label:<{width}}" + "".join(f"  {show(r):<24} " for r in results))
    own = results[0].own_jobs
    if own:
        print(
            f"(the executions' own Jobs: container exit -> Job Complete seen "
            f"{figures(own).strip()} as p50 p99 max)"
        )
    print(
        "terminal: the execution's terminal phase, or the Job's Complete (or Failed) "
        "condition, at the local time its watch event arrived; creation: when the create "
        "call answered; container start and exit: the supervisor's start and exit frames"
    )


def print_archive(archived: Archived) -> None:
    print(
        f"\narchive: one execution writing {archived.mib} MiB to stdout and "
        f"{archived.mib} MiB to stderr (pseudo-random bytes)"
    )
    start = archived.start
    if start is None:
        print("  no start time in the execution's status: no throughput")
    for stream, (want, sha) in archived.expected.items():
        got = archived.sizes.get(stream, 0)
        same = "matches" if archived.digests.get(stream) == sha else "DIFFERS"
        check = "ok" if got == want and same == "matches" else "WRONG"
        when = archived.full.get(stream)
        rate = (
            f"{archived.mib / (when - start):.1f} MiB/s ({when - start:.1f}s from container start)"
            if when is not None and start is not None
            else "never reached its size"
        )
        print(f"  {stream}: {rate}; check: {got:,} bytes of {want:,}, sha256 {same}: {check}")
    if start is not None:
        if archived.exit is not None:
            written = archived.exit - start
            print(
                f"  the job wrote both streams in {written:.1f}s (start to exit frame): "
                f"{2 * archived.mib / written:.1f} MiB/s through the supervisor"
            )
        if archived.complete is not None:
            took = archived.complete - start
            print(
                f"  archive complete {took:.1f}s after container start: "
                f"{2 * archived.mib / took:.1f} MiB/s for both streams"
            )
        if archived.terminal is not None:
            print(
                f"  execution {archived.terminal[1]} seen {archived.terminal[0] - start:.1f}s "
                "after container start"
            )
    growth = (archived.peak_rss - archived.rss_before) / 1024
    bounded = growth < archived.mib / 2  # far below the 2 x MiB that went through
    print(
        f"  operator RSS: {archived.rss_before / 1024:.0f} MiB before, peak "
        f"{archived.peak_rss / 1024:.0f} MiB during (+{growth:.0f} MiB, VmHWM "
        f"{archived.hwm / 1024:.0f} MiB) for {2 * archived.mib} MiB archived: "
        f"{'bounded' if bounded else 'NOT bounded: it grew with the output'}; "
        f"CPU {archived.cpu:.1f}s"
    )


# --- set-up and clean-up ----------------------------------------------------------------


def remove_repository(kubectl: test_cluster.Kube, operator_alive: bool) -> None:
    """Delete the repository; its finalizer goes with the operator's help, or by force."""
    kubectl.kubectl("delete", "overseerrepository", REPOSITORY, "--wait=false", check=False)
    if operator_alive:
        kubectl.kubectl(
            "wait",
            "--for=delete",
            f"overseerrepository/{REPOSITORY}",
            "--timeout=60s",
            check=False,
        )
    kubectl.kubectl(
        "patch",
        "overseerrepository",
        REPOSITORY,
        "--type=merge",
        "-p",
        '{"metadata":{"finalizers":null}}',
        check=False,
    )


@contextlib.contextmanager
def namespace_for(cluster: test_cluster.Cluster, keep: bool) -> Iterator[test_cluster.Kube]:
    namespace = cluster.create_namespace("bench-executions")
    print(f"namespace: {namespace}", flush=True)
    try:
        yield test_cluster.Kube(cluster, namespace)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not stop this
        if keep:
            print(f"kept namespace {namespace}")
        else:
            print(f"deleting namespace {namespace}", flush=True)
            cluster.delete_namespace(namespace)
            gone = cluster.run(
                "wait", "--for=delete", f"namespace/{namespace}", "--timeout=300s", check=False
            )
            print("namespace deleted" if not gone.returncode else "namespace still deleting")


def run(args: argparse.Namespace, workdir: Path) -> None:
    upstream = gitserver.Upstream.create(workdir / "git" / "jobs.git")
    upstream.commit({"jobs.yml": jobs_file(args.stream_mib)}, "bench: jobs")
    args.upstream = upstream.file_url
    cluster = test_cluster.connect()
    crds = str(REPO / "manifests" / "crds.yaml")
    cluster.run("apply", "--server-side", "--force-conflicts", "-f", crds)
    for plural in ("overseerrepositories", "overseerjobs", "overseerexecutions"):
        cluster.run("wait", "--for=condition=Established", f"crd/{plural}.overseer.dev")
    config = KubeConfig.from_file(str(cluster.kubeconfig)).get()
    with namespace_for(cluster, args.keep) as kubectl:
        operator_dir = workdir / "operator"
        operator_dir.mkdir()
        with support_operator.run_operator(
            cluster,
            kubectl.namespace,
            operator_dir,
            verbose=args.verbose_operator,
            extra_env={"OVERSEER_RETRY_MIN": "5s", "OVERSEER_RETRY_MAX": "5m"},
        ) as operator:
            try:
                bench = Bench(args, kubectl, config, operator, operator_dir / "archive")
                template = bench.prepare()
                results = []
                if args.count:
                    results = [bench.run_executions(), bench.run_bare_jobs(template)]
                archived = bench.run_archive() if args.stream_mib else None
                if results:
                    print_report(args, results)
                if archived is not None:
                    print_archive(archived)
            finally:
                signal.signal(signal.SIGINT, signal.SIG_IGN)  # clean up, whatever comes
                remove_repository(kubectl, operator.process.poll() is None)
                if args.keep:
                    kept = workdir / "operator.log"
                    shutil.copy(operator.log_path, kept)
                    print(f"operator log: {kept}")


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The docstring as written, and each option's default."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench/executions.py",
        description=__doc__,
        formatter_class=HelpFormatter,
        epilog="Needs the local cluster (hack/cluster.sh up) or a test cluster in KUBECONFIG "
        "whose node's clock is this host's. Prints figures; exits 1 only when broken.",
    )
    parser.add_argument(
        "--count", type=int, default=100, help="executions, and as many bare Jobs (0: none)"
    )
    parser.add_argument("--rate", type=float, default=2.0, help="creations a second")
    parser.add_argument(
        "--stream-mib", type=int, default=100, help="MiB written to each stream (0: no archive run)"
    )
    parser.add_argument(
        "--timeout", type=float, default=900, help="seconds a series may take before it is broken"
    )
    parser.add_argument(
        "--progress", type=float, default=5.0, help="seconds between progress lines"
    )
    parser.add_argument("--keep", action="store_true", help="keep the namespace and files")
    parser.add_argument(
        "--verbose-operator", action="store_true", help="run the operator with --verbose"
    )
    args = parser.parse_args(argv)
    faulthandler.register(signal.SIGUSR1)  # kill -USR1 shows where a slow run is
    if args.count < 0 or args.rate <= 0 or args.stream_mib < 0:
        parser.error("need --count >= 0, --rate > 0 and --stream-mib >= 0")
    workdir = Path(tempfile.mkdtemp(prefix="overseer-bench-executions-"))
    try:
        run(args, workdir)
    except (BrokenError, AssertionError, TimeoutError) as error:
        print(f"bench/executions.py: broken: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench/executions.py: interrupted; cleaned up", file=sys.stderr)
        return 130
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
