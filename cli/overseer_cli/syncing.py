"""``overseer sync``: ask for a sync (``POST /sync``); with ``--wait``, see it end.

The wait polls ``GET /repositories`` until each repository asked shows a sync that
started after the request (``revisions`` says how), then prints the commit synced, or
the error and exits 1.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from overseer_cli import core, revisions
from overseer_cli.client import Api

POLL_SECONDS = 1.0


def sync(api: Api, args: argparse.Namespace) -> int:
    revision = revisions.check_revision(args.revision)
    if revision is not None and not args.wait:
        raise core.UsageError("--revision says what --wait waits for: give --wait too")
    if args.timeout <= 0:
        raise core.UsageError(f"--timeout is a number of seconds above 0, got {args.timeout:g}")
    base = core.base_path(args.namespace)
    filters = {"repository": args.repository} if args.repository else None
    answer = api.post(f"{base}/sync", params=filters)
    names = [str(name) for name in answer.get("repositories") or []]
    requested_at = str(answer.get("requestedAt"))
    listed = ", ".join(names) or "no repository"
    sys.stdout.write(f"sync requested: {listed} (at {requested_at})\n")
    sys.stdout.flush()
    if not args.wait or not names:
        return core.OK
    path = f"{base}/repositories"
    return _wait(api, path, names, requested_at, revision=revision, timeout=args.timeout)


def _wait(
    api: Api,
    path: str,
    names: Sequence[str],
    requested_at: str,
    *,
    revision: str | None,
    timeout: float,
) -> int:
    """Poll the repositories until each shows its sync ended (FAILED when one failed),
    or TIMEOUT (FAILED)."""
    deadline = time.monotonic() + timeout
    while True:
        found = {str(item.get("name")): item for item in api.get(path).get("items") or []}
        states = [revisions.progress(n, found.get(n), requested_at, revision) for n in names]
        if all(state.done for state in states):
            for state in states:
                stream = sys.stderr if state.failed else sys.stdout
                stream.write(f"{state.describe()}\n")
            return core.FAILED if any(state.failed for state in states) else core.OK
        if time.monotonic() >= deadline:
            waiting = [state for state in states if not state.done]
            sys.stderr.write(f"overseer: {revisions.gave_up_message(timeout, waiting)}\n")
            return core.FAILED
        time.sleep(POLL_SECONDS)
