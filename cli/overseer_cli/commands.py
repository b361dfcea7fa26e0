"""One function per command: glue between the parsed arguments, ``client`` and ``core``.

Each takes the ``Api`` and the argparse namespace and returns the exit code.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from datetime import UTC, datetime
from typing import Any

from overseer_cli import core, paging, render
from overseer_cli.client import Api, ApiError

POLL_SECONDS = 1.0
VISIBLE_SECONDS = 10.0
"""How long a new execution may be unknown (404) to the replica asked: behind a Service,
another API replica's cache gets it from its watch a moment after the creation."""
DELIVERY_GIVEN_UP = "GivenUp"
"""What ``deliveries replay`` sends again without a DELIVERY or ``--status``."""


def _print(value: Any, output: str) -> None:
    """VALUE as ``-o json`` or ``-o yaml`` asks."""
    sys.stdout.write(render.document(value, output))


def _fetch(api: Api, path: str) -> paging.Fetch:
    return lambda params: api.get(path, params)


def jobs(api: Api, args: argparse.Namespace) -> int:
    path = f"{core.base_path(args.namespace)}/jobs"
    items = paging.collect(_fetch(api, path), {})
    if args.output == "table":
        sys.stdout.write(core.format_table(core.JOB_HEADERS, map(core.job_row, items)))
    else:
        _print(items, args.output)
    return core.OK


def executions(api: Api, args: argparse.Namespace) -> int:
    """Every execution, newest first, every page followed (or the first ``--limit``)."""
    if args.limit is not None and args.limit < 1:
        raise core.UsageError(f"--limit is at least 1, got {args.limit}")
    filters = {k: v for k, v in (("job", args.job), ("phase", args.phase)) if v is not None}
    path = f"{core.base_path(args.namespace)}/executions"
    items = paging.collect(_fetch(api, path), filters, args.limit)
    if args.output == "table":
        now = datetime.now(UTC)
        rows = (render.execution_row(item, now) for item in items)
        sys.stdout.write(core.format_table(render.EXECUTION_HEADERS, rows))
    else:
        _print(items, args.output)
    return core.OK


def repositories(api: Api, args: argparse.Namespace) -> int:
    """The namespace's repositories: source, synced commit, Ready and its reason."""
    items = api.get(f"{core.base_path(args.namespace)}/repositories").get("items") or []
    if args.output == "table":
        rows = (render.repository_row(item) for item in items)
        sys.stdout.write(core.format_table(render.REPOSITORY_HEADERS, rows))
    else:
        _print(items, args.output)
    return core.OK


def show(api: Api, args: argparse.Namespace) -> int:
    _print(api.get(core.job_path(args.namespace, args.job)), args.output)
    return core.OK


def run(api: Api, args: argparse.Namespace) -> int:
    parameters = core.parse_parameters(args.param or [])
    created = api.post(core.job_path(args.namespace, args.job), parameters)
    return _started(api, args, created)


def repeat(api: Api, args: argparse.Namespace) -> int:
    params = {"revision": "latest"} if args.latest else None
    created = api.post(core.execution_path(args.namespace, args.job, args.id), params=params)
    return _started(api, args, created)


def _started(api: Api, args: argparse.Namespace, created: dict[str, Any]) -> int:
    """Print the new execution's id; follow its output or wait for its end if asked."""
    execution_id = str(created["id"])
    path = core.execution_path(args.namespace, args.job, execution_id)
    if args.follow or args.wait:
        _await_visible(api, path)
    if args.follow:
        # stdout is the job's alone: the id goes to stderr, before the job's stderr
        sys.stderr.write(f"overseer: execution {execution_id}\n")
        sys.stderr.flush()
        _follow_both(api, args.namespace, args.job, execution_id)
    else:
        sys.stdout.write(execution_id + "\n")
        sys.stdout.flush()
    if not (args.follow or args.wait):
        return core.OK
    ended = _wait_for_end(api, path)
    code, message = core.ended_exit(ended)
    if message:
        sys.stderr.write(f"overseer: {message}\n")
    elif args.wait and not args.follow:
        sys.stderr.write(f"overseer: {execution_id} ended {ended.get('phase')}, exit {code}\n")
    return code


