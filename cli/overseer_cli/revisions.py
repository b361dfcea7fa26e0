"""Whether a requested sync has arrived, as far as the API shows it.

The API serves no repository status (``POST /sync`` answers 202, and only the
``OverseerRepository`` says which commit it synced and when). What it does serve is
the commit each job's definition was last written at (``source.commit`` in ``GET
/jobs?repository=``): a sync rewrites the jobs a commit changes or adds, and leaves
the others at their older commit. So ``overseer sync --wait`` waits until a job of the
repository shows the commit asked for (``--revision``), or a commit that no job showed
before the request; a commit that changes no job definition (only ``bin/``, or only
deletions) is not seen. Pure: the commands feed it the jobs.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from overseer_cli import core

REVISION = re.compile(r"^[0-9a-fA-F]{4,64}$")
SHORT = 12


@dataclass(frozen=True)
class Progress:
    """One repository's jobs against the commit waited for."""

    repository: str
    commit: str | None
    """The commit waited for: ``--revision`` (in full once a job shows it), or the new
    commit the jobs show; None while no job shows a new one."""
    at: int
    """How many jobs show it: those the commit changed or added."""
    total: int

    @property
    def done(self) -> bool:
        return self.commit is not None and self.at > 0

    def describe(self) -> str:
        if self.done:
            assert self.commit is not None
            return (
                f"{self.repository}: synced {self.commit[:SHORT]} "
                f"({self.at} of {self.total} jobs written at it)"
            )
        if self.commit is None:
            return f"{self.repository}: no job shows a commit other than before the request"
        return f"{self.repository}: no job shows {self.commit[:SHORT]}"


def check_revision(revision: str | None) -> str | None:
    """A commit id or its abbreviation (4 to 64 hex digits), lower case; UsageError else."""
    if revision is None:
        return None
    if not REVISION.match(revision):
        raise core.UsageError(f"--revision is a commit id (4 to 64 hex digits), got {revision!r}")
    return revision.lower()


def commits_by_repository(jobs: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    """The commit of each job (``source.commit``), grouped by repository."""
    found: dict[str, list[str]] = {}
    for job in jobs:
        source = job.get("source") or {}
        repository, commit = source.get("repository"), source.get("commit")
        if isinstance(repository, str) and isinstance(commit, str):
            found.setdefault(repository, []).append(commit)
    return found


def progress(
    repository: str, commits: Sequence[str], before: Collection[str], revision: str | None
) -> Progress:
    """What REPOSITORY's jobs (their COMMITS) show: REVISION when given, else the commit
    most of them show that none showed BEFORE the request."""
    if revision is not None:
        matching = [commit for commit in commits if commit.lower().startswith(revision)]
        target = matching[0] if matching else revision
        return Progress(repository, target, len(matching), len(commits))
    new = Counter(commit for commit in commits if commit not in before)
    if not new:
        return Progress(repository, None, 0, len(commits))
    target = new.most_common(1)[0][0]
    return Progress(repository, target, commits.count(target), len(commits))


def gave_up_message(seconds: float, waiting: Iterable[Progress]) -> str:
    """Why ``sync --wait`` stopped waiting, and where to look next."""
    states = "; ".join(p.describe() for p in waiting)
    return (
        f"no sync seen within {seconds:g}s ({states}). The API shows no repository "
        "status, only the commit each job was last changed at: a commit that changes no "
        "job (only bin/, only deletions, a job file that fails to parse) shows nothing; "
        "'kubectl get overseerrepository NAME -o yaml' shows the synced commit, its "
        "conditions and errors"
    )
