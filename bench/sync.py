"""Benchmark the repository sync on the real cluster. Prints figures; asserts nothing.

Run from the repository root::

    .venv/bin/python bench/sync.py [--jobs 10000] [--files 500]

It commits N job definitions spread over F files into a real git repository (a
bare repository read through ``file://``), creates a fresh namespace, installs
the CRDs, starts the real operator process (``python -m overseer.operator``)
watching only that namespace, applies an OverseerRepository and measures:

1. the initial sync: from applying the repository until all N OverseerJobs
   exist and the repository's status says ``jobCount: N`` and Ready True;
2. a one-file change: from requesting a sync (the ``overseer.dev/requested-sync``
   annotation) after a commit that changes one file's jobs, until those jobs
   hold the new definition and the status names the new commit;
3. a no-op sync: a requested sync with nothing changed, until the operator
   logs that it is done;

with, for each, the API writes the operator logs it made and the write calls
the API server audited in the namespace (by client), the operator's peak
memory (VmHWM), and the CPU time of the operator, kube-apiserver and etcd.
After the initial sync it waits for every scheduled job's next run to be in its
status, then measures the floor in the same run (``bench/sync_floor.py``): the
very objects the sync wrote, applied by 8 parallel ``kubectl apply
--server-side`` into a fresh namespace; and prints the sync's time over it.
It exits non-zero only when something is broken (the operator exits, the jobs
never appear within ``--timeout``), never because of a figure. The namespace
and the operator are removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import json
import re
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

UTC = datetime.UTC
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import audit  # noqa: E402  (next to this file)
import execution_figures  # noqa: E402
import options  # noqa: E402
import sync_floor  # noqa: E402
from tests.support import cluster as test_cluster  # noqa: E402
from tests.support import gitserver, overseer  # noqa: E402
from tests.support import operator as support_operator  # noqa: E402
from tests.support.operator import OperatorProcess  # noqa: E402

from overseer.core import definitions  # noqa: E402

REPOSITORY = "bench"
SYNC_DONE = re.compile(r"sync of \S+ at ([0-9a-f]+) done with (\d+) API writes")
REGIONS = ["eu-west-1", "us-east-1", "ap-south-1"]
# Schedules that do not come due during a run (once a year, or a quarter): every one
# gets its next run announced in its status, and none creates executions meanwhile,
# which would be measured too (and start hundreds of pods on the shared cluster).
SCHEDULES: list[Any] = [
    "15 4 1 */3 *",
    {"cron": "0 3 1 1 *", "timezone": "Europe/Paris"},
    "@yearly",
]
TEAMS = 20
LOG_LINE = re.compile(r"^\[([0-9-]+ [0-9:,]+)\] \S+\s+\[\w+\s*\] (.*)$")
STARTED = "Activity 'configure' succeeded"


BrokenError = options.BrokenError


# --- the repository -----------------------------------------------------------------------


def build_job(index: int, team: int, revision: int) -> dict[str, Any]:
    """A realistic definition: cmdspec with parameters (or an argv), env, some schedules."""
    scheduled = index % 5 == 0
    job: dict[str, Any] = {
        "name": f"Team {team:02d} ledger {index:05d}",
        "description": f"Reconcile ledger partition {index} of team {team:02d} "
        f"(revision {revision})",
    }
    if index % 4 == 3:
        job["command"] = ["sync-ledger", "--partition", str(index)]
    else:
        job["cmdspec"] = "reconcile --region region --day day partition"
        job["parameters"] = {
            "region": {
                "description": "Where the ledger lives",
                "default": REGIONS[index % len(REGIONS)],
                "allowed": list(REGIONS),
            },
            "day": {"description": "Day to reconcile (YYYY-MM-DD)", "default": "yesterday"},
            "partition": (
                {"description": "Partition number", "default": str(index)}
                if scheduled
                else {"description": "Partition number", "required": True}
            ),
        }
    job["env"] = {
        "TEAM": f"team-{team:02d}",
        "PARTITION": str(index),
        "WORKERS": 4,
        "REVISION": str(revision),
    }
    if scheduled:
        job["schedule"] = SCHEDULES[(index // 5) % len(SCHEDULES)]
    if index % 7 == 0:
        job["timeout"] = "30m"
        job["retries"] = 2
        job["concurrency"] = {"limit": 1, "policy": "forbid"}
    return job


def job_file(number: int) -> str:
    return f"jobs/team-{number % TEAMS:02d}/ledger-{number:03d}.yml"


def render_file(number: int, jobs: int, files: int, revision: int) -> str:
    start, end = number * jobs // files, (number + 1) * jobs // files
    body = [build_job(i, number % TEAMS, revision) for i in range(start, end)]
    return yaml.safe_dump(body, sort_keys=False, allow_unicode=True)


def build_repository(jobs: int, files: int) -> dict[str, gitserver.FileContent]:
    content: dict[str, gitserver.FileContent] = {
        job_file(n): render_file(n, jobs, files, revision=1) for n in range(files)
    }
    defaults = {
        "defaults": {
            "image": "registry.example.com/jobs:2024.06",
            "timeout": "1h",
            "env": {"LEDGER_URL": "https://ledger.example.com"},
            "hooks": {"fail": "https://alerts.example.com/overseer"},
        }
    }
    content["overseer.yml"] = yaml.safe_dump(defaults)
    content["bin/reconcile"] = ('#!/bin/sh\necho reconcile "$@"\n', 0o755)
    content["bin/sync-ledger"] = ('#!/bin/sh\necho sync-ledger "$@"\n', 0o755)
    return content


def check_repository(content: dict[str, gitserver.FileContent]) -> tuple[dict[str, str], int]:
    """Parse what was generated as the operator will; return resource name -> file, and
    how many jobs have a schedule."""
    texts = {k: v for k, v in content.items() if isinstance(v, str) and k.startswith("jobs/")}
    result = definitions.parse_repository(texts, str(content["overseer.yml"]))
    if result.errors:
        raise BrokenError(f"the generated jobs do not parse: {result.errors[:3]}")
    scheduled = sum(1 for job in result.jobs.values() if job.definition.schedule is not None)
    return {name: job.file for name, job in result.jobs.items()}, scheduled


# --- the operator process -----------------------------------------------------------------


class Operator(OperatorProcess):
    """The operator process, with the sync lines this benchmark reads from its log."""

    def syncs(self) -> list[tuple[str, int]]:
        """(commit prefix, writes) of every sync the operator logged as done."""
        return [(m[1], int(m[2])) for m in SYNC_DONE.finditer(self.log())]


@contextlib.contextmanager
def run_operator(
    cluster: test_cluster.Cluster, namespace: str, workdir: Path, verbose: bool
) -> Iterator[Operator]:
    """The operator as the tests run it, but not verbose by default, with default retries."""
    with support_operator.run_operator(
        cluster,
        namespace,
        workdir,
        verbose=verbose,
        extra_env={"OVERSEER_RETRY_MIN": "5s", "OVERSEER_RETRY_MAX": "5m"},
    ) as process:
        yield Operator(process.process, process.log_path)


# --- the audit log ------------------------------------------------------------------------

AuditMark = audit.AuditMark
writer = audit.writer
describe = audit.describe


def sync_steps(log: str, audited: list[dict[str, Any]]) -> str:
    """Where the operator's last sync spent its time, from its log and the audit log.

    fetch: "fetching" to "read commit"; parse and plan: to the operator's first
    audited write (or to "done" when there is none); writes: to "done".
    """
    times: dict[str, datetime.datetime] = {}
    for line in log.splitlines():
        match = LOG_LINE.match(line)
        if match is None:
            continue
        when = datetime.datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S,%f").astimezone()
        for step in ("fetching", "read commit", "sync of"):
            if match[2].startswith(step):
                times[step] = when
    if len(times) < 3:
        return "(not found in the operator log)"
    ours = [e for e in audited if writer(e) == "operator" and "kopf" not in e["userAgent"]]
    first = min(
        (datetime.datetime.fromisoformat(e["requestReceivedTimestamp"]) for e in ours),
        default=times["sync of"],
    )

    def seconds(start: datetime.datetime, end: datetime.datetime) -> str:
        return f"{(end - start).total_seconds():.1f}s"

    return (
        f"fetch {seconds(times['fetching'], times['read commit'])}, "
        f"parse and plan {seconds(times['read commit'], first)}, "
        f"{len(ours)} writes {seconds(first, times['sync of'])}"
    )


# --- the cluster --------------------------------------------------------------------------


def count_jobs(kube: test_cluster.Kube) -> int:
    """How many OverseerJobs exist, from one list call of one item (remainingItemCount)."""
    path = f"/apis/overseer.dev/v1alpha1/namespaces/{kube.namespace}/overseerjobs?limit=1"
    data = json.loads(kube.cluster.run("get", "--raw", path).stdout)
    return len(data["items"]) + int(data["metadata"].get("remainingItemCount") or 0)


def repository_state(kube: test_cluster.Kube) -> tuple[str | None, int | None, str | None]:
    """(commit, jobCount, Ready status) of the repository."""
    status: dict[str, Any] = kube.get("overseerrepository", REPOSITORY).get("status") or {}
    conditions: list[dict[str, Any]] = status.get("conditions", [])
    ready = next((c for c in conditions if c.get("type") == "Ready"), {})
    return status.get("commit"), status.get("jobCount"), ready.get("status")


# --- the benchmark ------------------------------------------------------------------------


@dataclasses.dataclass
class Phase:
    name: str
    seconds: float
    logged_writes: int
    audited: list[dict[str, Any]]
    peak_kib: int
    steps: str
    cpu: sync_floor.Cpu
    """The operator's CPU, kube-apiserver's and etcd's, from the start to the log line."""

    def by_writer(self, who: str) -> int:
        return sum(1 for e in self.audited if writer(e) == who)


