"""What bench/executions.py measures, and how it prints it.

The operator's CPU time and memory (from ``/proc``), one series' latencies (executions
or bare Jobs), the archive run's throughput and checks, and the report. No cluster
calls here: ``bench/executions.py`` gathers the times and hands them over.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import random
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from overseer.core import execution_job

MIB = 1 << 20
SEEDS = {"stdout": 1, "stderr": 2}
"""The job writes ``random.Random(seed).randbytes`` to each stream: checkable here."""


def expected_stream(stream: str, mib: int) -> tuple[int, str]:
    """(size, sha256) of what WRITER writes to STREAM, computed the same way here."""
    rng, digest = random.Random(SEEDS[stream]), hashlib.sha256()
    for _ in range(mib):
        digest.update(rng.randbytes(MIB))
    return mib * MIB, digest.hexdigest()


# --- the operator process ---------------------------------------------------------------


def process_named(name: str) -> int | None:
    """The pid of a host process whose program is NAME (the local cluster's controllers)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            argv0 = (entry / "cmdline").read_bytes().split(b"\0", 1)[0]
            if Path(argv0.decode(errors="replace")).name == name:
                return int(entry.name)
    return None


def cpu_of(pid: int | None) -> float:
    """User and system seconds of PID; 0.0 when there is none."""
    if pid is None:
        return 0.0
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
    return 0.0


CALLS_LINE = "API calls so far: "


def logged_calls(log: str) -> tuple[int, dict[str, dict[str, int]]]:
    """How many call lines the operator's log holds, and the newest one's counts.

    The operator logs its API calls (``{"reads": ..., "writes": ...}``, by verb and
    kind) on SIGUSR2.
    """
    lines = [line for line in log.splitlines() if CALLS_LINE in line]
    if not lines:
        return 0, {"reads": {}, "writes": {}}
    counts: dict[str, dict[str, int]] = json.loads(lines[-1].split(CALLS_LINE, 1)[1])
    return len(lines), counts


def calls_between(
    before: dict[str, dict[str, int]], after: dict[str, dict[str, int]]
) -> dict[str, int]:
    """The calls made between two counts, by "verb Kind" (reads and writes together)."""
    made: dict[str, int] = {}
    for group in ("reads", "writes"):
        for what, count in after.get(group, {}).items():
            if count - before.get(group, {}).get(what, 0):
                made[what] = count - before.get(group, {}).get(what, 0)
    return made


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


def container_state(pod: dict[str, Any] | None, field: str) -> str | None:
    """A field of the job container's state (startedAt, finishedAt, message), if any."""
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
        self.controller_cpu = 0.0
        """kube-controller-manager's CPU meanwhile (the Job controller lives there)."""
        self.calls: dict[str, int] = {}
        """The operator's own API calls meanwhile, by "verb Kind" (not kopf's)."""
        self.audited_writes: dict[str, int] = {}
        """Writes the API server audited from the operator meanwhile (kopf's too)."""
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
        self.exit_source = "exit frame"
        self.archived_seq = 0
        self.written_seq: int | None = None
        """The supervisor's last ``seq``, from its termination message."""


# --- the report -------------------------------------------------------------------------


def figures(values: list[float]) -> str:
    if not values:
        return f"{'-':>8}{'-':>8}{'-':>8}"
    return "".join(
        f"{v:>7.2f}s" for v in (percentile(values, 0.5), percentile(values, 0.99), max(values))
    )


def per_minute(result: Result) -> float:
    """Completions a minute: the series' count over first creation to last terminal."""
    return result.count * 60 / result.elapsed if result.elapsed > 0 else 0.0


def print_report(count: int, rate: float, results: list[Result]) -> None:
    print(
        f"\nexecutions benchmark: {count} of a job running `true`, created at "
        f"{rate:g}/s, {os.cpu_count()} cores"
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
        "completed a minute": lambda r: f"{per_minute(r):.1f}",
        "outcomes": lambda r: ", ".join(f"{k} {v}" for k, v in sorted(r.outcomes.items())),
        "operator CPU meanwhile": lambda r: f"{r.cpu:.1f}s",
        "  per execution": lambda r: f"{r.cpu / max(r.count, 1):.3f}s",
        "kube-controller-manager CPU": lambda r: f"{r.controller_cpu:.1f}s",
        "operator API calls per execution": lambda r: (
            f"{sum(r.calls.values()) / max(r.count, 1):.2f}"
        ),
        "  of which writes (audited)": lambda r: (
            f"{sum(r.audited_writes.values()) / max(r.count, 1):.2f}"
        ),
        "operator peak RSS meanwhile": lambda r: f"{r.peak_rss / 1024:.0f} MiB",
        "startedAt/finishedAt fallbacks": lambda r: "{start}/{exit}, {missing} missing".format(
            **r.fallbacks
        ),
    }
    for label, show in lines.items():
        print(f"{label:<{width}}" + "".join(f"  {show(r):<24} " for r in results))
    for r in results:
        if r.calls or r.audited_writes:
            print(f"{r.what}: the operator's API calls (its client), by verb and kind:")
            for what, n in sorted(r.calls.items()):
                print(f"  {n:>6}  {what}")
            print(f"{r.what}: writes audited from the operator (kopf's too):")
            for what, n in sorted(r.audited_writes.items()):
                print(f"  {n:>6}  {what}")
    if len(results) == 2 and per_minute(results[1]):
        ratio = per_minute(results[0]) / per_minute(results[1])
        label = f"completed a minute, {results[0].what} / {results[1].what}"
        print(f"{label:<{width}}  {ratio:.2f}")
    own = results[0].own_jobs

    if own:
        label = "  their own Jobs: exit -> Complete"
        print(f"{label:<{width}}  {figures(own)} ")
    print(
        "creation: the create call answered; container start and exit: the supervisor's\n"
        "start and exit frames; terminal: the watch event with the execution's terminal\n"
        "phase, or with the Job's Complete (or Failed) condition, arrived here"
    )


def print_archive(archived: Archived) -> None:
    print(
        f"\narchive: one execution writing {archived.mib} MiB to stdout and "
        f"{archived.mib} MiB to stderr (pseudo-random bytes)"
    )
    start = archived.start
    if start is None:
        print("  no start time in the execution's status: no throughput")
    if archived.written_seq is not None:
        missing = archived.written_seq - archived.archived_seq
        print(
            f"  frames: the archive took up to seq {archived.archived_seq} of the "
            f"{archived.written_seq} the supervisor wrote (its termination message): "
            + ("all" if missing <= 0 else f"{missing} MISSING")
        )
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
                f"  the job wrote both streams in {written:.1f}s "
                f"(start to {archived.exit_source}): "
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
