"""Real git servers on loopback for tests: no stub of git anywhere.

What is here, from the bottom up:

- :class:`Upstream`: a bare repository plus a work tree that commits into it.
  ``commit({"jobs/a.yml": "...", "bin/run": ("#!/bin/sh\\n", 0o755)})`` writes,
  commits and pushes, returning the new SHA; ``tag``, ``branch``.
- servers, each a context manager usable with any pytest scope or none:
  :func:`serve_git_daemon` (``git://``), :func:`serve_http` (smart HTTP through
  ``git http-backend``, requiring a token as Basic password or Bearer),
  :func:`serve_sshd` (an ``sshd`` with its own host key, config and client key;
  needs root and openssh-server, otherwise the test is skipped).
- failure helpers: :func:`closed_port` (nothing listens: connection refused) and
  :func:`serve_silence` (accepts connections, never answers: a timeout).
- pytest fixtures wrapping them per test: ``git_root``, ``upstream``,
  ``git_daemon``, ``http_git``, ``https_git``, ``sshd_git``.

Servers bind 127.0.0.1 by default; pass ``host="0.0.0.0"`` to reach them from a
local cluster's pods.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import getpass
import http.server
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from tests.support import loopback

TOKEN = "tok-3f9a1c7e5b2d4f60a8e1"
GIT_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_AUTHOR_NAME": "Overseer Tests",
    "GIT_AUTHOR_EMAIL": "tests@overseer.invalid",
    "GIT_COMMITTER_NAME": "Overseer Tests",
    "GIT_COMMITTER_EMAIL": "tests@overseer.invalid",
    "GIT_TERMINAL_PROMPT": "0",
}

FileContent = str | bytes | tuple[str | bytes, int] | None


def git(*args: str | Path, cwd: Path | None = None) -> str:
    """Run the git CLI with a clean configuration; return its stdout."""
    result = subprocess.run(
        ["git", *map(str, args)],
        cwd=cwd,
        env={**os.environ, **GIT_ENV},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"git {' '.join(map(str, args))} failed: {result.stderr}")
    return result.stdout.strip()


@dataclasses.dataclass
class Upstream:
    """A bare repository (what servers serve) and a work tree that pushes to it."""

    bare: Path
    work: Path
    branch: str = "main"

    @classmethod
    def create(cls, bare: Path, branch: str = "main") -> Upstream:
        bare.parent.mkdir(parents=True, exist_ok=True)
        git("init", "--quiet", "--bare", "-b", branch, bare)
        work = Path(tempfile.mkdtemp(prefix=f"{bare.stem}-work-", dir=bare.parent.parent))
        git("init", "--quiet", "-b", branch, work)
        git("remote", "add", "origin", bare, cwd=work)
        return cls(bare=bare, work=work, branch=branch)

    @property
    def file_url(self) -> str:
        return f"file://{self.bare}"

    def commit(self, files: Mapping[str, FileContent], message: str = "change") -> str:
        """Write files (content, or (content, mode); None deletes), commit, push; return SHA."""
        for name, content in files.items():
            target = self.work / name
            if content is None:
                git("rm", "-q", "-r", "--", name, cwd=self.work)
                continue
            data, mode = content if isinstance(content, tuple) else (content, 0o644)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data.encode() if isinstance(data, str) else data)
            target.chmod(mode)
            git("add", "--", name, cwd=self.work)
        git("commit", "--quiet", "--allow-empty", "-m", message, cwd=self.work)
        git("push", "--quiet", "origin", f"HEAD:refs/heads/{self.branch}", cwd=self.work)
        return self.head

    def symlink(self, name: str, target: str) -> None:
        """Stage a symlink (commit it with the next :meth:`commit`)."""
        path = self.work / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(target)
        git("add", "--", name, cwd=self.work)

    def tag(self, name: str, message: str | None = None, commit: str = "HEAD") -> None:
        """Create a tag (annotated when a message is given) and push it."""
        extra = ["-a", "-m", message] if message else []
        git("tag", *extra, name, commit, cwd=self.work)
        git("push", "--quiet", "origin", f"refs/tags/{name}", cwd=self.work)

    def switch(self, branch: str, create: bool = True) -> None:
        """Commit to another branch from now on (created from HEAD)."""
        git("checkout", "--quiet", *(["-b"] if create else []), branch, cwd=self.work)
        self.branch = branch

    @property
    def head(self) -> str:
        return git("rev-parse", "HEAD", cwd=self.work)


# --- ports ------------------------------------------------------------------------------


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def closed_port(host: str = "127.0.0.1") -> int:
    """A port where nothing listens: connecting is refused at once."""
    return free_port(host)


def wait_for_port(port: int, host: str = "127.0.0.1", timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host if host != "0.0.0.0" else "127.0.0.1", port), 1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@contextlib.contextmanager
def serve_silence(host: str = "127.0.0.1") -> Iterator[int]:
    """A port that accepts TCP connections and never says a word (to test timeouts)."""
    server = socket.socket()
    server.bind((host, 0))
    server.listen(16)
    try:
        yield int(server.getsockname()[1])
    finally:
        server.close()


# --- git daemon -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class GitServer:
    """A running server for every bare repository under ``root``."""

    root: Path
    base_url: str

    def url(self, repo: Upstream | Path | str) -> str:
        bare = repo.bare if isinstance(repo, Upstream) else Path(repo)
        relative = bare.relative_to(self.root) if bare.is_absolute() else bare
        return f"{self.base_url}/{relative}"


@contextlib.contextmanager
def serve_git_daemon(root: Path, host: str = "127.0.0.1") -> Iterator[GitServer]:
    """``git daemon`` exporting every repository under ``root`` on a free port."""
    port = free_port(host)
    process = subprocess.Popen(
        [
            "git",
            "daemon",
            "--reuseaddr",
            "--export-all",
            "--informative-errors",
            f"--base-path={root}",
            f"--listen={host}",
            f"--port={port}",
            str(root),
        ],
        env={**os.environ, **GIT_ENV},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, host)
        yield GitServer(root=root, base_url=f"git://{_client_host(host)}:{port}")
    finally:
        process.terminate()
        process.wait(10)


def _client_host(host: str) -> str:
    return "127.0.0.1" if host == "0.0.0.0" else host


# --- TLS ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CertificateAuthority:
    """A throw-away CA made with the ``openssl`` CLI; :meth:`issue` signs server certificates."""

    directory: Path
    name: str

    @classmethod
    def create(cls, directory: Path, name: str = "Overseer test CA") -> CertificateAuthority:
        directory.mkdir(parents=True, exist_ok=True)
        ca = cls(directory, name)
        _openssl(
            "req",
            "-x509",
            "-new",
            *_EC_KEY,
            "-nodes",
            "-keyout",
            str(ca.key_path),
            "-out",
            str(ca.certificate_path),
            "-days",
            "2",
            "-subj",
            f"/CN={name}",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        )
        return ca

    @property
    def key_path(self) -> Path:
        return self.directory / "ca.key"

    @property
    def certificate_path(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def certificate(self) -> str:
        """The CA's certificate, PEM: what a client puts in ``ca.crt``."""
        return self.certificate_path.read_text()

    def issue(
        self, name: str, sans: tuple[str, ...] = ("IP:127.0.0.1", "DNS:localhost")
    ) -> tuple[Path, Path]:
        """Sign a new server certificate for ``sans``; return (certificate, key) paths."""
        folder = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.directory))
        key, request, certificate = folder / "tls.key", folder / "tls.csr", folder / "tls.crt"
        extensions = folder / "extensions.cnf"
        extensions.write_text(
            f"subjectAltName={','.join(sans)}\n"
            "basicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature\n"
            "extendedKeyUsage=serverAuth\n"
        )
        _openssl(
            "req", "-new", *_EC_KEY, "-nodes", "-keyout", str(key), "-out", str(request),
            "-subj", f"/CN={name}",
        )  # fmt: skip
        _openssl(
            "x509", "-req", "-in", str(request), "-CA", str(self.certificate_path),
            "-CAkey", str(self.key_path), "-CAcreateserial", "-days", "2",
            "-extfile", str(extensions), "-out", str(certificate),
        )  # fmt: skip
        return certificate, key