@dataclasses.dataclass(frozen=True)
class NextRuns:
    """When the scheduled jobs' next runs were all in their status (the last such write)."""

    jobs: int
    writes: int
    seconds: float
    """From applying the repository to the last status write of a job, audited."""
    cpu: sync_floor.Cpu
    """From applying the repository until all were seen written."""


@dataclasses.dataclass
class Results:
    phases: list[Phase]
    next_runs: NextRuns | None
    floor: sync_floor.Floor | None


@dataclasses.dataclass
class Bench:
    """One run: the options, the namespace, the operator, the repository and its jobs."""

    args: argparse.Namespace
    kube: test_cluster.Kube
    operator: Operator
    audit_log: Path
    upstream: gitserver.Upstream
    names: dict[str, str]
    """Resource name -> file of every job the first commit defines."""
    scheduled: int
    workdir: Path

    def wait(
        self,
        what: str,
        check: Callable[[], bool],
        progress: Callable[[], str] | None = None,
        poll: float = 0.5,
    ) -> None:
        """Poll CHECK until true; print PROGRESS every few seconds; BrokenError on timeout."""
        start = shown = time.monotonic()
        while not check():
            self.operator.check_alive()
            now = time.monotonic()
            if now - start > self.args.timeout:
                raise BrokenError(f"{what}: not done after {self.args.timeout:.0f}s")
            if progress is not None and now - shown >= self.args.progress:
                print(f"  {what}: {progress()} after {now - start:.0f}s", flush=True)
                shown = now
            time.sleep(poll)

    def synced(self, commit: str, after: int) -> Callable[[], bool]:
        """True once the operator logs a sync of COMMIT done, beyond the first AFTER syncs."""
        return lambda: any(c == commit[:12] for c, _ in self.operator.syncs()[after:])

    def cpu(self) -> sync_floor.Cpu:
        return sync_floor.Cpu.now(execution_figures.cpu_of(self.operator.process.pid))

    def run(self) -> Results:
        self.wait("operator start", lambda: STARTED in self.operator.log())
        mark, cpu, applied = AuditMark.now(self.audit_log), self.cpu(), datetime.datetime.now(UTC)
        initial = self.initial_sync(mark, cpu)
        next_runs = self.next_runs(mark, cpu, applied)
        floor = None
        if self.args.floor_processes:
            written = sync_floor.read_written(self.kube)
            print(f"  floor: {len(written)} objects, {self.args.floor_processes} kubectl")
            floor = sync_floor.measure(
                self.kube.cluster, written, self.args.floor_processes, self.workdir, self.audit_log
            )
            print(f"  floor done in {floor.seconds:.1f}s", flush=True)
        return Results([initial, self.one_file_change(), self.noop_sync()], next_runs, floor)

    def initial_sync(self, mark: AuditMark, cpu: sync_floor.Cpu) -> Phase:
        """Time it by the operator's log line (its last step), then check with kubectl."""
        jobs, head = len(self.names), self.upstream.head
        started = time.monotonic()
        self.kube.apply(
            overseer.repository(REPOSITORY, self.upstream.file_url, interval=self.args.interval)
        )
        seconds, used = self.timed(
            started,
            "initial sync",
            self.synced(head, 0),
            lambda: (
                count_jobs(self.kube) == jobs
                and repository_state(self.kube) == (head, jobs, "True")
            ),
            lambda: f"{count_jobs(self.kube)}/{jobs} jobs",
        )
        print(f"  initial sync done in {seconds:.1f}s", flush=True)
        return self.phase("initial sync", seconds, mark, used - cpu)

    def next_runs(
        self, mark: AuditMark, cpu: sync_floor.Cpu, applied: datetime.datetime
    ) -> NextRuns | None:
        """Wait until every scheduled job's next run is in its status (the audit log says
        when it was written: a status write of each job, by the operator); check it."""
        if not self.scheduled:
            return None

        def writes() -> list[dict[str, Any]]:
            return [
                e
                for e in mark.writes_since(self.kube.namespace, having=b'"status"')
                if writer(e) == "operator"
                and (e.get("objectRef") or {}).get("resource") == "overseerjobs"
                and e["objectRef"].get("subresource") == "status"
            ]

        self.wait(
            "next runs",
            lambda: len({e["objectRef"]["name"] for e in writes()}) >= self.scheduled,
            lambda: f"{len(writes())}/{self.scheduled} written",
            poll=2.0,
        )
        used = self.cpu() - cpu
        made = writes()
        last = max(datetime.datetime.fromisoformat(e["stageTimestamp"]) for e in made)
        items = json.loads(self.kube.kubectl("get", "overseerjobs", "-o", "json").stdout)["items"]
        announced = sum(1 for i in items if (i.get("status") or {}).get("nextScheduleTime"))
        if announced != self.scheduled:
            raise BrokenError(f"{announced} jobs have a next run, not {self.scheduled}")
        seconds = (last - applied).total_seconds()
        print(f"  next runs of {announced} jobs written after {seconds:.1f}s", flush=True)
        return NextRuns(announced, len(made), seconds, used)

    def one_file_change(self) -> Phase:
        changed_file = job_file(0)
        changed = sorted(name for name, file in self.names.items() if file == changed_file)
        text = render_file(0, self.args.jobs, self.args.files, revision=2)
        new_head = self.upstream.commit({changed_file: text}, "bench: one file")

        def updated() -> bool:
            got = self.kube.kubectl("get", "overseerjobs", *changed, "-o", "json").stdout
            items = json.loads(got)["items"]
            return all(
                i["spec"]["definition"].get("description", "").endswith("(revision 2)")
                for i in items
            ) and (repository_state(self.kube)[0] == new_head)

        return self.requested_sync(
            f"one-file change ({len(changed)} jobs)", self.synced(new_head, 0), updated
        )

    def noop_sync(self) -> Phase:
        done = len(self.operator.syncs())
        head = self.upstream.head
        return self.requested_sync("no-op sync", self.synced(head, done), lambda: True)

    def requested_sync(
        self, name: str, logged: Callable[[], bool], applied: Callable[[], bool]
    ) -> Phase:
        """Request a sync (annotation); time it until LOGGED and APPLIED; count its writes."""
        mark, cpu = AuditMark.now(self.audit_log), self.cpu()
        started = time.monotonic()
        overseer.request_sync(self.kube, REPOSITORY)
        seconds, used = self.timed(
            started, name, logged, applied, lambda: "waiting for the operator"
        )
        print(f"  {name} done in {seconds:.1f}s", flush=True)
        return self.phase(name, seconds, mark, used - cpu)

    def timed(
        self,
        started: float,
        what: str,
        logged: Callable[[], bool],
        applied: Callable[[], bool],
        progress: Callable[[], str],
    ) -> tuple[float, sync_floor.Cpu]:
        """Seconds from STARTED until the operator LOGGED the sync done and kubectl sees it,
        and the CPU used until the log line.

        The log line is the sync's last step, after every write was acknowledged, so
        when kubectl sees the result just after it, the time of the line is the time.
        kubectl's own latency (and its client-side throttling) is left out that way.
        """
        self.wait(what, logged, progress, poll=0.1)
        seconds, cpu = time.monotonic() - started, self.cpu()
        if not applied():
            self.wait(f"{what}, as kubectl sees it", applied)
            seconds = time.monotonic() - started
        return seconds, cpu

    def phase(self, name: str, seconds: float, mark: AuditMark, cpu: sync_floor.Cpu) -> Phase:
        time.sleep(2)  # writes made just after the sync (kopf's own bookkeeping) land too
        audited = mark.writes_since(self.kube.namespace)
        return Phase(
            name,
            seconds,
            self.operator.syncs()[-1][1],
            audited,
            self.operator.status()["VmHWM"],
            sync_steps(self.operator.log(), audited),
            cpu,
        )


