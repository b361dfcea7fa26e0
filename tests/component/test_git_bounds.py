"""A hostile repository is bounded before its files are read (issue 11, item 6).

Sizes come from the tree (``git cat-file --batch-check``), never from reading a blob:
a file over the per-file bound is reported, not read, and the repository's file count,
job bytes, ``bin/`` bytes and mirror size are bounded as well.
"""

# ruff: noqa: F811 - pytest fixtures imported from tests.support.gitserver are redefined as parameters

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from overseer import errors
from overseer import git as ogit
from overseer.core import git_source
from tests.support.gitserver import Upstream, git, git_root, upstream  # noqa: F401 - fixtures

pytestmark = pytest.mark.timeout(300)

BIG = 160 * 1024 * 1024
OWNER = "repository-uid"

PROBE = """
import json, sys, tracemalloc
from pathlib import Path
from overseer import git as ogit
url, cache = sys.argv[1], Path(sys.argv[2])
tracemalloc.start()
revision = ogit.fetch_revision(ogit.Source(url), None, cache, owner="probe", allow_file_urls=True)
peak = tracemalloc.get_traced_memory()[1]
print(json.dumps({"peak": peak, "too_large": dict(getattr(revision, "too_large", {})),
                  "files": sorted(revision.job_files)}))
"""


def test_a_huge_job_file_is_reported_without_being_read(upstream: Upstream, tmp_path: Path) -> None:
    # Written and committed by git alone: this process never holds the file.
    line = b"- name: x\n" * 10_000
    with (upstream.work / "jobs" / "big.yml").open("wb") as out:
        for _ in range(BIG // len(line)):
            out.write(line)
    git("add", "jobs/big.yml", cwd=upstream.work)
    upstream.commit({}, "a huge job file")

    probe = subprocess.run(
        [sys.executable, "-c", PROBE, upstream.file_url, str(tmp_path / "cache")],
        capture_output=True,
        text=True,
        check=True,
    )
    seen = json.loads(probe.stdout.splitlines()[-1])

    assert seen["peak"] < 8 * 1024 * 1024, f"peak {seen['peak']} bytes"
    assert seen["too_large"] == {"jobs/big.yml": BIG // 100_000 * 100_000}
    assert seen["files"] == ["jobs/hello.yml"]


def fetch(url: str, cache: Path, limits: git_source.Limits) -> ogit.Revision:
    return ogit.fetch_revision(
        ogit.Source(url), None, cache, owner=OWNER, allow_file_urls=True, limits=limits
    )


def test_too_many_files_fail_the_sync_with_what_to_do(upstream: Upstream, tmp_path: Path) -> None:
    upstream.commit({f"jobs/j{i}.yml": f"- name: j{i}\n" for i in range(20)}, "20 files")
    with pytest.raises(errors.RepositoryTooLargeError) as caught:
        fetch(upstream.file_url, tmp_path / "cache", git_source.Limits(max_files=10))
    assert caught.value.stalled and caught.value.reason == "RepositoryTooLarge"
    assert "more than 10 files" in caught.value.message
    assert "spec.path" in caught.value.message


def test_job_files_over_the_total_fail_the_sync(upstream: Upstream, tmp_path: Path) -> None:
    upstream.commit({f"jobs/j{i}.yml": "#" * 4000 + "\n" for i in range(5)}, "20 kB")
    with pytest.raises(errors.RepositoryTooLargeError, match="job files"):
        fetch(upstream.file_url, tmp_path / "cache", git_source.Limits(max_job_bytes=10_000))


def test_bin_over_its_bound_fails_before_it_is_read(upstream: Upstream, tmp_path: Path) -> None:
    upstream.commit({"bin/tool": ("x" * 50_000, 0o755)}, "a big tool")
    with pytest.raises(errors.BundleTooLargeError, match="bin/"):
        fetch(upstream.file_url, tmp_path / "cache", git_source.Limits(max_bin_bytes=10_000))


def test_a_mirror_over_its_bound_is_removed_and_refused(upstream: Upstream, tmp_path: Path) -> None:
    upstream.commit({"data/blob.bin": os.urandom(1_000_000)}, "1 MB that does not compress")
    cache = tmp_path / "cache"
    with pytest.raises(errors.RepositoryTooLargeError, match="mirror"):
        fetch(upstream.file_url, cache, git_source.Limits(max_mirror_bytes=100_000))
    assert not ogit.mirror_path(cache, OWNER, upstream.file_url).exists()
    assert fetch(upstream.file_url, cache, git_source.Limits()).job_files
