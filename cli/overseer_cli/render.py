"""Pure rendering: documents as JSON or YAML, executions and deliveries as table rows.

Nothing here does I/O; the commands write what these functions return.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import yaml

EXECUTION_HEADERS = ["JOB", "ID", "PHASE", "EXIT", "TRIGGER", "START", "DURATION"]
"""What ``overseer executions`` shows (EXIT: the exit code, or the signal that ended it)."""

DELIVERY_HEADERS = ["DELIVERY", "STATUS", "ATTEMPTS", "REPLAYS", "URL", "LAST ERROR"]

REPOSITORY_HEADERS = ["NAME", "URL", "REF", "COMMIT", "JOBS", "READY", "REASON", "SYNCED"]
"""What ``overseer repositories`` shows (SYNCED: when its status last changed)."""


class _Dumper(yaml.SafeDumper):
    """Safe YAML with a multi-line text (a script) as a literal block, as it was written."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def document(value: Any, output: str) -> str:
    """VALUE as ``json`` (indented, UTF-8 kept) or ``yaml`` (keys in the API's order);
    either reads back as the same value."""
    if output == "yaml":
        text: str = yaml.dump(value, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
        return text
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def parse_time(text: object) -> datetime | None:
    """An RFC 3339 time of the API (``2026-12-06T19:00:00.5Z``) as an aware datetime."""
    if not isinstance(text, str) or not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def short_time(text: object) -> str:
    """A time to the second, in UTC (``2026-12-06T19:00:00Z``); ``-`` for none."""
    when = parse_time(text)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if when else "-"


def duration_text(seconds: float) -> str:
    """``0.4s`` under 10 seconds, then ``42s``, ``3m05s``, ``2h03m``, ``4d01h``."""
    if seconds < 10:
        return f"{max(seconds, 0.0):.1f}s"
    whole = int(seconds)
    minutes, secs = divmod(whole, 60)
    hours, mins = divmod(minutes, 60)
    days, hrs = divmod(hours, 24)
    if days:
        return f"{days}d{hrs:02d}h"
    if hours:
        return f"{hours}h{mins:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def execution_duration(execution: Mapping[str, Any], now: datetime) -> str:
    """From start to completion, or to NOW while it has not ended; ``-`` before it starts."""
    start = parse_time(execution.get("startTime"))
    if start is None:
        return "-"
    end = parse_time(execution.get("completionTime")) or now
    return duration_text((end - start).total_seconds())


def execution_row(execution: Mapping[str, Any], now: datetime) -> list[str]:
    """JOB, ID, PHASE, EXIT, TRIGGER, START, DURATION of one item of ``GET /executions``."""
    trigger = execution.get("trigger") or {}
    code, signal = execution.get("exitCode"), execution.get("signal")
    return [
        str(execution.get("job", "")),
        str(execution.get("id", "")),
        str(execution.get("phase") or "Pending"),
        str(code) if code is not None else str(signal or "-"),
        str(trigger.get("type") or "-"),
        short_time(execution.get("startTime")),
        execution_duration(execution, now),
    ]


def delivery_row(delivery: Mapping[str, Any]) -> list[str]:
    """DELIVERY, STATUS, ATTEMPTS, REPLAYS, URL, LAST ERROR of one webhook delivery."""
    error = " ".join(str(delivery.get("lastError") or "-").split())
    return [
        str(delivery.get("id", "")),
        str(delivery.get("status", "")),
        str(delivery.get("attempts", 0)),
        str(delivery.get("replays") or 0),
        str(delivery.get("url", "")),
        error[:80],
    ]


def repository_row(repository: Mapping[str, Any]) -> list[str]:
    """NAME, URL, REF, COMMIT, JOBS, READY, REASON, SYNCED of one item of ``GET /repositories``."""
    ready = repository.get("ready")
    jobs = repository.get("jobCount")
    return [
        str(repository.get("name", "")),
        str(repository.get("url", "")),
        str(repository.get("ref") or "-"),
        str(repository.get("shortCommit") or "-"),
        "-" if jobs is None else str(jobs),
        "-" if ready is None else str(bool(ready)),
        str(repository.get("reason") or "-"),
        short_time(repository.get("lastSyncTime")),
    ]
