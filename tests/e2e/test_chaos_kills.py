"""Operator SIGKILLs at random moments during a stream of executions lose nothing.

Issue 13, item 2. A stream of executions of four jobs (one writing known bytes on both
streams with a custom event, one limited to one at a time by a queue, one that traps a
signal the test requests once it is ready, one on a schedule), each with hooks to a
real loopback receiver; meanwhile the operator process is SIGKILLed at seeded random
moments (the seed is printed: ``OVERSEER_CHAOS_SEED`` replays a run) and started again
at once. Afterwards:

- every execution had exactly one batch/v1 Job (a kubectl watch saw every uid);
- every execution is Complete, with exactly one terminal event;
- its stdout and stderr are archived byte for byte, complete;
- each status event reached the receiver at least once, always under one webhook-id
  with the same body, and every delivery is recorded Delivered;
- the queued job's runs never overlapped (each prints its start and end times);
- each signal request reached its job once (the trap prints each one it gets);
- each minute of the schedule ran once.

The short slice (3 kills over 10 executions) runs in ``make test``; the full run
(10 kills over 50) in ``make chaos``, from the same code.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from overseer.core import names
from tests.e2e.test_execution_output import Archive
from tests.e2e.test_webhooks import OPERATOR_ENV
from tests.support import chaos, recorder
from tests.support.cluster import Kube
from tests.support.gitserver import Upstream
from tests.support.overseer import execution, repository, wait_for_jobs

pytestmark = pytest.mark.cluster

WRITE_OUTPUT = (
    """#!/bin/sh
# write-output NAME: 30 lines on stdout (with bytes that are not text), 5 on stderr,
# and a custom event halfway, over about 3 seconds.
i=1
while [ $i -le 30 ]; do
  printf 'line %d of %s \\000\\377\\n' "$i" "$1"
  if [ $((i % 6)) -eq 0 ]; then printf 'err %d of %s\\n' "$i" "$1" >&2; fi
  if [ $i -eq 15 ]; then event progress "{\\"half\\": \\"$1\\"}"; fi
  sleep 0.1
  i=$((i + 1))
done
""",
    0o755,
)
# Prints each USR1 it gets; ends 3 s after the first (time for a second one to show).
TRAP = """\
got=0
trap 'echo got USR1; got=1' USR1
echo ready
i=0
while [ $i -lt 300 ]; do
  sleep 0.2
  i=$((i + 1))
  if [ $got -ge 1 ]; then got=$((got + 1)); fi
  if [ $got -gt 15 ]; then exit 0; fi