_EC_KEY = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1")


def _openssl(*args: str) -> None:
    result = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise AssertionError(f"openssl {args[0]} failed: {result.stderr}")


# --- smart HTTP -------------------------------------------------------------------------


class _HTTPGitServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    root: Path
    token: str | None
    username: str | None
    requests: list[tuple[str, str, int]]

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that refuses our certificate breaks the connection off: not our error.
        if isinstance(sys.exc_info()[1], ssl.SSLError | ConnectionError):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


class _GitHTTPHandler(http.server.BaseHTTPRequestHandler):
    """Runs ``git http-backend`` as CGI for each request, after checking the token."""

    server: _HTTPGitServer
    timeout = 60

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _authorized(self) -> bool:
        expected = self.server.token
        if expected is None:
            return True
        header = self.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer":
            return value == expected
        if scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(value).decode().partition(":")
            except ValueError:
                return False
            wanted_user = self.server.username
            return password == expected and (wanted_user is None or user == wanted_user)
        return False

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _serve(self) -> None:
        path, _, query = self.path.partition("?")
        if not self._authorized():
            self.server.requests.append((self.command, path, 401))
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="overseer-test"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = self._body()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(self.server.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "REQUEST_METHOD": self.command,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": self.client_address[0],
            "REMOTE_USER": "overseer",
            "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
            "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
        }
        result = subprocess.run(
            ["git", "http-backend"], input=body, env=env, capture_output=True, check=False
        )
        head, _, payload = result.stdout.partition(b"\r\n\r\n")
        if not payload and b"\n\n" in result.stdout:
            head, _, payload = result.stdout.partition(b"\n\n")
        status = 200
        headers = []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.server.requests.append((self.command, path, status))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@dataclasses.dataclass(frozen=True)
