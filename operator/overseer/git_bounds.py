"""A repository's bounds, checked from sizes before anything is read (for :mod:`overseer.git`).

The git mirror's size on disk after a fetch; the sizes of a revision's files, from git
object headers: a job file over its bound is reported, unread; past the repository's
bounds a stalled error says what to do (``docs/security.rst``).
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from overseer import errors
from overseer.core import git_source

MIB = 1024 * 1024


def mirror_size(folder: Path) -> int:
    return sum(
        entry.stat().st_size
        for entry in folder.rglob("*")
        if entry.is_file() and not entry.is_symlink()
    )


def check_mirror(mirror: Path, source: git_source.Source, limits: git_source.Limits) -> None:
    size = mirror_size(mirror)
    if size > limits.max_mirror_bytes:
        shutil.rmtree(mirror, ignore_errors=True)
        raise errors.RepositoryTooLargeError(
            f"{git_source.display_url(source.url)} takes {size // MIB} MiB on the operator's "
            f"disk even fetched shallow (its git mirror may take {limits.max_mirror_bytes // MIB} "
            "MiB): keep job definitions in a smaller repository, or ask the operator's "
            "administrator to raise OVERSEER_REPOSITORY_MAX_MIRROR_SIZE"
        )


def check_sizes(
    source: git_source.Source,
    wanted: Mapping[str, Any],
    bin_files: list[tuple[str, int, Any]],
    limits: git_source.Limits,
) -> dict[str, int]:
    """The job files over the per-file bound, by size; raise past the repository's bounds.

    Sizes come from object headers (git cat-file --batch-check): nothing is read.
    """
    too_large = {p: int(b.size) for p, b in wanted.items() if b.size > limits.max_file_bytes}
    job_bytes = sum(int(b.size) for p, b in wanted.items() if p not in too_large)
    if job_bytes > limits.max_job_bytes:
        over = f"{job_bytes // MIB} MiB of job files (over {limits.max_job_bytes // MIB} MiB)"
        raise too_large_error(source, over)
    bin_bytes = sum(int(b.size) for _, _, b in bin_files)
    if bin_bytes > limits.max_bin_bytes:
        raise errors.BundleTooLargeError(
            f"bin/ holds {bin_bytes} bytes, over the {limits.max_bin_bytes} bytes one "
            "ConfigMap carries: move large files out of bin/ (into the job's image, say)"
        )
    return too_large


def too_large_error(source: git_source.Source, what: str) -> errors.RepositoryTooLargeError:
    return errors.RepositoryTooLargeError(
        f"{git_source.display_url(source.url)} holds {what} under spec.path: point spec.path "
        "at the folder that holds the job definitions, split them into several "
        "repositories, or ask the operator's administrator to raise the bound "
        "(docs/security.rst)"
    )
