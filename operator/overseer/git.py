"""The git adapter: fetch one revision of a repository and read Overseer's files.

The only module that uses GitPython. Its API is synchronous (git runs as a
subprocess); async callers run :func:`fetch_revision` in a thread.

One bare mirror per repository URL lives under ``cache_dir``; the first fetch
creates it, later ones fetch into it, shallow (``--depth 1``) where the server
allows. Files are read from git objects, never from a checkout.

Secrets never reach argv (visible in ``/proc`` and quoted by GitPython's
exceptions) nor the URL: an HTTPS token is answered by a ``GIT_ASKPASS`` script
reading a 0600 file, an SSH key is a 0600 file named by ``GIT_SSH_COMMAND``, both
in a private temporary folder removed after each call. A private CA for HTTPS
goes there too, named by ``GIT_SSL_CAINFO`` for that one fetch; certificate and
host-key checks are never turned off. Every failure is raised as an
:class:`overseer.errors.GitError` subclass whose text is scrubbed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import logging
import os
import posixpath
import re
import shlex
import shutil
import stat
import tempfile
import urllib.parse
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import git

from overseer import errors

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 120.0
DEFAULTS_FILE = "overseer.yml"
BIN_DIR = "bin"
JOB_SUFFIXES = (".yml", ".yaml", ".json")
DEFAULT_HTTPS_USERNAME = "x-access-token"
SCHEMES = ("https", "http", "ssh", "git", "file")

_SCP_LIKE = re.compile(r"^(?P<user>[A-Za-z0-9._-]+@)?(?P<host>[A-Za-z0-9.-]+):(?P<path>[^/].*)$")
_HEX_REF = re.compile(r"^[0-9a-f]{7,40}$")
_BAD_REF = re.compile(r"(^-)|(\.\.)|[\s:~^?*\[\\]|(@\{)|(\.lock$)|(/$)|(^/)|(//)")
_MODE_EXECUTABLE = 0o111
_MODE_SYMLINK = 0o120000
_MODE_SUBMODULE = 0o160000
_PEM_CERTIFICATE = "-----BEGIN CERTIFICATE-----"
# The environment variable that names the fetch's private folder (see _environment).
_PRIVATE_DIR_VARIABLE = "XDG_CONFIG_HOME"


@dataclasses.dataclass(frozen=True)
class Source:
    """Where job definitions come from: a git URL, a ref (None: the remote HEAD), a folder."""

    url: str
    ref: str | None = None
    path: str = ""


@dataclasses.dataclass(frozen=True)
class Credentials:
    """How to authenticate: an HTTPS token, or an SSH key with the server's known_hosts.

    ``ca_certificate`` (PEM) is the CA an HTTPS server's certificate must chain
    to, in place of the system's CAs; it is public, not a secret. ``repr`` hides
    every secret, so a Credentials in a log line or a traceback leaks nothing.
    """

    token: str | None = dataclasses.field(default=None, repr=False)
    username: str | None = None
    ssh_private_key: str | None = dataclasses.field(default=None, repr=False)
    known_hosts: str | None = None
    ca_certificate: str | None = dataclasses.field(default=None, repr=False)

    @classmethod
    def from_secret_data(cls, data: Mapping[str, str | bytes]) -> Credentials:
        """Read a Secret's decoded ``data``.

        Keys: ``token`` (or ``password``, as in ``kubernetes.io/basic-auth``) with an
        optional ``username`` and an optional ``ca.crt`` (alias ``caFile``) for a
        server whose certificate a private CA signed; or ``ssh-privatekey`` (as in
        ``kubernetes.io/ssh-auth``; aliases ``sshPrivateKey``, ``identity``) with
        ``known_hosts`` (alias ``knownHosts``).
        """

        def text(*keys: str) -> str | None:
            for key in keys:
                value = data.get(key)
                if value is not None:
                    return value.decode() if isinstance(value, bytes) else value
            return None

        credentials = cls(
            token=text("token", "password"),
            username=text("username"),
            ssh_private_key=text("ssh-privatekey", "sshPrivateKey", "identity"),
            known_hosts=text("known_hosts", "knownHosts"),
            ca_certificate=text("ca.crt", "caFile"),
        )
        if credentials.token and credentials.ssh_private_key:
            raise errors.GitInvalidCredentialsError(
                "the credentials Secret holds both a token and an SSH key: keep only the one "
                "that matches the repository URL (token for https://, key for ssh://)"
            )
        if not (
            credentials.token
            or credentials.ssh_private_key
            or credentials.known_hosts
            or credentials.ca_certificate
        ):
            raise errors.GitInvalidCredentialsError(
                "the credentials Secret has none of the keys token, password, ssh-privatekey, "
                "known_hosts, ca.crt: see docs/repositories.rst for its format"
            )
        if credentials.ca_certificate is not None and (
            _PEM_CERTIFICATE not in credentials.ca_certificate
        ):
            raise errors.GitInvalidCredentialsError(
                "ca.crt in the credentials Secret is not a PEM certificate: put the CA "
                f"certificate there as text starting with {_PEM_CERTIFICATE}"
            )
        return credentials

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every text that must never appear in a message or a log line."""
        found = [s for s in (self.token, self.ssh_private_key) if s]
        if self.token:
            username = self.username or DEFAULT_HTTPS_USERNAME
            found.append(errors.basic_auth_value(username, self.token))
        return tuple(found)