class HTTPGitServer(GitServer):
    """Smart HTTP server; ``requests`` lists (method, path, status) as served.

    Over TLS, ``ca_certificate`` is the PEM of the CA that signed the server's
    certificate (what a client must trust).
    """

    token: str | None = None
    requests: list[tuple[str, str, int]] = dataclasses.field(default_factory=list)
    ca_certificate: str | None = None


@contextlib.contextmanager
def serve_http(
    root: Path,
    token: str | None = TOKEN,
    username: str | None = None,
    host: str = "127.0.0.1",
    tls: CertificateAuthority | None = None,
) -> Iterator[HTTPGitServer]:
    """Smart HTTP for the repositories under ``root``; HTTPS with a certificate from ``tls``.

    With a ``token``, every request needs ``Authorization: Bearer <token>`` or
    Basic with the token as password (and ``username`` as user, if given);
    others get 401. The certificate names ``IP:127.0.0.1`` and ``DNS:localhost``.
    """
    server = _HTTPGitServer((host, 0), _GitHTTPHandler)
    server.root = root
    server.token = token
    server.username = username
    server.requests = []
    scheme = "http"
    if tls is not None:
        certificate, key = tls.issue("git-https")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(certificate, key)
        # The handshake runs in the request's thread: a client that hangs there or
        # refuses the certificate never blocks accept().
        server.socket = context.wrap_socket(
            server.socket, server_side=True, do_handshake_on_connect=False
        )
        scheme = "https"
    with loopback.running(server, "git-http"):
        yield HTTPGitServer(
            root=root,
            base_url=f"{scheme}://{_client_host(host)}:{server.server_address[1]}",
            token=token,
            requests=server.requests,
            ca_certificate=tls.certificate if tls is not None else None,
        )


# --- sshd ---------------------------------------------------------------------------------

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


@dataclasses.dataclass(frozen=True)
class SSHGitServer:
    """An sshd on loopback; ``known_hosts`` trusts its host key, ``private_key`` logs in."""

    port: int
    host: str
    user: str
    known_hosts: str
    private_key: str
    log: Path

    def url(self, repo: Upstream | Path) -> str:
        bare = repo.bare if isinstance(repo, Upstream) else repo
        return f"ssh://{self.user}@{self.host}:{self.port}{bare}"

    def scp_url(self, repo: Upstream | Path) -> str:
        """The ``user@host:path`` form (port 22 only, so for validation tests)."""
        bare = repo.bare if isinstance(repo, Upstream) else repo
        return f"{self.user}@{self.host}:{bare}"


