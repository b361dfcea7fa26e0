"""Where each repository's git mirror lives, and what no URL may reach (for :mod:`overseer.git`).

One folder per repository under the cache, named by the resource's uid (``owner``), holds
one bare mirror per URL the repository uses, ``<hash of the URL>.git``, each with its lock
file; no two repositories share one (``docs/security.rst``). A ``file://`` URL that
resolves into the cache is refused. No GitPython here: folders, locks and paths only.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from overseer.core import git_source

logger = logging.getLogger("overseer.git")

_OWNER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$")


def mirror_path(cache_dir: Path, owner: str, url: str) -> Path:
    """The bare mirror kept for the repository ``owner`` (its uid) and ``url``."""
    if not _OWNER.match(owner):
        raise ValueError(f"{owner!r} cannot name a mirror folder: pass the repository's uid")
    return Path(cache_dir) / owner / f"{_url_key(url)}.git"


def remove_mirrors(cache_dir: Path, owner: str) -> None:
    """Remove every mirror of the repository ``owner`` (once it is deleted).

    Blocking (a fetch still running holds its mirror's lock): run it in a thread.
    """
    folder = mirror_path(cache_dir, owner, "").parent
    for mirror in folder.glob("*.git"):
        with locked(mirror):
            shutil.rmtree(mirror, ignore_errors=True)
    shutil.rmtree(folder, ignore_errors=True)
    logger.info("removed the mirrors of repository %s", owner)


def _url_key(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:32]


def check_local(url: str, cache_dir: Path) -> None:
    """Refuse a ``file://`` URL that resolves (symlinks and ``..`` too) into the cache."""
    candidates = git_source.local_candidates(git_source.local_path(url))
    resolved = [PurePosixPath(os.path.realpath(candidate)) for candidate in candidates]
    cache = PurePosixPath(os.path.realpath(cache_dir))
    git_source.check_local_path(url, resolved, cache)


def remove_other_mirrors(mirror: Path) -> None:
    """Drop the repository's mirrors of URLs it no longer uses (call with the lock held)."""
    for other in mirror.parent.glob("*.git"):
        if other != mirror:
            logger.info("removing mirror %s of a URL the repository no longer uses", other)
            shutil.rmtree(other, ignore_errors=True)
            other.with_suffix(".lock").unlink(missing_ok=True)


@contextlib.contextmanager
def locked(mirror: Path) -> Iterator[None]:
    """Hold an exclusive lock on one mirror, across threads and processes."""
    lock_path = mirror.with_suffix(".lock")
    with lock_path.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
