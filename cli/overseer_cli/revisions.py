"""Whether a requested sync has arrived, as far as the API shows it.

The API serves no repository status (``POST /sync`` answers 202, and only the
``OverseerRepository`` says when the sync is done). What it does serve is the commit
each job was read at (``source.commit`` in ``GET /jobs?repository=``): a sync of a new
commit rewrites every job of the repository with it. So ``overseer sync --wait`` waits
until every job of the repository reports the commit asked for (``--revision``), or a
commit that none reported before the request. Pure: the commands feed it the jobs.
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
    total: int

    @property
    def done(self) -> bool:
        return self.commit is not None and self.total > 0 and self.at == self.total

    def describe(self) -> str:
        if self.done:
            assert self.commit is not None
            return f"{self.repository}: synced at {self.commit[:SHORT]} ({self.total} jobs)"
        if self.total == 0:
            return f"{self.repository}: no job shows a commit yet"
        if self.commit is None:
            return f"{self.repository}: no job shows a commit other than before the request"
        return f"{self.repository}: {self.at} of {self.total} jobs at {self.commit[:SHORT]}"


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
    """How far REPOSITORY's jobs (their COMMITS) are: at REVISION when given, else at the
    commit most of them show that none showed BEFORE the request."""
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
        "status: 'kubectl get overseerrepository NAME -o yaml' shows its conditions and "
        "errors (a job file that fails to parse keeps its jobs at their old commit; a "
        "repository already at its latest commit shows nothing new)"
    )