def new_ssh_key(directory: Path, name: str) -> tuple[str, str]:
    """Generate an ed25519 key pair; return (private key text, public key line)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return path.read_text(), path.with_suffix(".pub").read_text().strip()


def sshd_unavailable_reason() -> str | None:
    if os.geteuid() != 0:
        return "sshd tests need root (sshd must switch users)"
    if not Path(SSHD).exists() or shutil.which("ssh-keygen") is None:
        return "openssh-server is not installed (hack/packages-debian.txt lists it)"
    return None


@contextlib.contextmanager
def serve_sshd(workdir: Path, host: str = "127.0.0.1") -> Iterator[SSHGitServer]:
    """An sshd with its own host key, config and authorized client key, on a free port."""
    reason = sshd_unavailable_reason()
    if reason:
        pytest.skip(reason)
    workdir.mkdir(parents=True, exist_ok=True)
    host_key_path = workdir / "ssh_host_ed25519_key"
    _, host_public = new_ssh_key(workdir, host_key_path.name)
    client_private, client_public = new_ssh_key(workdir, "client_ed25519")
    (workdir / "authorized_keys").write_text(client_public + "\n")
    port = free_port(host)
    user = getpass.getuser()
    config = workdir / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"Port {port}",
                f"ListenAddress {host}",
                f"HostKey {host_key_path}",
                f"PidFile {workdir / 'sshd.pid'}",
                f"AuthorizedKeysFile {workdir / 'authorized_keys'}",
                "StrictModes no",
                "UsePAM no",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PermitRootLogin prohibit-password",
                f"AllowUsers {user}",
                "LogLevel VERBOSE",
                "",
            ]
        )
    )
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation folder
    subprocess.run([SSHD, "-t", "-f", str(config)], check=True, capture_output=True)
    log = workdir / "sshd.log"
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(config)], stdout=log_file, stderr=log_file
        )
    try:
        wait_for_port(port, host)
        key_type, key_blob = host_public.split()[:2]
        client_host = _client_host(host)
        yield SSHGitServer(
            port=port,
            host=client_host,
            user=user,
            known_hosts=f"[{client_host}]:{port} {key_type} {key_blob}\n",
            private_key=client_private,
            log=log,
        )
    finally:
        process.terminate()
        process.wait(10)


# --- pytest fixtures ----------------------------------------------------------------------


@pytest.fixture
def git_root(tmp_path: Path) -> Path:
    """The folder whose bare repositories the servers export."""
    root = tmp_path / "served"
    root.mkdir()
    return root


@pytest.fixture
def upstream(git_root: Path) -> Upstream:
    """A repository ``jobs.git`` under ``git_root``, with one commit of a job file."""
    repo = Upstream.create(git_root / "jobs.git")
    repo.commit({"jobs/hello.yml": "- name: hello\n  command: echo hello\n"}, "first job")
    return repo


@pytest.fixture
def git_daemon(git_root: Path) -> Iterator[GitServer]:
    with serve_git_daemon(git_root) as server:
        yield server


@pytest.fixture
def http_git(git_root: Path) -> Iterator[HTTPGitServer]:
    """Smart HTTP requiring ``gitserver.TOKEN``."""
    with serve_http(git_root, token=TOKEN) as server:
        yield server


@pytest.fixture
def git_ca(tmp_path: Path) -> CertificateAuthority:
    """A fresh CA whose certificate clients must be given to trust ``https_git``."""
    return CertificateAuthority.create(tmp_path / "ca")


@pytest.fixture
def https_git(git_root: Path, git_ca: CertificateAuthority) -> Iterator[HTTPGitServer]:
    """Smart HTTPS requiring ``gitserver.TOKEN``, with a certificate signed by ``git_ca``."""
    with serve_http(git_root, token=TOKEN, tls=git_ca) as server:
        yield server


@pytest.fixture
def sshd_git(tmp_path: Path) -> Iterator[SSHGitServer]:
    with serve_sshd(tmp_path / "sshd") as server:
        yield server
