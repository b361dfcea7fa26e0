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
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
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

import execution_figures as figures  # noqa: E402  (next to this file)
import options  # noqa: E402
import sync as sync_bench  # noqa: E402
from execution_figures import MIB, SEEDS  # noqa: E402
from tests.support import cluster as test_cluster  # noqa: E402
from tests.support import gitserver, overseer  # noqa: E402
from tests.support import operator as support_operator  # noqa: E402

from overseer import kube_resources  # noqa: E402
from overseer.core import execution_job  # noqa: E402
from overseer.crd import execution as execution_  # noqa: E402
from overseer_library import protocol  # noqa: E402

REPOSITORY = "bench"
QUICK, OUTPUT = "Quick", "Output"
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


def jobs_file(mib: int) -> str:
    writer = WRITER.format(mib=mib, out=SEEDS["stdout"], err=SEEDS["stderr"], chunk=MIB)
    return yaml.safe_dump(
        [
            {"name": QUICK, "command": ["true"]},
            {"name": OUTPUT, "command": ["python3", "-c", writer], "timeout": "30m"},
        ]
    )


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
        return sum(1 for n in names if figures.container_state(self.pods.get(n), "startedAt"))

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
        self.usage = figures.Usage(operator.process.pid)
        self.controller = figures.process_named("kube-controller-manager")
        self.audit_log = kubectl.cluster.audit_log
        self.archive = archive
        self.jobs: dict[str, dict[str, Any]] = {}
        self.seen = Seen()
        for resource, take in (
            (kube_resources.OverseerExecution, self.seen.execution),
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

    def calls(self) -> dict[str, dict[str, int]]:
        """The operator's API calls so far: SIGUSR2 makes it log them."""
        seen, _ = figures.logged_calls(self.operator.log())
        self.operator.process.send_signal(signal.SIGUSR2)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            count, calls = figures.logged_calls(self.operator.log())
            if count > seen:
                return calls
            time.sleep(0.1)  # the log is a file: no event tells it grew
        raise BrokenError("the operator did not log its API calls on SIGUSR2")

    def audited(self, mark: sync_bench.AuditMark | None) -> dict[str, int]:
        """The operator's writes in the namespace the API server audited since MARK.

        The bench and the operator share the kubeconfig's user: the bench's own writes
        (creating executions and bare Jobs) are left out by what they are.
        """
        if mark is None:
            return {}
        made: dict[str, int] = {}
        for entry in mark.writes_since(self.namespace):
            ref = entry.get("objectRef") or {}
            resource = ref.get("resource", "?") + (
                f"/{ref['subresource']}" if "subresource" in ref else ""
            )
            bench_made = entry["verb"] == "create" and (
                resource == "overseerexecutions"
                or (resource == "jobs" and str(ref.get("name", "")).startswith("bare-"))
            )
            if sync_bench.writer(entry) != "operator" or bench_made:
                continue
            agent = str(entry.get("userAgent", "?")).split(" ")[0].split("/")[0]
            what = f"{entry['verb']} {resource} ({agent})"
            made[what] = made.get(what, 0) + 1
        return made

    def run_executions(self) -> figures.Result:
        manifests = []
        for _ in range(self.args.count):
            manifests.append(overseer.execution(self.jobs[QUICK]))
            time.sleep(0.00001)  # execution ids are times in microseconds: keep them apart
        return self.measure("Overseer", manifests, self.seen.terminal)

    def run_bare_jobs(self, template: dict[str, Any]) -> figures.Result:
        manifests = [bare_job(template, f"bare-{i:04d}") for i in range(self.args.count)]
        return self.measure("bare Jobs", manifests, self.seen.finished)

    def measure(
        self, what: str, manifests: list[dict[str, Any]], ends: dict[str, tuple[float, str]]
    ) -> figures.Result:
        """Create MANIFESTS at the rate; wait until each has an end in ENDS; the figures."""
        names = [m["metadata"]["name"] for m in manifests]
        print(f"{what}: creating {len(names)} at {self.args.rate:g}/s", flush=True)
        result = figures.Result(what, len(names))
        cpu, controller = self.usage.cpu(), figures.cpu_of(self.controller)
        calls = self.calls()
        mark = sync_bench.AuditMark.now(self.audit_log) if self.audit_log else None
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
        result.controller_cpu = figures.cpu_of(self.controller) - controller
        result.calls = figures.calls_between(calls, self.calls())
        result.audited_writes = self.audited(mark)
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

    def run_archive(self) -> figures.Archived:
        """One execution writing --stream-mib MiB to each stream, until archived."""
        mib = self.args.stream_mib
        manifest = overseer.execution(self.jobs[OUTPUT])
        name = manifest["metadata"]["name"]
        folder = self.archive / self.namespace / name
        expected: dict[str, tuple[int, str]] = {
            s: figures.expected_stream(s, mib) for s in protocol.STREAMS
        }
        print(f"archive: one execution writing {mib} MiB to stdout and to stderr", flush=True)
        done = figures.Archived(mib, expected, self.usage.reset_peak())
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
                if stream not in done.full and figures.size(folder / stream) >= want:
                    done.full[stream] = now
            if done.complete is None and figures.archive_state(folder).get("complete"):
                done.complete = now
            if time.monotonic() - shown >= self.args.progress:
                sizes = ", ".join(
                    f"{s} {figures.size(folder / s) / MIB:.0f}" for s in protocol.STREAMS
                )
                rss = self.usage.rss() / 1024
                print(f"  archive: {sizes} MiB, operator RSS {rss:.0f} MiB", flush=True)
                shown = time.monotonic()
            time.sleep(0.1)  # local files have no watch: sample their sizes
        done.cpu = self.usage.cpu() - cpu
        done.peak_rss, done.hwm = self.usage.peak_rss, self.usage.hwm()
        done.terminal = self.seen.terminal.get(name)
        status: dict[str, Any] = self.kubectl.get("overseerexecution", name).get("status") or {}
        if status.get("startTime"):
            done.start = figures.timestamp(
                status["startTime"]
            )  # the start frame's time, as read live
        pod = status.get("podName")
        if pod:  # the log may have been rotated: its last lines hold the exit frame
            done.exit = self.frames(pod, tailLines="20")[1]
        finished = figures.container_state(self.seen.pods.get(name), "finishedAt")
        if done.exit is None and finished:
            done.exit, done.exit_source = figures.timestamp(finished), "finishedAt"
        # Frames: how many the archive took, of how many the supervisor wrote.
        done.archived_seq = int(figures.archive_state(folder).get("lastSeq") or 0)
        terminated = figures.container_state(self.seen.pods.get(name), "message")
        summary = protocol.decode_summary(terminated or "")
        done.written_seq = summary.last_seq if summary is not None else None
        for stream in protocol.STREAMS:
            done.sizes[stream] = figures.size(folder / stream)
            done.digests[stream] = figures.digest(folder / stream)
        return done


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
            python_args=["-m", "cProfile", "-o", str(args.profile)] if args.profile else [],
        ) as operator:
            try:
                bench = Bench(args, kubectl, config, operator, operator_dir / "archive")
                template = bench.prepare()
                results = []
                if args.count:
                    results = [bench.run_executions(), bench.run_bare_jobs(template)]
                archived = bench.run_archive() if args.stream_mib else None
                if results:
                    figures.print_report(args.count, args.rate, results)
                if archived is not None:
                    figures.print_archive(archived)
            finally:
                signal.signal(signal.SIGINT, signal.SIG_IGN)  # clean up, whatever comes
                remove_repository(kubectl, operator.process.poll() is None)
                if args.keep:
                    kept = workdir / "operator.log"
                    shutil.copy(operator.log_path, kept)
                    print(f"operator log: {kept}")