def run(args: argparse.Namespace, workdir: Path) -> None:
    """Set up the repository, the namespace and the operator; measure; clean up."""
    content = build_repository(args.jobs, args.files)
    names, scheduled = check_repository(content)
    upstream = gitserver.Upstream.create(workdir / "git" / "jobs.git")
    head = upstream.commit(content, "bench: jobs")
    print(f"repository: {len(names)} jobs in {args.files} files at {head[:12]}", flush=True)
    cluster = test_cluster.connect()
    audit_log = cluster.audit_log
    if audit_log is None:
        raise BrokenError("no readable API server audit log (set OVERSEER_TEST_AUDIT_LOG)")
    crds = str(REPO / "manifests" / "crds.yaml")
    cluster.run("apply", "--server-side", "--force-conflicts", "-f", crds)
    for plural in ("overseerrepositories", "overseerjobs", "overseerexecutions"):
        cluster.run("wait", "--for=condition=Established", f"crd/{plural}.overseer.dev")
    namespace = cluster.create_namespace("bench-sync")
    kube = test_cluster.Kube(cluster, namespace)
    print(f"namespace: {namespace}", flush=True)
    try:
        with run_operator(cluster, namespace, workdir, args.verbose_operator) as operator:
            bench = Bench(args, kube, operator, audit_log, upstream, names, scheduled, workdir)
            print_report(args, len(names), bench.run(), operator)
            if not args.keep:
                remove_repository(kube)
    finally:
        if args.keep:
            print(f"kept namespace {namespace} and {workdir}")
        else:
            started = time.monotonic()
            cluster.delete_namespace(namespace)
            gone = cluster.run(
                "wait", "--for=delete", f"namespace/{namespace}", "--timeout=600s", check=False
            )
            took = time.monotonic() - started
            print(f"namespace deleted in {took:.0f}s" if not gone.returncode else "namespace left")