NO_CREDENTIALS = Credentials()


class BinFile(NamedTuple):
    """One file of the ``bin/`` folder: path inside bin/, permission bits, content."""

    path: str
    mode: int
    data: bytes


@dataclasses.dataclass(frozen=True)
class Revision:
    """What Overseer needs from one commit, read under the source's path.

    ``job_files`` maps each ``*.yml``/``*.yaml``/``*.json`` file (relative to the
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


def mirror_path(cache_dir: Path, url: str) -> Path:
    """The bare mirror kept for ``url`` under ``cache_dir``."""
    return Path(cache_dir) / f"{_url_key(url)}.git"


def fetch_revision(
    source: Source,
    credentials: Credentials | None,
    cache_dir: Path,
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> Revision:
    """Fetch ``source`` into its mirror under ``cache_dir`` and read its files.

    Blocking: run it in a thread. Raises an :class:`overseer.errors.GitError`
    subclass whose policy says whether the user must act or a retry may help.
    """
    credentials = credentials or NO_CREDENTIALS
    path = _validate(source, credentials)
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    mirror = mirror_path(cache_dir, source.url)
    secrets = credentials.secrets
    try:
        with _locked(mirror), _environment(source.url, credentials, timeout) as env:
            repo = _open_mirror(mirror)
            try:
                commit = _fetch(repo, source, env, timeout, credentials)
                return _read(repo, source, path, commit)
            finally:
                repo.close()
    except errors.GitError:
        raise
    except Exception as exc:  # the adapter's boundary: no library error escapes unwrapped
        detail = errors.scrub(f"{type(exc).__name__}: {exc}", secrets)
        raise errors.GitError(
            f"reading {_display(source.url)} failed: {detail}; Overseer retries with backoff"
        ) from None


# --- validation ---------------------------------------------------------------------


def _validate(source: Source, credentials: Credentials) -> str:
    scheme, host = _scheme_and_host(source.url)
    if source.ref is not None and (not source.ref or _BAD_REF.search(source.ref)):
        raise errors.GitInvalidSourceError(
            f"ref {source.ref!r} is not a valid branch, tag or commit name: fix spec.ref"
        )
    if credentials.token and scheme not in ("https", "http"):
        raise errors.GitInvalidCredentialsError(
            f"the credentials Secret holds a token but the URL uses {scheme}: tokens work only "
            "with https:// URLs; use ssh-privatekey and known_hosts for SSH"
        )
    if credentials.ssh_private_key and scheme != "ssh":
        raise errors.GitInvalidCredentialsError(
            f"the credentials Secret holds an SSH key but the URL uses {scheme}: use an "
            "ssh:// or user@host:path URL, or a token for https://"
        )
    if credentials.ca_certificate and scheme != "https":
        raise errors.GitInvalidCredentialsError(
            f"the credentials Secret holds a ca.crt but the URL uses {scheme}: a CA "
            "certificate is only used for https:// URLs; remove it, or use https://"
        )
    if scheme == "ssh" and not (credentials.known_hosts or "").strip():
        raise errors.GitHostKeyError(
            f"no known_hosts given for SSH host {host}: add the server's host key lines "
            "(checked out of band) as known_hosts in the credentials Secret; Overseer never "
            "trusts an unknown host key"
        )
    if credentials.token and scheme == "http":
        logger.warning("sending a token over plain http to %s: prefer https", host)
    return _normalize_path(source.path)


def _scheme_and_host(url: str) -> tuple[str, str]:
    invalid = errors.GitInvalidSourceError(
        f"URL {_display(url)!r} is not a git URL Overseer accepts: use https://host/repo.git "
        "or ssh://git@host/repo.git (or git@host:repo.git), without credentials in it"
    )
    if not url or url.startswith("-") or any(c.isspace() or ord(c) < 32 for c in url):
        raise invalid
    match = _SCP_LIKE.match(url)
    if match and "://" not in url:
        return "ssh", match.group("host")
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in SCHEMES or (parsed.scheme != "file" and not parsed.hostname):
        raise invalid
    if parsed.password is not None:
        raise errors.GitInvalidSourceError(
            f"URL {_display(url)!r} holds a password: remove it from the URL and put the "
            "token in the credentials Secret instead"
        )
    return parsed.scheme, parsed.hostname or "localhost"


def _normalize_path(path: str) -> str:
    cleaned = posixpath.normpath("/" + path.strip()).lstrip("/")
    if cleaned in ("", "."):
        return ""
    if ".." in path.split("/") or "\\" in path:
        raise errors.GitInvalidSourceError(
            f"path {path!r} must be a folder inside the repository, without '..'"
        )
    return cleaned


def _display(url: str) -> str:
    return errors.scrub(url, ())


def _url_key(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:32]


# --- environment: credentials without argv ------------------------------------------


@contextlib.contextmanager
def _environment(url: str, credentials: Credentials, timeout: float) -> Iterator[dict[str, str]]:
    """The environment git runs in; secrets in a private folder removed on exit."""
    if url.startswith("https://") and "GIT_SSL_NO_VERIFY" in os.environ:
        raise errors.GitCertificateError(
            "the operator's environment sets GIT_SSL_NO_VERIFY, which would turn TLS "
            f"certificate checks off: Overseer refuses to fetch {_display(url)} with it. Remove "
            "the variable from the operator's Deployment; give a private CA as ca.crt in the "
            "repository's credentials Secret instead"
        )
    private = Path(tempfile.mkdtemp(prefix="overseer-git-"))
    try:
        private.chmod(0o700)
        config = {
            "credential.helper": "",
            "http.sslVerify": "true",
            "protocol.allow": "never",
            **{f"protocol.{scheme}.allow": "always" for scheme in SCHEMES},
            "core.hooksPath": os.devnull,
            "gc.autoDetach": "false",
            "http.lowSpeedLimit": "1",
            "http.lowSpeedTime": str(max(1, int(timeout))),
        }
        env = {
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            # "-c" settings inherited from the operator's environment would win over ours.
            "GIT_CONFIG_PARAMETERS": "",
            _PRIVATE_DIR_VARIABLE: str(private),
            "GIT_ASKPASS": "",
            "SSH_ASKPASS": "",
            "GIT_SSH_COMMAND": _ssh_command(private, credentials, timeout),
            "GIT_SSH_VARIANT": "ssh",
        }
        if credentials.token:
            env["GIT_ASKPASS"] = str(_askpass(private, credentials))
        if credentials.ca_certificate:
            # The variable, not http.sslCAInfo: git lets an inherited GIT_SSL_CAINFO win.
            ca_file = private / "ca.crt"
            env["GIT_SSL_CAINFO"] = str(_write_private(ca_file, credentials.ca_certificate))
        env["GIT_CONFIG_COUNT"] = str(len(config))
        for index, (key, value) in enumerate(config.items()):
            env[f"GIT_CONFIG_KEY_{index}"] = key
            env[f"GIT_CONFIG_VALUE_{index}"] = value
        logger.debug("git environment for %s prepared in %s", _display(url), private)
        yield env
    finally:
        shutil.rmtree(private, ignore_errors=True)


def _write_private(path: Path, content: str, mode: int = 0o600) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w") as handle:
        handle.write(content)
    return path


def _askpass(private: Path, credentials: Credentials) -> Path:
    assert credentials.token
    username = credentials.username or DEFAULT_HTTPS_USERNAME
    user_file = _write_private(private / "username", username)
    token_file = _write_private(private / "token", credentials.token.strip())
    script = (
        "#!/bin/sh\n"
        'case "$1" in\n'
        f"  Username*) exec cat {shlex.quote(str(user_file))} ;;\n"
        f"  *) exec cat {shlex.quote(str(token_file))} ;;\n"
        "esac\n"
    )
    return _write_private(private / "askpass", script, 0o700)


def _ssh_command(private: Path, credentials: Credentials, timeout: float) -> str:
    known_hosts = _write_private(private / "known_hosts", (credentials.known_hosts or "") + "\n")
    options = ["-F", os.devnull]
    for option in (
        "IdentitiesOnly=yes",
        "IdentityAgent=none",
        f"UserKnownHostsFile={known_hosts}",
        f"GlobalKnownHostsFile={os.devnull}",
        "StrictHostKeyChecking=yes",  # fail closed: an unknown or changed host key is refused
        "UpdateHostKeys=no",
        "CheckHostIP=no",
        "BatchMode=yes",
        f"ConnectTimeout={max(1, int(timeout))}",
        "ServerAliveInterval=15",
    ):
        options += ["-o", option]
    if credentials.ssh_private_key:
        key = credentials.ssh_private_key.replace("\r\n", "\n").strip() + "\n"
        options += ["-i", str(_write_private(private / "identity", key))]
    else:
        options += ["-o", "IdentityFile=none"]
    return " ".join(shlex.quote(part) for part in ["ssh", *options])


# --- the mirror -----------------------------------------------------------------------


@contextlib.contextmanager
def _locked(mirror: Path) -> Iterator[None]:
    """Hold an exclusive lock on one mirror, across threads and processes."""
    lock_path = mirror.with_suffix(".lock")
    with lock_path.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


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
    # Even a commit already in the mirror is fetched: the mirror is shared by every
    # repository on this URL, whatever its credentials, and only the server can tell
    # whether these credentials may read it. git then transfers nothing.
    local = _local_ref(ref)
    remote_ref = ref or "HEAD"
    logger.info("fetching %s of %s (shallow)", remote_ref, _display(source.url))
    try:
        _run_fetch(repo, env, timeout, ["--depth", "1"], source.url, f"+{remote_ref}:{local}")
    except git.GitCommandError as exc:
        failure = _classify(exc, source, timeout, credentials, env)
        if not (isinstance(failure, errors.GitRefNotFoundError) and ref and _HEX_REF.match(ref)):
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
            f"ref {source.ref!r} was not found in {_display(source.url)}: set spec.ref to an "
            "existing branch, tag or commit"
        ) from None
    return sha.strip()


# --- reading files at a commit ------------------------------------------------------------


def _read(repo: git.Repo, source: Source, path: str, commit: str) -> Revision:
    root: Any = repo.commit(commit).tree
    if path:
        try:
            root = root / path
        except KeyError:
            root = None
        if root is None or root.type != "tree":
            raise errors.GitPathNotFoundError(
                f"folder {path!r} does not exist at commit {commit[:12]} of "
                f"{_display(source.url)}: fix spec.path, or add the folder to the repository"
            )
    prefix = f"{path}/" if path else ""
    job_files: dict[str, bytes] = {}
    bin_files: list[BinFile] = []
    ignored: list[str] = []
    defaults: bytes | None = None

    def hidden(item: Any, _depth: int) -> bool:
        return bool(item.name.startswith("."))

    for item in root.traverse(prune=hidden):
        relative = item.path[len(prefix) :]
        if item.type == "tree":
            continue
        in_bin = relative.startswith(BIN_DIR + "/")
        if item.type != "blob" or stat.S_IFMT(item.mode) in (_MODE_SYMLINK, _MODE_SUBMODULE):
            if in_bin or relative.endswith(JOB_SUFFIXES):
                ignored.append(relative)
            continue
        if in_bin:
            mode = 0o755 if item.mode & _MODE_EXECUTABLE else 0o644
            bin_files.append(BinFile(relative[len(BIN_DIR) + 1 :], mode, _blob_bytes(item)))
        elif relative == DEFAULTS_FILE:
            defaults = _blob_bytes(item)
        elif relative.endswith(JOB_SUFFIXES):
            job_files[relative] = _blob_bytes(item)
    logger.info(
        "read commit %s of %s: %d job files, %d bin/ files%s",
        commit[:12],
        _display(source.url),
        len(job_files),
        len(bin_files),
        f", ignored {len(ignored)}" if ignored else "",
    )
    return Revision(
        source=source,
        commit=commit,
        job_files=dict(sorted(job_files.items())),
        defaults=defaults,
        bin_files=tuple(sorted(bin_files)),
        ignored=tuple(sorted(ignored)),
    )


def _blob_bytes(blob: Any) -> bytes:
    data: bytes = blob.data_stream.read()
    return data


# --- errors ---------------------------------------------------------------------------------

_AUTH = (
    "authentication failed",
    "could not read username",
    "could not read password",
    "terminal prompts disabled",
    "permission denied (publickey",
    "permission denied, please try again",
    "invalid username or password",
    "http 401",
    "the requested url returned error: 401",
    "the requested url returned error: 403",
    "access denied",
)
_HOST_KEY = (
    "host key verification failed",
    "remote host identification has changed",
    "no matching host key type",
    "host key for",
)
_NOT_FOUND_REPO = (
    "repository not found",
    "does not appear to be a git repository",
    "the requested url returned error: 404",
    "no such repository",
    "not a git repository",
)
_NOT_FOUND_REF = (
    "couldn't find remote ref",
    "not our ref",
    "unadvertised object",
    "no such ref",
    "remote error: upload-pack: not our ref",
)
_CERTIFICATE = (
    "server certificate verification failed",
    "ssl certificate problem",
    "certificate verify failed",
    "certificate subject name",
    "no alternative certificate subject name",
    "does not match target host name",
)
_UNREACHABLE = (
    "could not resolve host",
    "could not resolve hostname",
    "connection refused",
    "connection timed out",
    "connection reset",
    "failed to connect",
    "network is unreachable",
    "no route to host",
    "unable to connect",
    "temporary failure in name resolution",
    "operation timed out",
    "early eof",
    "the remote end hung up unexpectedly",
    "the requested url returned error: 5",
    "ssl",
)


# Checked in order: the first class whose markers appear in git's stderr wins.
_CLASSIFICATION: tuple[tuple[tuple[str, ...], type[errors.GitError], str], ...] = (
    (
        _HOST_KEY,
        errors.GitHostKeyError,
        "the SSH host key of {url} is not in the given known_hosts: put the server's current "
        "host key (checked out of band) in the Secret's known_hosts ({detail})",
    ),
    (
        _CERTIFICATE,
        errors.GitCertificateError,
        "the TLS certificate of {url} could not be verified ({detail}): if a private CA "
        "signed it, put that CA's certificate (PEM) in the credentials Secret as ca.crt and "
        "name the Secret in spec.secretRef; if it names another host, fix spec.url. Overseer "
        "never turns certificate checks off",
    ),
    (
        _AUTH,
        errors.GitAuthError,
        "the git server refused the credentials for {url}: check that the credentials Secret "
        "holds a valid token or SSH key with read access ({detail})",
    ),
    (
        _NOT_FOUND_REF,
        errors.GitRefNotFoundError,
        "ref {ref!r} was not found in {url}: set spec.ref to an existing branch, tag or commit "
        "({detail})",
    ),
    (
        _NOT_FOUND_REPO,
        errors.GitRepositoryNotFoundError,
        "no git repository at {url}: check spec.url, and for a private repository that the "
        "credentials can read it ({detail})",
    ),
    (
        _UNREACHABLE,
        errors.GitUnreachableError,
        "cannot reach the git server of {url}: {detail}; Overseer retries with backoff",
    ),
)
_WRONG_CA_MESSAGE = (
    "the TLS certificate of {url} could not be verified with the ca.crt of the credentials "
    "Secret ({detail}): put the certificate of the CA that signed the server's certificate "
    "in ca.crt; if the certificate names another host, fix spec.url"
)
_NO_CREDENTIALS_MESSAGE = (
    "{url} asks for credentials and none are configured: create a Secret with a token or an "
    "SSH key and name it in spec.secretRef ({detail})"
)


def _classify(
    exc: git.GitCommandError,
    source: Source,
    timeout: float,
    credentials: Credentials,
    env: Mapping[str, str],
) -> errors.GitError:
    """Map a failed git command to an Overseer error with a scrubbed, actionable message."""
    stderr = exc.stderr if isinstance(exc.stderr, str) else str(exc.stderr or "")
    lowered = stderr.lower()
    detail = errors.scrub(_last_lines(stderr), credentials.secrets)
    # git quotes files of the private folder (CAfile, known_hosts): a random name would
    # make each retry's message differ, and each difference is a status write and an Event.
    private = env.get(_PRIVATE_DIR_VARIABLE)
    if private:
        detail = detail.replace(private, "<credentials>")
    fields = {"url": _display(source.url), "ref": source.ref or "HEAD", "detail": detail}
    if "did not complete in" in lowered and "timeout" in lowered:
        return errors.GitTimeoutError(
            f"fetching {fields['url']} did not finish within {timeout:g}s; Overseer retries "
            "with backoff"
        )
    for markers, error_class, template in _CLASSIFICATION:
        if any(marker in lowered for marker in markers):
            if error_class is errors.GitAuthError and credentials == NO_CREDENTIALS:
                return error_class(_NO_CREDENTIALS_MESSAGE.format(**fields))
            if error_class is errors.GitCertificateError and credentials.ca_certificate:
                return error_class(_WRONG_CA_MESSAGE.format(**fields))
            return error_class(template.format(**fields))
    return errors.GitError(
        "fetching {url} failed: {detail}; Overseer retries with backoff".format(**fields)
    )


def _last_lines(text: str, count: int = 4) -> str:
    # GitPython wraps stderr as "\n  stderr: '<text>'": unwrap it once.
    text = text.strip()
    if text.startswith("stderr: '") and text.endswith("'"):
        text = text[len("stderr: '") : -1]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(lines[-count:]) or "no details from git"
