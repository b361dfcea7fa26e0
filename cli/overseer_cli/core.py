"""Pure logic of the CLI: parameters, paths, tables, problems to messages and exit codes.

Nothing here does I/O; ``client`` sends what these functions build.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

OK = 0
FAILED = 1
USAGE = 2
"""Exit codes: 0 success, 1 an API error, an unreachable API or a job that failed without
an exit code, 2 a usage error (as argparse). ``--follow`` and ``--wait`` exit with the
job's own exit code."""

TERMINAL_PHASES = frozenset({"Complete", "Failed", "TimedOut", "Killed"})


class UsageError(ValueError):
    """The command line is wrong: argparse reports it, exit code 2."""


def parse_parameters(pairs: Iterable[str]) -> dict[str, str]:
    """``NAME=VALUE`` pairs as given (split at the first ``=``, values kept exactly)."""
    parameters: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise UsageError(f"a parameter is NAME=VALUE, got {pair!r}")
        if name in parameters:
            raise UsageError(f"parameter {name!r} is given twice")
        parameters[name] = value
    return parameters


def quote(segment: str) -> str:
    """One path segment URL-encoded whole: a space as %20, é as %C3%A9, / as %2F."""
    return urllib.parse.quote(segment, safe="")


def base_path(namespace: str | None) -> str:
    """The original's paths (the API's default namespace), or ``/namespaces/{ns}``."""
    return f"/namespaces/{quote(namespace)}" if namespace else ""


def job_path(namespace: str | None, job: str) -> str:
    return f"{base_path(namespace)}/jobs/{quote(job)}"


def execution_path(namespace: str | None, job: str, execution: str) -> str:
    return f"{job_path(namespace, job)}/{quote(execution)}"


def output_path(namespace: str | None, job: str, execution: str, stream: str) -> str:
    return f"{execution_path(namespace, job, execution)}/{stream}"


def range_start(content_range: str) -> int:
    """The first byte of a ``Content-Range: bytes first-last/size``; 0 if it says none."""
    unit, _, spec = content_range.partition(" ")
    first = spec.partition("-")[0]
    return int(first) if unit == "bytes" and first.isdigit() else 0


def problem_message(status: int, body: bytes, content_type: str) -> str:
    """``<detail> (HTTP <status>)`` from a problem+json answer, or what the answer says."""
    text = ""
    if "json" in content_type:
        try:
            problem = json.loads(body)
        except ValueError:
            problem = None
        if isinstance(problem, dict):
            text = str(problem.get("detail") or problem.get("title") or "")
            text += "".join(_field_errors(problem.get("errors")))
    if not text:
        text = body.decode("utf-8", "replace").strip()[:200] or "no detail"
    return f"{text} (HTTP {status})"


def _field_errors(errors: object) -> list[str]:
    if not isinstance(errors, list):
        return []
    return [f"\n  {e.get('field')}: {e.get('message')}" for e in errors if isinstance(e, dict)]


def unreachable_message(url: str, reason: str) -> str:
    """What to do when the API does not answer at URL."""
    return (
        f"cannot reach the Overseer API at {url} ({reason}); start a port-forward "
        "(kubectl -n overseer-system port-forward svc/overseer-api 8000:80) "
        "or point --url / OVERSEER_URL at the API"
    )


def ended_exit(execution: Mapping[str, Any]) -> tuple[int, str | None]:
    """The exit code for an ended execution, and a message when it has no exit code."""
    code = execution.get("exitCode")
    if isinstance(code, int):
        return code, None
    phase = execution.get("phase")
    why = ", ".join(str(execution[k]) for k in ("signal", "reason", "message") if execution.get(k))
    return FAILED, f"execution {execution.get('id')} ended {phase}" + (f": {why}" if why else "")


def job_row(job: Mapping[str, Any]) -> list[str]:
    """NAME, ACTIVE, SCHEDULE, NEXT RUN, LAST EXECUTION of one job of ``GET /jobs``."""
    schedule = job.get("schedule") or {}
    cron = schedule.get("cron") or "-"
    if schedule.get("timezone"):
        cron += f" ({schedule['timezone']})"
    last = job.get("lastExecution") or {}
    last_text = f"{last['id']} {last.get('phase') or 'Pending'}" if last else "-"
    return [
        str(job.get("name", "")),
        "yes" if job.get("active") else "no",
        cron,
        str(job.get("nextRun") or "-"),
        last_text,
    ]


JOB_HEADERS = ["NAME", "ACTIVE", "SCHEDULE", "NEXT RUN", "LAST EXECUTION"]


def format_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Left-aligned columns two spaces apart, no trailing spaces, one line per row."""
    table = [list(headers), *(list(row) for row in rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in table]
    return "\n".join(line.rstrip() for line in lines) + "\n"


STATUS_FIELDS = (
    "job",
    "startTime",
    "completionTime",
    "duration",
    "exitCode",
    "signal",
    "reason",
    "message",
    "parameters",
)
"""What ``overseer status`` shows besides id and phase, when the execution has it."""


def status_rows(execution: Mapping[str, Any]) -> list[list[str]]:
    """FIELD, VALUE rows of ``overseer status``: id, phase, then what the execution has."""
    rows = [
        ["id", str(execution.get("id"))],
        ["phase", str(execution.get("phase") or "Pending")],
    ]
    for field in STATUS_FIELDS:
        value = execution.get(field)
        if value is not None:
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            rows.append([field, text])
    return rows
