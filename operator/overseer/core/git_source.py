"""Where a repository's files come from, and with which credentials: parsed and checked.

Pure: the :class:`Source` and :class:`Credentials` value types, and the checks
:mod:`overseer.git` makes before it runs git. A URL must be one git accepts
through a scheme Overseer allows (``https``, ``http``, ``ssh``, ``git``, ``file``,
or scp-like ``user@host:path``), never an option and never holding a password; a
ref must be a plain branch, tag or commit name; a path must stay inside the
repository; the credentials must fit the URL's scheme (a token for HTTP(S), an SSH
key for SSH, a CA only for HTTPS) and SSH always needs ``known_hosts``. Every
refusal is an :class:`overseer.errors.GitError` subclass with a message that says
what to fix.

Repository authors are trusted with their own namespace only (``docs/security.rst``),
so three more checks keep one repository from another's data and credentials:
``file://`` URLs read the operator's own disk and are refused unless the operator is
started with ``OVERSEER_GIT_ALLOW_FILE_URLS`` (tests, development), and even then
never into the operator's git cache (:func:`check_local_path`); a credentials
Secret must be marked for Overseer with :data:`CREDENTIALS_LABEL`
(:func:`check_marked`); a token goes over plain ``http://`` only when the repository
says ``allowInsecureHttp``.
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from pathlib import PurePosixPath
from typing import NamedTuple

from overseer import errors
from overseer.core import bundle, documents

DEFAULT_HTTPS_USERNAME = "x-access-token"
SCHEMES = ("https", "http", "ssh", "git", "file")
CREDENTIALS_LABEL = "overseer.dev/git-credentials"
"""The label (value ``"true"``) that marks a Secret as git credentials Overseer may send."""
FILE_URLS_SETTING = "OVERSEER_GIT_ALLOW_FILE_URLS"
"""The operator setting that lets repositories use ``file://`` URLs (tests, development)."""

_SCP_LIKE = re.compile(r"^(?P<user>[A-Za-z0-9._-]+@)?(?P<host>[A-Za-z0-9.-]+):(?P<path>[^/].*)$")
_HEX_REF = re.compile(r"^[0-9a-f]{7,40}$")
_BAD_REF = re.compile(r"(^-)|(\.\.)|[\s:~^?*\[\\]|(@\{)|(\.lock$)|(/$)|(^/)|(//)")
_PEM_CERTIFICATE = "-----BEGIN CERTIFICATE-----"


@dataclasses.dataclass(frozen=True)
class Source:
    """Where job definitions come from: a git URL, a ref (None: the remote HEAD), a folder.

    ``allow_insecure_http``: the repository's ``spec.allowInsecureHttp``, which lets a
    token go to an ``http://`` URL.
    """

    url: str
    ref: str | None = None
    path: str = ""
    allow_insecure_http: bool = False


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

MIB = 1024 * 1024


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one repository may hold; checked from the tree's sizes before a file is read.

    A repository is written by its authors, whom the operator serves but does not trust
    with its memory or disk (``docs/security.rst``).
    """

    max_file_bytes: int = documents.MAX_BYTES
    """A job file or ``overseer.yml`` over this is reported as that file's error, unread."""
    max_files: int = 10_000
    """Files under the repository's path (hidden folders aside)."""
    max_job_bytes: int = 32 * MIB
    """Job files and ``overseer.yml`` together."""
    max_bin_bytes: int = bundle.MAX_BUNDLE_BYTES
    """``bin/`` together: what one ConfigMap carries."""
    max_mirror_bytes: int = 256 * MIB
    """The repository's git mirror on the operator's disk, after a (shallow) fetch."""


DEFAULT_LIMITS = Limits()


class ParsedSource(NamedTuple):
    """A source that passed every check: its URL's scheme and host, its cleaned path."""

    scheme: str
    host: str
    path: str


def parse_source(
    source: Source, credentials: Credentials, *, allow_file_urls: bool = False
) -> ParsedSource:
    """Check ``source`` and ``credentials`` together, before any git command runs.

    Raises :class:`overseer.errors.GitInvalidSourceError` for a URL, ref or path that
    cannot be used (:class:`overseer.errors.GitSourceNotAllowedError` for ``file://``
    unless ``allow_file_urls``), :class:`overseer.errors.GitInvalidCredentialsError`
    for credentials that do not fit the URL's scheme
    (:class:`overseer.errors.GitInsecureTransportError` for a token over ``http://``
    the source does not allow), and :class:`overseer.errors.GitHostKeyError` for SSH
    without ``known_hosts``.
    """
    scheme, host = parse_url(source.url)
    if scheme == "file" and not allow_file_urls:
        raise errors.GitSourceNotAllowedError(
            f"URL {display_url(source.url)!r} reads the operator's own disk: file:// URLs "
            f"are refused unless the operator runs with {FILE_URLS_SETTING}=true (tests "
            "and development only); serve the repository over https://, ssh:// or git://"
        )
    if scheme == "file":
        local_path(source.url)
    if source.ref is not None and (not source.ref or _BAD_REF.search(source.ref)):
        raise errors.GitInvalidSourceError(
            f"ref {source.ref!r} is not a valid branch, tag or commit name: fix spec.ref"
        )
    _check_credentials(scheme, host, source, credentials)
    return ParsedSource(scheme, host, parse_path(source.path))


