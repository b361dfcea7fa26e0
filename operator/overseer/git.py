"""The git adapter: fetch one revision of a repository and read Overseer's files.

The only module that uses GitPython. Its API is synchronous (git runs as a
subprocess); async callers run :func:`fetch_revision` in a thread.

Each repository has its own bare mirror under ``cache_dir``, in a folder named by
the repository's uid (``owner``), never shared with another repository even on the
same URL; the first fetch creates it, later ones fetch into it, shallow
(``--depth 1``) where the server allows. No URL may read the cache itself: ``file://``
is refused unless allowed, and never reaches into ``cache_dir``.

Files are read from git objects, never from a checkout, and only once the tree's sizes
(read from object headers, not contents) fit the repository's :class:`Limits`: a job file
over its bound is reported in ``Revision.too_large``, unread; too many files, too many
bytes of job files or ``bin/``, or a mirror too large raise a stalled error.

Secrets never reach argv nor the URL: :mod:`overseer.git_environment` hands them to
git through files in a private folder, for one fetch; certificate and host-key checks
are never turned off. Every failure is raised as an
:class:`overseer.errors.GitError` subclass whose text is scrubbed.

The pure parts live in :mod:`overseer.core`: ``git_source`` checks the source and
credentials (its value types are re-exported here), ``git_failures`` maps git's
stderr to an error.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import shutil
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import git

from overseer import errors, git_bounds, git_environment, git_mirrors
from overseer.core import definitions, git_failures, git_source

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 120.0
BIN_DIR = "bin"

_MODE_EXECUTABLE = 0o111
_MODE_SYMLINK = 0o120000
_MODE_SUBMODULE = 0o160000
MIB = 1024 * 1024

# Where mirrors live, under the names callers have always used.
mirror_path = git_mirrors.mirror_path
remove_mirrors = git_mirrors.remove_mirrors
# The value types of the pure core, under the names callers have always used.
Source = git_source.Source
Credentials = git_source.Credentials
NO_CREDENTIALS = git_source.NO_CREDENTIALS
DEFAULT_HTTPS_USERNAME = git_source.DEFAULT_HTTPS_USERNAME
SCHEMES = git_source.SCHEMES
Limits = git_source.Limits
DEFAULT_LIMITS = git_source.DEFAULT_LIMITS


class BinFile(NamedTuple):
    """One file of the ``bin/`` folder: path inside bin/, permission bits, content."""

    path: str
    mode: int
    data: bytes


@dataclasses.dataclass(frozen=True)
class Revision:
    """What Overseer needs from one commit, read under the source's path.

    ``job_files`` maps each ``*.yml``/``*.yaml``/``*.json`` file, in any case (relative to the
    path; ``bin/``, ``overseer.yml`` and dot-files excluded) to its bytes;
    ``defaults`` is ``overseer.yml``'s bytes if the file exists; ``bin_files``
    lists ``bin/``'s files with 0o755 or 0o644 modes; ``ignored`` names entries
    that cannot be carried (symlinks, submodules) for reporting.
    """

    source: Source
    commit: str
    job_files: Mapping[str, bytes]
    defaults: bytes | None
    bin_files: tuple[BinFile, ...]
    ignored: tuple[str, ...] = ()
    too_large: Mapping[str, int] = dataclasses.field(default_factory=dict)


def fetch_revision(
    source: Source,
    credentials: Credentials | None,
    cache_dir: Path,
    *,
    owner: str,
    allow_file_urls: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    limits: Limits = DEFAULT_LIMITS,
) -> Revision:
    """Fetch ``source`` into the mirror of ``owner`` (the repository's uid) and read its files.

    ``allow_file_urls``: accept ``file://`` URLs (tests, development), outside
    ``cache_dir`` only. Blocking: run it in a thread. Raises an
    :class:`overseer.errors.GitError` subclass whose policy says whether the user must
    act or a retry may help.
    """
    credentials = credentials or NO_CREDENTIALS
    parsed = git_source.parse_source(source, credentials, allow_file_urls=allow_file_urls)
    if credentials.token and parsed.scheme == "http":
        logger.warning("sending a token over plain http to %s (allowInsecureHttp)", parsed.host)
    path = parsed.path
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    if parsed.scheme == "file":
        git_mirrors.check_local(source.url, cache_dir)
    mirror = git_mirrors.mirror_path(cache_dir, owner, source.url)
    mirror.parent.mkdir(exist_ok=True)
    secrets = credentials.secrets
    try:
        environment = git_environment.environment(source.url, parsed.scheme, credentials, timeout)
        with git_mirrors.locked(mirror), environment as env:
            git_mirrors.remove_other_mirrors(mirror)
            repo = _open_mirror(mirror)
            try:
                commit = _fetch(repo, source, env, timeout, credentials)
                if git_bounds.mirror_size(mirror) > limits.max_mirror_bytes:
                    # Shallow fetches pile up over time: start afresh before refusing.
                    repo.close()
                    shutil.rmtree(mirror)
                    repo = _open_mirror(mirror)
                    commit = _fetch(repo, source, env, timeout, credentials)
                    git_bounds.check_mirror(mirror, source, limits)
                return _read(repo, source, path, commit, limits)
            finally:
                repo.close()
    except errors.OverseerError:
        raise
    except Exception as exc:  # the adapter's boundary: no library error escapes unwrapped
        detail = errors.scrub(f"{type(exc).__name__}: {exc}", secrets)
        url = git_source.display_url(source.url)
        raise errors.GitError(
            f"reading {url} failed: {detail}; Overseer retries with backoff"
        ) from None


# --- the mirror -----------------------------------------------------------------------


def _open_mirror(mirror: Path) -> git.Repo:
    """Open (or create) the mirror; call with its lock held."""
    if mirror.exists():
        # Under our lock no git process works in the mirror: a *.lock file left by a
        # fetch killed at its timeout is stale, and would fail every later fetch.
        for stale in [*mirror.glob("*.lock"), *mirror.glob("refs/**/*.lock")]:
            logger.warning("removing stale lock %s", stale)
            stale.unlink(missing_ok=True)
        try:
            return git.Repo(mirror)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            logger.warning("mirror %s is damaged: recreating it", mirror)
            shutil.rmtree(mirror)
    logger.info("creating mirror %s", mirror)
    return git.Repo.init(mirror, bare=True)


def _local_ref(ref: str | None) -> str:
    return "refs/overseer/want/" + hashlib.sha256((ref or "HEAD").encode()).hexdigest()[:16]


def _fetch(
    repo: git.Repo,
    source: Source,
    env: dict[str, str],
    timeout: float,
    credentials: Credentials,
) -> str:
    """Bring the wanted commit into the mirror and return its SHA."""
    ref = source.ref
    # Even a commit already in the mirror is fetched: only the server can tell whether
    # the credentials (perhaps changed since) may still read it. git then transfers nothing.
    local = _local_ref(ref)
    remote_ref = ref or "HEAD"
    logger.info("fetching %s of %s (shallow)", remote_ref, git_source.display_url(source.url))
    try:
        _run_fetch(repo, env, timeout, ["--depth", "1"], source.url, f"+{remote_ref}:{local}")
    except git.GitCommandError as exc:
        failure = _classify(exc, source, timeout, credentials, env)
        if not (isinstance(failure, errors.GitRefNotFoundError) and git_source.looks_like_sha(ref)):
            raise failure from None
        logger.info("server refused a fetch by SHA: fetching all branches and tags")
        return _fetch_everything(repo, source, env, timeout, credentials)
    return _resolve(repo, local, source)


def _fetch_everything(
    repo: git.Repo,
    source: Source,
    env: dict[str, str],
    timeout: float,
    credentials: Credentials,
) -> str:
    assert source.ref
    unshallow = ["--unshallow"] if (Path(repo.git_dir) / "shallow").exists() else []
    try:
        _run_fetch(
            repo,
            env,
            timeout,
            unshallow,
            source.url,
            "+refs/heads/*:refs/overseer/heads/*",
            "+refs/tags/*:refs/overseer/tags/*",
        )
    except git.GitCommandError as exc:
        raise _classify(exc, source, timeout, credentials, env) from None
    return _resolve(repo, source.ref, source)


def _run_fetch(
    repo: git.Repo,
    env: dict[str, str],
    timeout: float,
    options: list[str],
    url: str,
    *refspecs: str,
) -> None:
    # "--" ends the options: a URL or ref written by a user never becomes an option.
    command = ["git", "fetch", "--no-tags", "--no-write-fetch-head", *options, "--", url]
    repo.git.execute([*command, *refspecs], env=env, kill_after_timeout=timeout)


def _resolve(repo: git.Repo, name: str, source: Source) -> str:
    try:
        sha: str = repo.git.rev_parse(
            "--verify", "--quiet", "--end-of-options", f"{name}^{{commit}}"
        )
    except git.GitCommandError:
        raise errors.GitRefNotFoundError(
            f"ref {source.ref!r} was not found in {git_source.display_url(source.url)}: "
            "set spec.ref to an existing branch, tag or commit"
        ) from None
    return sha.strip()


# --- reading files at a commit ------------------------------------------------------------


def _read(repo: git.Repo, source: Source, path: str, commit: str, limits: Limits) -> Revision:
    root = _root(repo, source, path, commit)
    prefix = f"{path}/" if path else ""
    job_files: dict[str, Any] = {}
    bin_files: list[tuple[str, int, Any]] = []
    ignored: list[str] = []
    defaults: Any = None
    count = 0

    def hidden(item: Any, _depth: int) -> bool:
        return bool(item.name.startswith("."))

    for item in root.traverse(prune=hidden):
        relative = item.path[len(prefix) :]
        if item.type == "tree":
            continue
        count += 1
        if count > limits.max_files:
            raise git_bounds.too_large_error(source, f"more than {limits.max_files} files")
        in_bin = relative.startswith(BIN_DIR + "/")
        if item.type != "blob" or stat.S_IFMT(item.mode) in (_MODE_SYMLINK, _MODE_SUBMODULE):
            if in_bin or relative == definitions.DEFAULTS_FILE or definitions.is_job_file(relative):
                ignored.append(relative)
            continue
        if in_bin:
            mode = 0o755 if item.mode & _MODE_EXECUTABLE else 0o644
            bin_files.append((relative[len(BIN_DIR) + 1 :], mode, item))
        elif relative == definitions.DEFAULTS_FILE:
            defaults = item
        elif definitions.is_job_file(relative):
            job_files[relative] = item
    named = {definitions.DEFAULTS_FILE: defaults} if defaults is not None else {}
    too_large = git_bounds.check_sizes(source, {**job_files, **named}, bin_files, limits)
    logger.info(
        "read commit %s of %s: %d job files, %d bin/ files%s%s",
        commit[:12],
        git_source.display_url(source.url),
        len(job_files),
        len(bin_files),
        f", ignored {len(ignored)}" if ignored else "",
        f", {len(too_large)} too large to read" if too_large else "",
    )
    unread = definitions.DEFAULTS_FILE in too_large
    return Revision(
        source=source,
        commit=commit,
        job_files={p: _blob_bytes(b) for p, b in sorted(job_files.items()) if p not in too_large},
        defaults=None if defaults is None or unread else _blob_bytes(defaults),
        bin_files=tuple(sorted(BinFile(p, m, _blob_bytes(b)) for p, m, b in bin_files)),
        ignored=tuple(sorted(ignored)),
        too_large=dict(sorted(too_large.items())),
    )


def _root(repo: git.Repo, source: Source, path: str, commit: str) -> Any:
    root: Any = repo.commit(commit).tree
    if path:
        try:
            root = root / path
        except KeyError:
            root = None
        if root is None or root.type != "tree":
            raise errors.GitPathNotFoundError(
                f"folder {path!r} does not exist at commit {commit[:12]} of "
                f"{git_source.display_url(source.url)}: fix spec.path, or add the folder to "
                "the repository"
            )
    return root


def _blob_bytes(blob: Any) -> bytes:
    data: bytes = blob.data_stream.read()
    return data


# --- errors: git's stderr to an Overseer error (the mapping is core.git_failures) ----------


def _classify(
    exc: git.GitCommandError,
    source: Source,
    timeout: float,
    credentials: Credentials,
    env: Mapping[str, str],
) -> errors.GitError:
    """Map a failed git command to an Overseer error with a scrubbed, actionable message."""
    stderr = exc.stderr if isinstance(exc.stderr, str) else str(exc.stderr or "")
    return git_failures.classify(
        stderr,
        url=source.url,
        ref=source.ref,
        timeout=timeout,
        secrets=credentials.secrets,
        credentials_given=credentials != NO_CREDENTIALS,
        ca_given=bool(credentials.ca_certificate),
        private_dir=env.get(git_environment.PRIVATE_DIR_VARIABLE),
    )