def main(argv: list[str] | None = None) -> int:
    parser = options.new_parser(
        "bench/executions.py",
        __doc__,
        "Needs the local cluster (hack/cluster.sh up) or a test cluster in KUBECONFIG "
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
        "--profile",
        type=Path,
        default=None,
        help="run the operator under cProfile, writing its stats to this file at its end "
        "(the CPU figures then include the profiler's overhead)",
    )
    options.add_run_options(parser, timeout=900, unit="series")
    args = parser.parse_args(argv)
    faulthandler.register(signal.SIGUSR1)  # kill -USR1 shows where a slow run is
    interrupted = threading.Event()

    def interrupt(signum: int, frame: object) -> None:
        interrupted.set()  # a Ctrl-C also stops the operator: its exit is no breakage
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
    if args.count < 0 or args.rate <= 0 or args.stream_mib < 0:
        parser.error("need --count >= 0, --rate > 0 and --stream-mib >= 0")
    workdir = Path(tempfile.mkdtemp(prefix="overseer-bench-executions-"))
    try:
        run(args, workdir)
    except (BrokenError, AssertionError, TimeoutError) as error:
        if not interrupted.is_set():
            print(f"bench/executions.py: broken: {error}", file=sys.stderr)
            return 1
        print("bench/executions.py: interrupted; cleaned up", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("bench/executions.py: interrupted; cleaned up", file=sys.stderr)
        return 130
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