done
exit 1
"""
QUEUED = "echo start $(date +%s%N); sleep 2; echo end $(date +%s%N)"
KINDS = ("Writer", "Writer", "Queued", "Trapper", "Writer")
"""The stream cycles through these: half the executions write, the rest queue or trap."""


def jobs_yaml(hook: str) -> str:
    hooks = {"start": hook, "progress": hook, "complete": hook, "fail": hook}
    return yaml.safe_dump(
        [
            {
                "name": "Writer",
                "cmdspec": "write-output n",
                "parameters": {"n": {"required": True}},
                "hooks": hooks,
            },
            {"name": "Queued", "command": QUEUED, "concurrency": {"limit": 1, "policy": "queue"}}
            | {"hooks": hooks},
            {"name": "Trapper", "command": ["sh", "-c", TRAP], "hooks": hooks},
            {"name": "Ticker", "schedule": "* * * * *", "command": ["write-output", "tick"]}
            | {"hooks": hooks},
        ]
    )


def written(name: str) -> tuple[bytes, bytes]:
    """What write-output NAME writes on stdout and stderr."""
    out = b"".join(b"line %d of %s \x00\xff\n" % (i, name.encode()) for i in range(1, 31))
    err = b"".join(b"err %d of %s\n" % (i, name.encode()) for i in range(6, 31, 6))
    return out, err


@dataclass(frozen=True)
class Plan:
    executions: int
    kills: int
    spacing: float = 2.0
    """Seconds between two executions of the stream."""
    settle: float = 240.0
    """How long everything may take to end once the stream is over."""


SLICE = Plan(executions=10, kills=3)
FULL = Plan(executions=50, kills=10, settle=420.0)


def kill_times(plan: Plan, seed: int) -> list[float]:
    """Seeded moments (seconds into the stream), at least 7 s apart so each operator leads."""
    rng = random.Random(seed)
    span = plan.executions * plan.spacing + 10.0
    times: list[float] = []
    while len(times) < plan.kills:
        moment = rng.uniform(2.0, span)
        if all(abs(moment - t) >= 7.0 for t in times):
            times.append(moment)
    return sorted(times)


# --- Given ----------------------------------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[recorder.Recorder]:
    with recorder.serve() as served:
        yield served


@pytest.fixture
def archive(tmp_path: Path, kube: Kube) -> Archive:
    return Archive(tmp_path / "archive", kube.namespace)


@pytest.fixture
def operators(
    kube: Kube, overseer_crds: None, tmp_path: Path, archive: Archive
) -> Iterator[chaos.Operators]:
    env = {**OPERATOR_ENV, "OVERSEER_ARCHIVE_DIR": str(archive.root)}
    env["OVERSEER_RESYNC_INTERVAL"] = "15s"
    # A process started after a SIGKILL must see its predecessor's Lease unchanged for the
    # whole duration before it leads (as client-go: it trusts its own clock only), so kills
    # closer than that chain into a stretch without a leader (68 s with the 15 s default,
    # seed 368507: a trapper gave up waiting for its signal). Kills are at least 7 s apart.
    env.update(
        OVERSEER_LEASE_DURATION="5s", OVERSEER_LEASE_RENEW_DEADLINE="3s",
        OVERSEER_LEASE_RETRY_PERIOD="1s",
    )  # fmt: skip
    operators = chaos.Operators(kube, tmp_path / "operators", env)
    operators.start()
    try:
        yield operators
    finally:
        kube.kubectl("delete", "overseerrepositories", "--all", "--timeout=60s", check=False)
        operators.close()


@pytest.fixture
def synced(
    kube: Kube, tmp_path: Path, receiver: recorder.Recorder, operators: chaos.Operators
) -> dict[str, dict[str, Any]]:
    upstream = Upstream.create(tmp_path / "git" / "jobs.git")
    upstream.commit(
        {"jobs.yml": jobs_yaml(f"{receiver.url}/hook"), "bin/write-output": WRITE_OUTPUT},
        "jobs for the chaos stream",
    )
    kube.apply(repository("jobs", upstream.file_url))
    return wait_for_jobs(kube, {"Writer", "Queued", "Trapper", "Ticker"})


@dataclass
class Scene:
    """Given: the synced jobs, the operator to kill, the receiver and the archive."""

    kube: Kube
    jobs: dict[str, dict[str, Any]]
    operators: chaos.Operators
    receiver: recorder.Recorder
    archive: Archive


@pytest.fixture
def scene(
    kube: Kube,
    synced: dict[str, dict[str, Any]],
    operators: chaos.Operators,
    receiver: recorder.Recorder,
    archive: Archive,
) -> Scene:
    return Scene(kube, synced, operators, receiver, archive)


# --- When -----------------------------------------------------------------------------------


@dataclass
class Stream:
    """What the test created, and the signals it asked for."""

    kinds: dict[str, str]
    """Execution name -> job (display name) of what the test created."""
    params: dict[str, str]
    signalled: set[str]
    started: datetime


def create(kube: Kube, job: dict[str, Any], kind: str, index: int, stream: Stream) -> None:
    params = {"n": f"w{index}"} if kind == "Writer" else None
    manifest = execution(job, parameters=params)
    manifest["spec"]["signals"] = []  # as the API creates them: appending always works
    kube.create(manifest)
    name = manifest["metadata"]["name"]
    stream.kinds[name] = kind
    stream.params[name] = f"w{index}"


def signal_the_ready(kube: Kube, archive: Archive, stream: Stream) -> None:
    """Ask once for USR1 to each trapper whose trap is set (it printed ``ready``)."""
    for name, kind in stream.kinds.items():
        if kind != "Trapper" or name in stream.signalled:
            continue
        if not (archive.read(name, "stdout") or b"").startswith(b"ready\n"):
            continue
        request = {"signal": "SIGUSR1", "requestedAt": datetime.now(UTC).isoformat()}
        patch = [{"op": "add", "path": "/spec/signals/-", "value": request}]
        done = kube.kubectl(
            "patch", "overseerexecution", name, "--type=json", "-p", json.dumps(patch), check=False
        )
        if done.returncode == 0:
            stream.signalled.add(name)
        else:
            print(f"chaos: asking {name} for USR1 failed: {done.stderr.strip()}")


def run_stream(scene: Scene, plan: Plan, seed: int) -> Stream:
    """Create the executions one every ``spacing`` seconds; kill the operator meanwhile."""
    kube, archive = scene.kube, scene.archive
    kills = kill_times(plan, seed)
    print(f"chaos: seed {seed}, kills at {', '.join(f'{t:.1f}s' for t in kills)}")
    stream = Stream({}, {}, set(), datetime.now(UTC))
    start = time.monotonic()
    created = 0
    while created < plan.executions or kills:
        now = time.monotonic() - start
        if created < plan.executions and now >= created * plan.spacing:
            kind = KINDS[created % len(KINDS)]
            create(kube, scene.jobs[kind], kind, created, stream)
            created += 1
        if kills and now >= kills[0]:
            kills.pop(0)
            scene.operators.kill()
        signal_the_ready(kube, archive, stream)
        time.sleep(0.2)
    return stream


# --- Then -----------------------------------------------------------------------------------


def settled(kube: Kube, archive: Archive, stream: Stream) -> list[dict[str, Any]] | None:
    """Every execution once it has ended, its output archived and its deliveries final."""
    signal_the_ready(kube, archive, stream)
    items = chaos.executions(kube)
    return items if all(chaos.is_settled(i) for i in items) else None


def check_output(item: dict[str, Any], kind: str, param: str, archive: Archive) -> bool:
    name = item["metadata"]["name"]
    out, err = archive.read(name, "stdout"), archive.read(name, "stderr") or b""
    if kind in ("Writer", "Ticker"):
        return (out, err) == written("tick" if kind == "Ticker" else param)
    if kind == "Trapper":
        # The shell says so when the signal ended the sleep it was waiting for.
        return out == b"ready\ngot USR1\n" and err in (b"", b"User defined signal 1\n")
    lines = (out or b"").decode().split()
    return len(lines) == 4 and lines[0] == "start" and lines[2] == "end" and err == b""


def queued_overlaps(items: list[dict[str, Any]], kinds: dict[str, str], archive: Archive) -> int:
    """How many runs of the queued job (limit 1) started before the previous one ended."""
    spans = []
    for item in items:
        name = item["metadata"]["name"]
        if kinds.get(name) == "Queued":
            words = (archive.read(name, "stdout") or b"").decode().split()
            if len(words) == 4:
                spans.append((int(words[1]), int(words[3])))
    spans.sort()
    return sum(1 for a, b in itertools.pairwise(spans) if b[0] < a[1])


def payload(request: recorder.Request) -> dict[str, Any]:
    """A webhook's JSON body; {} for anything else the receiver got."""
    try:
        body = json.loads(request.body)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def delivery_faults(item: dict[str, Any], receiver: recorder.Recorder) -> tuple[int, int]:
    """(events never received, webhook-ids seen with two different bodies) of an execution."""
    status = item.get("status") or {}
    execution_id = item["spec"]["executionId"]
    bodies: dict[str, set[bytes]] = defaultdict(set)
    for request in list(receiver.requests):
        if payload(request).get("executionId") == execution_id:
            headers = {k.lower(): v for k, v in request.headers.items()}
            bodies[headers["webhook-id"]].add(request.body)
    events = status.get("events") or []
    undelivered = max(0, len(events) - len(bodies))
    undelivered += sum(1 for d in status.get("deliveries") or [] if d["status"] != "Delivered")
    unstable = sum(1 for seen in bodies.values() if len(seen) > 1)
    return undelivered, unstable