def remove_repository(kube: test_cluster.Kube) -> None:
    """Delete the repository while the operator runs, so its finalizer is removed."""
    kube.kubectl("delete", "overseerrepository", REPOSITORY, "--wait=false", check=False)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        got = kube.kubectl("get", "overseerrepository", REPOSITORY, check=False)
        if got.returncode:
            return
        time.sleep(0.5)
    kube.kubectl(
        "patch",
        "overseerrepository",
        REPOSITORY,
        "--type=merge",
        "-p",
        '{"metadata":{"finalizers":null}}',
        check=False,
    )


def print_report(args: argparse.Namespace, jobs: int, results: Results, operator: Operator) -> None:
    memory = operator.status()
    print(f"\nsync benchmark: {jobs} jobs in {args.files} files, interval {args.interval}")
    print(
        f"{'phase':<28} {'time':>8} {'writes':>7} {'audited writes':>15} {'kubectl':>8} "
        f"{'cluster':>8} {'peak MiB':>9}  CPU: operator / kube-apiserver / etcd"
    )
    print(f"{'':<28} {'':>8} {'(log)':>7} {'(operator)':>15}")
    for phase in results.phases:
        print(
            f"{phase.name:<28} {phase.seconds:>7.1f}s {phase.logged_writes:>7} "
            f"{phase.by_writer('operator'):>15} {phase.by_writer('kubectl'):>8} "
            f"{phase.by_writer('cluster'):>8} {phase.peak_kib / 1024:>9.0f}  {phase.cpu}"
        )
    print(
        f"operator: peak memory (VmHWM) {memory['VmHWM'] / 1024:.0f} MiB, "
        f"RSS at the end {memory['VmRSS'] / 1024:.0f} MiB, CPU time {memory['cpu']}s"
    )
    if results.next_runs is not None:
        runs = results.next_runs
        print(
            f"next runs: all {runs.jobs} scheduled jobs had theirs in their status "
            f"{runs.seconds:.1f}s after the repository was applied ({runs.writes} status "
            f"writes); CPU until seen: {runs.cpu}"
        )
    print_floor(results)
    for phase in results.phases:
        print(f"\n{phase.name}: the operator's sync: {phase.steps}")
        print("audited writes in the namespace, by client:")
        for line in describe(phase.audited) or ["     0  (none)"]:
            print(line)
    kept = f"; its log: {operator.log_path}" if args.keep else " (--keep keeps its log)"
    print(f"\noperator: {len(operator.syncs())} syncs logged as done{kept}", flush=True)


