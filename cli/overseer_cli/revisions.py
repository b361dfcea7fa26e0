"""Whether a requested sync has ended, and how, from the repository as the API shows it.

``POST /sync`` answers when it asked (``requestedAt``); ``GET /repositories`` shows, per
repository, the request its last sync started after (``syncHandledAt``: the operator
echoes the requested-sync annotation), the commit synced, ``lastSyncTime`` and the
Ready condition. A sync asked for is done once ``syncHandledAt`` (or, from an operator
that does not echo, ``lastSyncTime``) is at or after the request: with a new commit,
the same one (nothing new) or an error. With ``--revision`` it is done once the synced
commit is that one, or a sync after the request failed. Pure: the commands feed it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from overseer_cli import core, render

REVISION = re.compile(r"^[0-9a-fA-F]{4,64}$")
SHORT = 12


@dataclass(frozen=True)
class Progress:
    """One repository against the sync waited for."""

    repository: str
    done: bool
    failed: bool = False
    commit: str | None = None
    """The commit synced, as the repository shows it."""
    revision: str | None = None
    jobs: int | None = None
    reason: str | None = None
    message: str | None = None
    errors: tuple[str, ...] = field(default=())
    """One line per file error of the last sync."""

    def describe(self) -> str:
        at = (self.commit or "no commit")[:SHORT]
        if self.failed:
            lines = [f"{self.repository}: sync failed ({self.reason}): {self.message}"]
            return "\n".join([*lines, *(f"  {line}" for line in self.errors)])
        if self.done:
            count = "?" if self.jobs is None else str(self.jobs)
            return f"{self.repository}: synced {at} ({count} jobs)"
        if self.revision is not None:
            return f"{self.repository}: not at {self.revision} (at {at})"
        return f"{self.repository}: no sync since the request (at {at})"


def check_revision(revision: str | None) -> str | None:
    """A commit id or its abbreviation (4 to 64 hex digits), lower case; UsageError else."""
    if revision is None:
        return None
    if not REVISION.match(revision):
        raise core.UsageError(f"--revision is a commit id (4 to 64 hex digits), got {revision!r}")
    return revision.lower()


def _error_line(error: Mapping[str, Any]) -> str:
    where = ":".join(str(p) for p in (error.get("file"), error.get("line")) if p)
    job = f" job {error['job']!r}:" if error.get("job") else ""
    return f"{where}:{job} {error.get('message')}"


def _after(text: object, requested: object) -> bool:
    when, asked = render.parse_time(text), render.parse_time(requested)
    return when is not None and asked is not None and when >= asked


def progress(
    name: str, repository: Mapping[str, Any] | None, requested_at: str, revision: str | None
) -> Progress:
    """Where REPOSITORY (an item of ``GET /repositories``; None while not listed) is
    against the sync requested at REQUESTED_AT, and REVISION when given."""
    if repository is None:
        return Progress(name, done=False, revision=revision)
    commit = repository.get("commit")
    handled = _after(repository.get("syncHandledAt"), requested_at) or _after(
        repository.get("lastSyncTime"), requested_at
    )
    at_revision = revision is not None and str(commit or "").lower().startswith(revision)
    # A sync after the request, or of the revision, that is not Ready: what it found is final.
    failed = (handled or at_revision) and repository.get("ready") is not True
    done = failed or (at_revision if revision is not None else handled)
    return Progress(
        name,
        done=done,
        failed=failed,
        commit=commit if isinstance(commit, str) else None,
        revision=revision,
        jobs=repository.get("jobCount"),
        reason=repository.get("reason"),
        message=repository.get("message"),
        errors=tuple(_error_line(e) for e in repository.get("errors") or ()),
    )


def gave_up_message(seconds: float, waiting: Iterable[Progress]) -> str:
    """Why ``sync --wait`` stopped waiting, and where to look next."""
    states = "; ".join(p.describe() for p in waiting)
    return (
        f"no sync seen within {seconds:g}s ({states}); 'overseer repositories' shows each "
        "repository's synced commit, its Ready condition and errors"
    )