def unstable_bodies(item: dict[str, Any], receiver: recorder.Recorder) -> list[set[bytes]]:
    """The bodies sent under one webhook-id that differ (for the failure's message)."""
    bodies: dict[str, set[bytes]] = defaultdict(set)
    for request in list(receiver.requests):
        if payload(request).get("executionId") == item["spec"]["executionId"]:
            headers = {k.lower(): v for k, v in request.headers.items()}
            bodies[headers["webhook-id"]].add(request.body)
    return [seen for seen in bodies.values() if len(seen) > 1]


def scheduled_misses(items: list[dict[str, Any]], since: datetime, until: datetime) -> int:
    """Minutes of the schedule between SINCE and UNTIL without exactly one execution."""
    minutes = [
        names.parse_execution_id(i["spec"]["executionId"]).replace(second=0, microsecond=0)
        for i in items
        if i["spec"]["trigger"]["type"] == "schedule"
    ]
    first = since.replace(second=0, microsecond=0).timestamp() + 60
    due = [m for m in range(int(first), int(until.timestamp()) - 5, 60)]
    found = [int(m.timestamp()) for m in minutes]
    return sum(1 for m in due if found.count(m) != 1) + (len(found) - len(set(found)))


def check_everything(
    scene: Scene,
    jobs: chaos.JobWatch,
    stream: Stream,
    items: list[dict[str, Any]],
    ended: datetime,
) -> tuple[dict[str, int], list[str]]:
    """What each check found missing or doubled, and which execution each was about."""
    receiver, archive = scene.receiver, scene.archive
    lost: dict[str, int] = defaultdict(int)
    details: list[str] = []

    def count(what: str, name: str, wrong: bool | int, about: object = "") -> None:
        lost[what] += int(wrong)
        if wrong:
            details.append(f"{name}: {what} {about}")

    lost["duplicate Jobs"] = sum(n - 1 for n in jobs.duplicated().values())
    for item in items:
        name = item["metadata"]["name"]
        kind = stream.kinds.get(name, "Ticker")
        status = item.get("status") or {}
        terminal = [e for e in status.get("events") or [] if e["status"] in ("complete", "fail")]
        brief = {k: status.get(k) for k in ("phase", "reason", "message", "signalDeliveries")}
        count(
            "not Complete once",
            name,
            status.get("phase") != "Complete" or len(terminal) != 1,
            brief,
        )
        count("without a Job", name, len(jobs.uids.get(name, ())) != 1)
        exact = check_output(item, kind, stream.params.get(name, ""), archive)
        said = (archive.read(name, "stdout"), archive.read(name, "stderr"))
        count("output not byte-exact", name, not exact, said)
        undelivered, unstable = delivery_faults(item, receiver)
        count("events undelivered", name, undelivered)
        count("webhook-ids unstable", name, unstable, unstable_bodies(item, receiver))
        if kind == "Trapper":
            count("signals not once", name, len(status.get("signalDeliveries") or []) != 1)
    lost["executions missing"] = len(set(stream.kinds) - {i["metadata"]["name"] for i in items})
    lost["queue limit exceeded"] = queued_overlaps(items, stream.kinds, archive)
    lost["scheduled minutes missed"] = scheduled_misses(items, stream.started, ended)
    return dict(lost), details