def _check_credentials(scheme: str, host: str, source: Source, credentials: Credentials) -> None:
    if credentials.token and scheme not in ("https", "http"):
        raise errors.GitInvalidCredentialsError(
            f"the credentials Secret holds a token but the URL uses {scheme}: tokens work only "
            "with https:// URLs; use ssh-privatekey and known_hosts for SSH"
        )
    if credentials.token and scheme == "http" and not source.allow_insecure_http:
        raise errors.GitInsecureTransportError(
            f"the credentials Secret holds a token and the URL {display_url(source.url)!r} "
            "uses plain http://, where anyone on the way can read it: use https://, or set "
            "spec.allowInsecureHttp: true if the server is only reachable over a network "
            "you trust"
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


def local_path(url: str) -> PurePosixPath:
    """The absolute path git reads for a ``file://`` URL: percent-decoded, ``..`` kept.

    git ignores a ``file://`` URL's host and reads the path after it, so only an empty
    host or ``localhost`` is accepted, and the path must be absolute.
    """
    parsed = urllib.parse.urlsplit(url)
    path = urllib.parse.unquote(parsed.path)
    if parsed.netloc not in ("", "localhost") or not path.startswith("/") or "\0" in path:
        raise errors.GitInvalidSourceError(
            f"URL {display_url(url)!r} is not a local path Overseer accepts: write "
            "file:///absolute/path/to/repo.git"
        )
    return PurePosixPath(path)


def local_candidates(path: PurePosixPath) -> tuple[PurePosixPath, ...]:
    """The paths git may open for ``path``: itself, then ``path.git`` (and inside them)."""
    return (path, path.with_name(path.name + ".git"))


def check_local_path(url: str, resolved: Iterable[PurePosixPath], cache_dir: PurePosixPath) -> None:
    """Refuse a ``file://`` URL that reaches into the operator's git cache.

    ``resolved``: :func:`local_candidates` of the URL's path with every symlink and
    ``..`` resolved, and ``cache_dir`` resolved the same way. Every repository has its
    own mirror there, and a mirror holds its repository's files (a private one's
    included) under refs Overseer names: reading one through ``file://`` would hand
    another repository's files to whoever wrote this URL.
    """
    for path in resolved:
        if path == cache_dir or cache_dir in path.parents:
            raise errors.GitSourceNotAllowedError(
                f"URL {display_url(url)!r} points into the operator's git cache, which holds "
                "other repositories' mirrors: a repository may only be read from its own "
                "server; fix spec.url"
            )


def check_marked(secret_name: str, namespace: str, labels: Mapping[str, str]) -> None:
    """Refuse a Secret not labelled :data:`CREDENTIALS_LABEL` ``"true"``.

    ``secretRef`` may name any Secret of the namespace, and the URL is the repository
    author's: without the mark, a Secret meant for something else (a registry's
    password, another service's token) could be sent to a server of the author's choosing.
    """
    if labels.get(CREDENTIALS_LABEL) != "true":
        raise errors.GitCredentialsNotMarkedError(
            f"Secret {secret_name} is not marked as git credentials for Overseer, which sends "
            f"only such Secrets to a git server: add the label {CREDENTIALS_LABEL}=true "
            f"(kubectl -n {namespace} label secret {secret_name} {CREDENTIALS_LABEL}=true)"
        )


def parse_url(url: str) -> tuple[str, str]:
    """The scheme and host of a git URL Overseer accepts (scp-like ``host:path`` is ssh)."""
    invalid = errors.GitInvalidSourceError(
        f"URL {display_url(url)!r} is not a git URL Overseer accepts: use https://host/repo.git "
        "or ssh://git@host/repo.git (or git@host:repo.git), without credentials in it"
    )
    if not url or url.startswith("-") or any(c.isspace() or ord(c) < 32 for c in url):
        raise invalid
    if "::" in url.split("/", 1)[0]:
        # git's <transport>::<address> syntax (ext::, fd::) runs helpers, never a plain fetch.
        raise invalid
    match = _SCP_LIKE.match(url)
    if match and "://" not in url:
        return "ssh", match.group("host")
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in SCHEMES or (parsed.scheme != "file" and not parsed.hostname):
        raise invalid
    if parsed.password is not None:
        raise errors.GitInvalidSourceError(
            f"URL {display_url(url)!r} holds a password: remove it from the URL and put the "
            "token in the credentials Secret instead"
        )
    return parsed.scheme, parsed.hostname or "localhost"


def parse_path(path: str) -> str:
    """A folder inside the repository, cleaned: no leading or trailing slash, "" for the root."""
    if ".." in path.split("/") or "\\" in path:
        raise errors.GitInvalidSourceError(
            f"path {path!r} must be a folder inside the repository, without '..'"
        )
    cleaned = posixpath.normpath("/" + path.strip()).lstrip("/")
    return "" if cleaned in ("", ".") else cleaned


def display_url(url: str) -> str:
    """``url`` as it may appear in a message or a log line: any password in it hidden."""
    return errors.scrub(url, ())


def looks_like_sha(ref: str | None) -> bool:
    """Whether ``ref`` may be a commit SHA (7 to 40 lower-case hex digits)."""
    return bool(ref and _HEX_REF.match(ref))
