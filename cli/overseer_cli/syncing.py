"""``overseer sync``: ask for a sync (``POST /sync``); with ``--wait``, see it arrive.

The API serves no repository status, so the wait reads what it does serve, the commit
of each job of the repository (``revisions`` says why and how).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping, Sequence

from overseer_cli import core, paging, revisions
from overseer_cli.client import Api

POLL_SECONDS = 1.0


def sync(api: Api, args: argparse.Namespace) -> int:
    revision = revisions.check_revision(args.revision)
    if revision is not None and not args.wait:
        raise core.UsageError("--revision says what --wait waits for: give --wait too")
    if args.timeout <= 0:
        raise core.UsageError(f"--timeout is a number of seconds above 0, got {args.timeout:g}")
    base = core.base_path(args.namespace)
    filters = {"repository": args.repository} if args.repository else {}
    before = _commits(api, f"{base}/jobs", filters) if args.wait else {}
    answer = api.post(f"{base}/sync", params=filters or None)
    names = [str(name) for name in answer.get("repositories") or []]
    listed = ", ".join(names) or "no repository"
    sys.stdout.write(f"sync requested: {listed} (at {answer.get('requestedAt')})\n")
    sys.stdout.flush()
    if not args.wait or not names:
        return core.OK
    jobs = f"{base}/jobs"
    return _wait(api, jobs, filters, names, before=before, revision=revision, timeout=args.timeout)


def _commits(api: Api, path: str, filters: Mapping[str, str]) -> dict[str, list[str]]:
    jobs = paging.collect(lambda params: api.get(path, params), filters)
    return revisions.commits_by_repository(jobs)


def _wait(
    api: Api,
    path: str,
    filters: Mapping[str, str],
    names: Sequence[str],
    *,
    before: Mapping[str, list[str]],
    revision: str | None,
    timeout: float,
) -> int:
    """Poll the jobs until each repository's show the commit waited for, alike on two
    polls in a row (the sync writes its jobs a few at once: the API shows them as they
    come), or TIMEOUT."""
    deadline = time.monotonic() + timeout
    settled: list[revisions.Progress] | None = None
    while True:
        now = _commits(api, path, filters)
        states = [
            revisions.progress(name, now.get(name, []), before.get(name, []), revision)
            for name in names
        ]
        finished = all(state.done for state in states)
        if finished and states == settled:
            sys.stdout.write("".join(f"{state.describe()}\n" for state in states))
            return core.OK
        settled = states if finished else None
        if not finished and time.monotonic() >= deadline:
            waiting = [state for state in states if not state.done]
            sys.stderr.write(f"overseer: {revisions.gave_up_message(timeout, waiting)}\n")
            return core.FAILED
        time.sleep(POLL_SECONDS)