def _follow_both(api: Api, namespace: str | None, job: str, execution_id: str) -> None:
    """Stream stdout to stdout and, beside it, stderr to stderr, until both end."""
    failures: list[ApiError] = []

    def follow_stderr() -> None:
        try:
            api.copy(core.output_path(namespace, job, execution_id, "stderr"), _err(), True)
        except ApiError as error:
            failures.append(error)

    thread = threading.Thread(target=follow_stderr, daemon=True)
    thread.start()
    api.copy(core.output_path(namespace, job, execution_id, "stdout"), _out(), True)
    thread.join()
    if failures:
        raise failures[0]


def _await_visible(api: Api, path: str) -> None:
    deadline = time.monotonic() + VISIBLE_SECONDS
    while True:
        try:
            api.get(path)
            return
        except ApiError as error:
            if error.status != 404 or time.monotonic() > deadline:
                raise
        time.sleep(POLL_SECONDS / 4)


def _wait_for_end(api: Api, path: str) -> dict[str, Any]:
    while True:
        execution: dict[str, Any] = api.get(path)
        if execution.get("phase") in core.TERMINAL_PHASES:
            return execution
        time.sleep(POLL_SECONDS)


def status(api: Api, args: argparse.Namespace) -> int:
    execution = api.get(core.execution_path(args.namespace, args.job, args.id))
    if args.output == "table":
        sys.stdout.write(core.format_table(["FIELD", "VALUE"], core.status_rows(execution)))
    else:
        _print(execution, args.output)
    return core.OK


def logs(api: Api, args: argparse.Namespace) -> int:
    stream = "stderr" if args.stderr else "stdout"
    path = core.output_path(args.namespace, args.job, args.id, stream)
    headers = api.copy(path, _out(), args.follow)
    incomplete = headers.get("overseer-output-incomplete")
    if incomplete and not args.follow:
        state = headers.get("overseer-output-state", "unknown")
        sys.stderr.write(f"overseer: the output may be incomplete (state {state})\n")
    return core.OK


def signal(api: Api, args: argparse.Namespace) -> int:
    path = core.execution_path(args.namespace, args.job, args.id)
    accepted = api.put(path, {"signal": args.signal})
    sys.stdout.write(f"{accepted['signal']} requested for {accepted['id']}\n")
    return core.OK


def deactivate(api: Api, args: argparse.Namespace) -> int:
    job = api.delete(core.job_path(args.namespace, args.job))
    sys.stdout.write(f"{job['name']}: active={'yes' if job['active'] else 'no'}\n")
    return core.OK


def activate(api: Api, args: argparse.Namespace) -> int:
    job = api.put(core.job_path(args.namespace, args.job))
    sys.stdout.write(f"{job['name']}: active={'yes' if job['active'] else 'no'}\n")
    return core.OK


def deliveries(api: Api, args: argparse.Namespace) -> int:
    """An execution's webhook deliveries: id, status, attempts, replays, URL, error."""
    execution = api.get(core.execution_path(args.namespace, args.job, args.id))
    items = execution.get("deliveries") or []
    if args.output == "table":
        sys.stdout.write(
            core.format_table(render.DELIVERY_HEADERS, map(render.delivery_row, items))
        )
    else:
        _print(items, args.output)
    return core.OK


def replay(api: Api, args: argparse.Namespace) -> int:
    """Send deliveries again: the one named, or each in a ``--status`` (GivenUp)."""
    if args.delivery and args.status:
        raise core.UsageError("give a DELIVERY or --status, not both")
    path = core.execution_path(args.namespace, args.job, args.id)
    chosen = [args.delivery] if args.delivery else _deliveries_in(api.get(path), args.status)
    if not chosen:
        wanted = " or ".join(args.status or [DELIVERY_GIVEN_UP])
        sys.stderr.write(f"overseer: no delivery of {args.id} is {wanted}: nothing replayed\n")
        return core.OK
    for delivery in chosen:
        record = api.post(f"{path}/deliveries/{core.quote(delivery)}")["delivery"]
        sys.stdout.write(f"{record['id']} replayed ({record['status']}): {record['url']}\n")
        sys.stdout.flush()
    return core.OK


def _deliveries_in(execution: dict[str, Any], statuses: list[str] | None) -> list[str]:
    wanted = set(statuses or [DELIVERY_GIVEN_UP])
    return [str(d["id"]) for d in execution.get("deliveries") or [] if d.get("status") in wanted]


def _out() -> Any:
    return sys.stdout.buffer


def _err() -> Any:
    return sys.stderr.buffer