@pytest.mark.parametrize(
    "plan",
    [pytest.param(SLICE, id="slice"), pytest.param(FULL, id="full", marks=pytest.mark.chaos)],
)
def test_operator_kills_during_a_stream_lose_nothing(
    scene: Scene, plan: Plan, request: pytest.FixtureRequest
) -> None:
    kube, archive, operators = scene.kube, scene.archive, scene.operators
    seed = int(os.environ.get("OVERSEER_CHAOS_SEED") or random.SystemRandom().randrange(10**6))
    with chaos.JobWatch(kube.cluster, kube.namespace).running() as jobs:
        # When executions stream in while the operator is SIGKILLed and started again
        stream = run_stream(scene, plan, seed)
        ended = datetime.now(UTC)
        # Then every execution ends, its output archived and its deliveries final
        items = chaos.settle(lambda: settled(kube, archive, stream), plan.settle)
        time.sleep(2)  # the Job watch has seen every Job by now
    lost, details = check_everything(scene, jobs, stream, items, ended)
    count = f"{operators.kills} kills, {len(items)} executions (seed {seed})"
    chaos.record(request.config, "operator SIGKILL", count, lost)
    assert operators.kills == plan.kills
    assert not any(lost.values()), "\n".join([str(lost), *details])
    assert operators.current is not None
    operators.current.check_alive()
