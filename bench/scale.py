"""Benchmark Overseer at scale on the real cluster. Prints figures; asserts nothing.

Run from the repository root::

    .venv/bin/python bench/scale.py            # 10,000 jobs, 10,000 finished executions
    .venv/bin/python bench/scale.py --jobs 1000 --files 50 --executions 1000 --real 30

In one fresh namespace: it commits ``--jobs`` job definitions (bench/sync.py's, with
schedules that never fall due during the run and no image, so they run in the library
image) into a git repository read through ``file://``, starts the real operator,
applies an OverseerRepository and waits for the sync. Then:

1. the API as a process: ``GET /jobs?limit=100``, every page walked ``--walks`` times,
   with the jobs alone;
2. ``--real`` executions created through the API (``POST /jobs/{name}``, ``--rate`` a
   second), run by the operator on the node, until each is finished, its output
   archived and its Job collected (``OVERSEER_FINISHED_JOB_TTL=0``);
3. the operator stopped, the rest of ``--executions`` seeded from one of those real
   executions (bench/scale_seed.py says how: the same builder, kopf's own annotation,
   the operator's archive and report_on_job, the template's status moved in time);
4. the operator started with all of it present (every object listed and resumed):
   its RSS (VmRSS) and peak (VmHWM) once it is quiet, and the writes the API server
   audited meanwhile; then a requested no-op sync and every write audited for it;
5. the operator restarted: the same figures again;
6. the API as a process again: the same pages, now with the executions.

It exits non-zero only when something is broken (an operator exits, the sync or the
executions never finish within ``--timeout``), never because of a figure. The namespace
is deleted at the end (``--keep`` keeps it), and the time that took is printed.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import json
import os
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import options  # noqa: E402  (next to this file)
import scale_seed  # noqa: E402
import sync as sync_bench  # noqa: E402
from tests.support import api_process, gitserver, overseer  # noqa: E402
from tests.support import cluster as test_cluster  # noqa: E402
from tests.support import operator as support_operator  # noqa: E402

from overseer.core import cmdspec, definitions, execution_command  # noqa: E402
from overseer.crd import execution as execution_  # noqa: E402

REPOSITORY = "bench"
FAR_SCHEDULES: list[Any] = [
    "0 3 1 1 *",
    {"cron": "30 4 1 7 *", "timezone": "Europe/Paris"},
    "0 0 29 2 *",
]
"""Schedules that do not fall due while the benchmark runs (one a year at most)."""
STARTED = sync_bench.STARTED


BrokenError = options.BrokenError


# --- the repository -----------------------------------------------------------------------


def scale_repository(jobs: int, files: int) -> dict[str, gitserver.FileContent]:
    """bench/sync.py's repository, schedules moved out of the run, no image (the library's)."""
    content = sync_bench.build_repository(jobs, files)
    for number in range(files):
        path = sync_bench.job_file(number)
        body = yaml.safe_load(str(content[path]))
        for job in body:
            if "schedule" in job:
                job["schedule"] = FAR_SCHEDULES[
                    int(job["name"].rsplit(" ", 1)[1]) % len(FAR_SCHEDULES)
                ]
        content[path] = yaml.safe_dump(body, sort_keys=False, allow_unicode=True)
    defaults = yaml.safe_load(str(content["overseer.yml"]))
    defaults["defaults"].pop("image", None)
    content["overseer.yml"] = yaml.safe_dump(defaults)
    return content


@dataclasses.dataclass(frozen=True)
class Job:
    display: str
    resource: str
    parameters: dict[str, str]
    stdout: bytes
    """What its bin/ script prints: its argv."""


def parse_jobs(content: dict[str, gitserver.FileContent]) -> list[Job]:
    """Every job, in the order of its number: what to supply and what it prints."""
    texts = {k: str(v) for k, v in content.items() if k.startswith("jobs/")}
    result = definitions.parse_repository(texts, str(content["overseer.yml"]))
    if result.errors:
        raise BrokenError(f"the generated jobs do not parse: {result.errors[:3]}")
    found = []
    for parsed in result.jobs.values():
        definition = parsed.definition
        index = int(definition.name.rsplit(" ", 1)[1])
        supplied = (
            {"partition": str(index)} if definition.cmdspec and not definition.schedule else {}
        )
        plan = execution_command.plan(definition, supplied)
        if plan.template is not None:
            argv = cmdspec.build_argv(plan.template, plan.values, plan.accepted)
        else:
            argv = list(definition.command or [])
        job = Job(definition.name, parsed.resource_name, supplied, (" ".join(argv) + "\n").encode())
        found.append((index, job))
    return [job for _, job in sorted(found, key=lambda pair: pair[0])]


# --- processes ----------------------------------------------------------------------------


@dataclasses.dataclass
class Run:
    """One run: options, cluster, namespace, folders, the jobs."""

    args: argparse.Namespace
    cluster: test_cluster.Cluster
    kube: test_cluster.Kube
    workdir: Path
    audit_log: Path
    jobs: list[Job]

    @property
    def archive(self) -> Path:
        return self.workdir / "archive"

    @contextlib.contextmanager
    def operator(
        self, label: str, tree: Path | None = None
    ) -> Iterator[support_operator.OperatorProcess]:
        """The operator of this tree (or of TREE, another checkout: --operator-tree)."""
        folder = self.workdir / f"operator-{label}"
        folder.mkdir(exist_ok=True)
        env = {
            "OVERSEER_RETRY_MIN": "5s",
            "OVERSEER_RETRY_MAX": "5m",
            "OVERSEER_ARCHIVE_DIR": str(self.archive),
            "OVERSEER_FINISHED_JOB_TTL": "0",
            # Slack for a loaded 2-core machine: a deposed operator would spoil the run.
            "OVERSEER_LEASE_DURATION": "90s",
            "OVERSEER_LEASE_RENEW_DEADLINE": "60s",
        }
        if tree is not None:
            env["PYTHONPATH"] = ":".join(
                str(tree / part) for part in ("operator", "api", "library-image")
            )
        with support_operator.run_operator(
            self.cluster,
            self.kube.namespace,
            folder,
            verbose=self.args.verbose_operator,
            extra_env=env,
        ) as process:
            yield process

    @contextlib.contextmanager
    def api(self, label: str) -> Iterator[api_process.ApiProcess]:
        folder = self.workdir / f"api-{label}"
        folder.mkdir(exist_ok=True)
        env = {"OVERSEER_API_ARCHIVE_DIR": str(self.archive), "OVERSEER_API_LOG_LEVEL": "info"}
        with api_process.run_api(self.cluster, self.kube.namespace, folder, extra_env=env) as api:
            yield api

    def wait(self, what: str, check: Callable[[], bool], progress: Callable[[], str]) -> float:
        """Poll CHECK until true, printing PROGRESS now and then; the seconds it took."""
        start = shown = time.monotonic()
        while not check():
            now = time.monotonic()
            if now - start > self.args.timeout:
                raise BrokenError(f"{what}: not done after {self.args.timeout:.0f}s")
            if now - shown >= self.args.progress:
                print(f"  {what}: {progress()} after {now - start:.0f}s", flush=True)
                shown = now
            time.sleep(1)
        return time.monotonic() - start


# --- figures ------------------------------------------------------------------------------


def proc_figures(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM (MiB) and CPU seconds of a process."""
    fields: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            fields[key] = int(value.split()[0]) / 1024
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    fields["cpu"] = (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
    return fields


@dataclasses.dataclass
class Settled:
    """An operator's start, until quiet: seconds, memory, CPU, audited writes."""

    seconds: float
    rss: float
    hwm: float
    cpu: float
    audited: list[dict[str, Any]]
    settled: bool = True


def settle(
    run: Run, operator: support_operator.OperatorProcess, started: float, limit: float | None = None
) -> Settled:
    """Wait until the operator has synced once and used under --quiet-cpu CPU seconds in
    the last --quiet seconds; its figures then (writes audited since STARTED's mark).
    With LIMIT, give up waiting after that many seconds: the figures then, not settled."""
    mark = sync_bench.AuditMark.now(run.audit_log)
    samples: collections.deque[tuple[float, float]] = collections.deque()

    def quiet() -> bool:
        operator.check_alive()
        if STARTED not in operator.log() or not sync_bench.SYNC_DONE.search(operator.log()):
            return False
        now, cpu = time.monotonic(), proc_figures(operator.process.pid)["cpu"]
        samples.append((now, cpu))
        while samples and now - samples[0][0] > run.args.quiet:
            samples.popleft()
        return (
            now - samples[0][0] >= run.args.quiet - 1.5 and cpu - samples[0][1] < run.args.quiet_cpu
        )

    def progress() -> str:
        figures = proc_figures(operator.process.pid)
        return f"RSS {figures['VmRSS']:.0f} MiB, CPU {figures['cpu']:.0f}s"

    def done() -> bool:
        return quiet() or (limit is not None and time.monotonic() - started > limit)

    run.wait("operator start, until quiet", done, progress)
    figures = proc_figures(operator.process.pid)
    return Settled(
        time.monotonic() - started,
        figures["VmRSS"],
        figures["VmHWM"],
        figures["cpu"],
        mark.writes_since(run.kube.namespace),
        settled=limit is None or time.monotonic() - started <= limit,
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclasses.dataclass
class Pages:
    latencies: list[float]
    api_rss: float

    def text(self) -> str:
        ms = self.latencies
        return (
            f"{len(ms)} pages: p50 {percentile(ms, 0.5):.2f} ms, p99 {percentile(ms, 0.99):.2f}"
            f" ms, max {max(ms):.2f} ms; API RSS {self.api_rss:.0f} MiB"
        )


def walk_pages(api: api_process.ApiProcess, walks: int) -> Pages:
    """GET /jobs?limit=100, every page, WALKS times; each request's latency (ms)."""
    latencies: list[float] = []
    with api.client("reader") as client:
        client.get("/jobs", params={"limit": "100"})  # warm up: not counted
        for _ in range(walks):
            cursor = None
            while True:
                params = {"limit": "100", **({"continue": cursor} if cursor else {})}
                start = time.perf_counter()
                response = client.get("/jobs", params=params)
                latencies.append((time.perf_counter() - start) * 1000)
                if response.status_code != 200:
                    raise BrokenError(f"GET /jobs: HTTP {response.status_code} {response.text}")
                cursor = response.json().get("continue")
                if not cursor:
                    break
    return Pages(latencies, proc_figures(api.process.pid)["VmRSS"])


# --- the steps ----------------------------------------------------------------------------


def sync_jobs(run: Run, operator: support_operator.OperatorProcess, head: str) -> float:
    run.wait("operator start", lambda: STARTED in operator.log(), lambda: "starting")
    started = time.monotonic()
    run.kube.apply(overseer.repository(REPOSITORY, run.args.upstream, interval="1h"))

    def done() -> bool:
        operator.check_alive()
        return any(c == head[:12] for c, _ in sync_bench.SYNC_DONE.findall(operator.log()))

    run.wait("initial sync", done, lambda: f"{sync_bench.count_jobs(run.kube)} jobs")
    seconds = time.monotonic() - started
    count = sync_bench.count_jobs(run.kube)
    if count != len(run.jobs):
        raise BrokenError(f"the sync made {count} jobs, not {len(run.jobs)}")
    return seconds


def list_executions(run: Run) -> list[dict[str, Any]]:
    got = run.kube.kubectl("get", "overseerexecutions", "-o", "json").stdout
    items: list[dict[str, Any]] = json.loads(got)["items"]
    return items


def run_real(run: Run, api: api_process.ApiProcess, operator: Any) -> list[dict[str, Any]]:
    """--real executions through the API, one job each; until finished, archived, collected."""
    began = time.monotonic()
    with api.client("runner") as client:
        for number, job in enumerate(run.jobs[: run.args.real]):
            time.sleep(max(0.0, began + number / run.args.rate - time.monotonic()))
            path = f"/jobs/{urllib.parse.quote(job.display, safe='')}"
            answer = client.post(path, json=job.parameters)
            if answer.status_code != 201:
                raise BrokenError(f"POST {path}: HTTP {answer.status_code} {answer.text}")
    state: dict[str, Any] = {}

    def done() -> bool:
        operator.check_alive()
        items = list_executions(run)
        state["phases"] = collections.Counter((i.get("status") or {}).get("phase") for i in items)
        archived = all(
            ((i.get("status") or {}).get("archive") or {}).get("state") == "Complete"
            and i["status"].get("phase") in execution_.TERMINAL_PHASES
            for i in items
        )
        state["jobs"] = len(run.kube.kubectl("get", "jobs", "-o", "name").stdout.split())
        state["items"] = items
        return archived and state["jobs"] == 0 and len(items) == run.args.real

    run.wait(
        "real executions",
        done,
        lambda: f"{dict(state.get('phases', {}))}, {state.get('jobs')} Jobs",
    )
    print(f"  real executions: {dict(state['phases'])}", flush=True)
    items: list[dict[str, Any]] = state["items"]
    return items


def pick_template(items: list[dict[str, Any]]) -> dict[str, Any]:
    """A real execution that ended Complete with its output archived whole."""
    for item in items:
        status = item.get("status") or {}
        if (
            status.get("phase") == "Complete"
            and status.get("podName")
            and not status.get("deliveries")
        ):
            return item
    raise BrokenError("no real execution ended Complete: nothing to seed from")


def seed(run: Run, template: dict[str, Any]) -> tuple[int, float, int]:
    """The executions beyond the real ones, round-robin over the jobs that have none yet."""
    count = run.args.executions - run.args.real
    jobs = run.jobs[run.args.real :] + run.jobs[: run.args.real]
    bodies = {
        item["metadata"]["name"]: item
        for item in json.loads(run.kube.kubectl("get", "overseerjobs", "-o", "json").stdout)[
            "items"
        ]
    }
    planned = [
        scale_seed.Planned(bodies[job.resource], job.parameters, job.stdout)
        for job in (jobs[n % len(jobs)] for n in range(count))
    ]
    print(f"seeding {count} executions like {template['metadata']['name']}", flush=True)
    seconds, writes = scale_seed.run_seed(
        run.cluster.kubeconfig,
        run.archive,
        template,
        planned,
        concurrency=run.args.concurrency,
        progress=run.args.progress,
    )
    return count, seconds, writes


def noop_sync(run: Run, operator: support_operator.OperatorProcess) -> list[dict[str, Any]]:
    """A requested sync with nothing changed: every write audited from the request on."""
    before = len(sync_bench.SYNC_DONE.findall(operator.log()))
    mark = sync_bench.AuditMark.now(run.audit_log)
    overseer.request_sync(run.kube, REPOSITORY)

    def done() -> bool:
        operator.check_alive()
        return len(sync_bench.SYNC_DONE.findall(operator.log())) > before

    run.wait("no-op sync", done, lambda: "waiting for the operator")
    time.sleep(3)  # kopf's own bookkeeping after the handler lands too
    logged = int(sync_bench.SYNC_DONE.findall(operator.log())[-1][1])
    print(f"  no-op sync done: the operator logged {logged} API writes", flush=True)
    return mark.writes_since(run.kube.namespace)


# --- the run ------------------------------------------------------------------------------


@dataclasses.dataclass
class Figures:
    sync_seconds: float = 0.0
    pages_without: Pages | None = None
    pages_with: Pages | None = None
    real: dict[str, int] = dataclasses.field(default_factory=dict)
    real_memory: dict[str, float] = dataclasses.field(default_factory=dict)
    seeded: tuple[int, float, int] = (0, 0.0, 0)
    annotation_check: str = ""
    starts: dict[str, Settled] = dataclasses.field(default_factory=dict)
    noop: dict[str, list[dict[str, Any]]] = dataclasses.field(default_factory=dict)


def measure(run: Run, head: str) -> Figures:
    figures = Figures()
    if run.args.reuse_namespace:  # what an earlier run made is there: measure the starts
        return measure_starts(run, figures)
    with run.operator("1") as operator:
        figures.sync_seconds = sync_jobs(run, operator, head)
        print(f"  initial sync of {len(run.jobs)} jobs done in {figures.sync_seconds:.1f}s")
        with run.api("1") as api:
            figures.pages_without = walk_pages(api, run.args.walks)
            print(f"  GET /jobs without executions: {figures.pages_without.text()}", flush=True)
            items = run_real(run, api, operator)
        figures.real = dict(collections.Counter(i["status"]["phase"] for i in items))
        figures.real_memory = proc_figures(operator.process.pid)
    template = pick_template(items)
    figures.annotation_check = scale_seed.check_template(template)
    print(f"  kopf's annotation computed for a real execution: {figures.annotation_check}")
    figures.seeded = seed(run, template)
    return measure_starts(run, figures)


def measure_starts(run: Run, figures: Figures) -> Figures:
    """The operator's starts with everything present; the pages with the executions."""
    for tree in run.args.operator_tree:  # a baseline: one start, given --base-limit seconds
        label = f"{tree.name} start"
        started = time.monotonic()
        with run.operator(label.replace(" ", "-"), tree) as operator:
            figures.starts[label] = settled = settle(run, operator, started, run.args.base_limit)
            print(f"  operator {label}: RSS {settled.rss:.0f} MiB, peak {settled.hwm:.0f} MiB")
    for label in ("start", "restart"):
        started = time.monotonic()
        with run.operator(label) as operator:
            figures.starts[label] = settled = settle(run, operator, started)
            print(f"  operator {label}: RSS {settled.rss:.0f} MiB, peak {settled.hwm:.0f} MiB")
            if label == "start":
                figures.noop[label] = noop_sync(run, operator)
            else:
                with run.api("2") as api:
                    figures.pages_with = walk_pages(api, run.args.walks)
                    print(f"  GET /jobs with executions: {figures.pages_with.text()}")
                if not run.args.keep:
                    sync_bench.remove_repository(run.kube)
    return figures


def print_report(run: Run, figures: Figures) -> None:
    args = run.args
    real = ", ".join(f"{n} {phase}" for phase, n in sorted(figures.real.items()))
    count, seconds, writes = figures.seeded
    print(
        f"\nscale benchmark: {len(run.jobs)} jobs in {args.files} files, "
        f"{args.executions} executions"
    )
    print(f"  initial sync: {figures.sync_seconds:.1f}s")
    print(
        f"  executions: {args.real} real (created through POST /jobs/{{name}} at {args.rate}/s,"
        f" run on the node, output archived, Jobs collected): {real}"
    )
    print(
        f"  executions: {count} seeded in {seconds:.0f}s with {writes} API writes "
        f"({args.concurrency} in flight; see bench/scale_seed.py); kopf annotation "
        f"{figures.annotation_check}"
    )
    if figures.real_memory:
        print(
            f"  operator with {len(run.jobs)} jobs and {args.real} executions: RSS "
            f"{figures.real_memory['VmRSS']:.0f} MiB, peak {figures.real_memory['VmHWM']:.0f} MiB"
        )
    print(
        f"\n{'operator':<26} {'settled after':>14} {'RSS MiB':>8} {'peak MiB':>9} "
        f"{'CPU s':>7} {'writes':>7}"
    )
    for label, settled in figures.starts.items():
        print(
            f"{label:<26} {settled.seconds:>13.0f}s {settled.rss:>8.0f} {settled.hwm:>9.0f} "
            f"{settled.cpu:>7.1f} {len(settled.audited):>7}"
            + ("" if settled.settled else "  (not settled: still busy)")
        )
    print("\nGET /jobs?limit=100, every page, API as a process:")
    for name, pages in (("without", figures.pages_without), ("with", figures.pages_with)):
        print(f"  {name + ' executions:':<20} {pages.text() if pages else '(not measured)'}")
    for label, writes in figures.noop.items():
        jobs_written = sum(
            1 for e in writes if (e.get("objectRef") or {}).get("resource") == "overseerjobs"
        )
        print(
            f"\nno-op sync after the operator's {label}: {len(writes)} writes audited, "
            f"{jobs_written} of them to OverseerJobs:"
        )
        for line in sync_bench.describe(writes) or ["     0  (none)"]:
            print(line)
    for label, settled in figures.starts.items():
        print(f"\nwrites audited during the operator's {label}, by client:")
        for line in sync_bench.describe(settled.audited) or ["     0  (none)"]:
            print(line)


def reuse(args: argparse.Namespace, jobs: list[Job]) -> None:
    """Measure the starts again in what an earlier run kept (--keep)."""
    cluster = test_cluster.connect()
    assert cluster.audit_log is not None, "no readable API server audit log"
    kube = test_cluster.Kube(cluster, args.reuse_namespace)
    run = Run(args, cluster, kube, args.reuse_workdir, cluster.audit_log, jobs)
    print(f"namespace: {args.reuse_namespace} (kept by an earlier run), {args.reuse_workdir}")
    print_report(run, measure(run, ""))


def run_bench(args: argparse.Namespace, workdir: Path) -> None:
    content = scale_repository(args.jobs, args.files)
    jobs = parse_jobs(content)
    if args.reuse_namespace:
        return reuse(args, jobs)
    upstream = gitserver.Upstream.create(workdir / "git" / "jobs.git")
    head = upstream.commit(content, "bench: jobs")
    args.upstream = upstream.file_url
    print(f"repository: {len(jobs)} jobs in {args.files} files at {head[:12]}", flush=True)
    cluster = test_cluster.connect()
    if cluster.audit_log is None:
        raise BrokenError("no readable API server audit log (set OVERSEER_TEST_AUDIT_LOG)")
    crds = str(REPO / "manifests" / "crds.yaml")
    cluster.run("apply", "--server-side", "--force-conflicts", "-f", crds)
    for plural in ("overseerrepositories", "overseerjobs", "overseerexecutions"):
        cluster.run("wait", "--for=condition=Established", f"crd/{plural}.overseer.dev")
    namespace = cluster.create_namespace("bench-scale")
    print(f"namespace: {namespace}", flush=True)
    run = Run(
        args, cluster, test_cluster.Kube(cluster, namespace), workdir, cluster.audit_log, jobs
    )
    try:
        print_report(run, measure(run, head))
    finally:
        if args.keep:
            print(f"kept namespace {namespace} and {workdir}")
        else:
            started = time.monotonic()
            cluster.delete_namespace(namespace)
            gone = cluster.run(
                "wait", "--for=delete", f"namespace/{namespace}", "--timeout=900s", check=False
            )
            took = time.monotonic() - started
            print(f"namespace deleted in {took:.0f}s" if not gone.returncode else "namespace left")


def main(argv: list[str] | None = None) -> int:
    parser = options.new_parser(
        "bench/scale.py",
        __doc__,
        "Needs the local cluster (hack/cluster.sh up) or a test cluster in KUBECONFIG, "
        "and a readable API server audit log. Prints figures; exits 1 only when broken.",
    )
    parser.add_argument("--jobs", type=int, default=10_000, help="jobs in the repository")
    parser.add_argument("--files", type=int, default=500, help="files the jobs are spread over")
    parser.add_argument("--executions", type=int, default=10_000, help="finished executions")
    parser.add_argument("--real", type=int, default=300, help="of them, run on the node")
    parser.add_argument("--rate", type=float, default=2.0, help="real executions a second")
    parser.add_argument("--concurrency", type=int, default=8, help="seeding writes in flight")
    parser.add_argument("--walks", type=int, default=5, help="walks through every page")
    parser.add_argument(
        "--quiet", type=float, default=40.0, help="seconds an operator must be quiet"
    )
    parser.add_argument(
        "--quiet-cpu", type=float, default=1.0, help="CPU seconds it may use meanwhile"
    )
    parser.add_argument(
        "--operator-tree",
        type=Path,
        action="append",
        default=[],
        help="also start and restart the operator of this checkout first (a baseline)",
    )
    parser.add_argument(
        "--base-limit", type=float, default=300, help="seconds a baseline start may take"
    )
    parser.add_argument("--reuse-namespace", help="measure the starts in a kept namespace")
    parser.add_argument("--reuse-workdir", type=Path, help="and the kept folder (its archive)")
    options.add_run_options(parser, timeout=1200, unit="step")
    args = parser.parse_args(argv)
    if not 1 <= args.real <= min(args.executions, args.jobs) or args.files > args.jobs:
        parser.error("need 1 <= --real <= --executions and --jobs, --files <= --jobs")
    return options.run_in_workdir("scale", args.keep, lambda workdir: run_bench(args, workdir))


if __name__ == "__main__":
    sys.exit(main())