def print_floor(results: Results) -> None:
    """The floor beside the initial sync, and their ratio."""
    floor, initial = results.floor, results.phases[0]
    if floor is None:
        return
    print(
        f"\nfloor: the {floor.objects} OverseerJobs the initial sync wrote, as read back, applied "
        f"by {floor.processes} kubectl apply --server-side at once into a fresh namespace "
        f"(no operator): {floor.seconds:.1f}s, {floor.audited} audited writes; "
        f"CPU: kubectl / kube-apiserver / etcd {floor.cpu}"
    )
    print(
        f"initial sync / floor: {initial.seconds:.1f}s / {floor.seconds:.1f}s = "
        f"{initial.seconds / floor.seconds:.2f}"
        + (
            ""
            if results.next_runs is None
            else f" (to the last next run written: {results.next_runs.seconds:.1f}s, "
            f"{results.next_runs.seconds / floor.seconds:.2f})"
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = options.new_parser(
        "bench/sync.py",
        __doc__,
        "Needs the local cluster (hack/cluster.sh up) or a test cluster in KUBECONFIG, "
        "and a readable API server audit log. Prints figures; exits 1 only when broken.",
    )
    parser.add_argument("--jobs", type=int, default=10_000, help="jobs in the repository")
    parser.add_argument("--files", type=int, default=500, help="files the jobs are spread over")
    parser.add_argument(
        "--interval", default="10m", help="the repository's polling interval (syncs are requested)"
    )
    parser.add_argument(
        "--floor-processes",
        type=int,
        default=8,
        help="kubectl processes applying the floor at once (0: no floor)",
    )
    options.add_run_options(parser, timeout=1800, unit="phase")
    args = parser.parse_args(argv)
    if args.jobs < 1 or not 1 <= args.files <= args.jobs:
        parser.error("need at least one job and 1 <= --files <= --jobs")
    return options.run_in_workdir("sync", args.keep, lambda workdir: run(args, workdir))


if __name__ == "__main__":
    sys.exit(main())
