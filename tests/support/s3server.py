"""A real S3 server (versitygw, POSIX backend) on loopback, for the archive's tests.

``hack/build-s3-server.sh`` builds it once into the cache (the first run takes a few
minutes, later ones none); :func:`start` runs it on a free port over a temporary
folder, with fresh credentials, and waits until it answers. The server can be
stopped and started again on the same port and folder (the store down, then back),
or frozen with SIGSTOP (the store hangs: connections open, nothing answers).
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import botocore.config
import botocore.session
import pytest

from tests.support.cluster import REPO

BUILD = REPO / "hack" / "build-s3-server.sh"
REGION = "us-east-1"


def binary() -> Path:
    """The server's binary, built (once, cached) by hack/build-s3-server.sh."""
    done = subprocess.run([str(BUILD)], check=True, stdout=subprocess.PIPE, text=True)
    return Path(done.stdout.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class S3Server:
    """One versitygw process serving ``root``'s folders as buckets."""

    root: Path
    port: int
    access_key: str = field(default_factory=lambda: "test" + secrets.token_hex(6))
    secret_key: str = field(default_factory=lambda: secrets.token_hex(20), repr=False)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self, prefix: str = "OVERSEER_", bucket: str = "overseer") -> dict[str, str]:
        """The settings of an s3 archive on this server, as environment variables."""
        return {
            f"{prefix}ARCHIVE_BACKEND": "s3",
            f"{prefix}ARCHIVE_S3_ENDPOINT": self.endpoint,
            f"{prefix}ARCHIVE_S3_BUCKET": bucket,
            f"{prefix}ARCHIVE_S3_REGION": REGION,
            f"{prefix}ARCHIVE_S3_PATH_STYLE": "true",
            f"{prefix}ARCHIVE_S3_ACCESS_KEY_ID": self.access_key,
            f"{prefix}ARCHIVE_S3_SECRET_ACCESS_KEY": self.secret_key,
        }

    def start(self, timeout: float = 30) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        self.root.mkdir(parents=True, exist_ok=True)
        self.log_path = self.root.parent / "versitygw.log"
        command = [str(binary()), "--port", f"127.0.0.1:{self.port}", "--quiet"]
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "ROOT_ACCESS_KEY_ID": self.access_key,
            "ROOT_SECRET_ACCESS_KEY": self.secret_key,
        }
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*command, "posix", str(self.root)], stdout=log, stderr=log, env=env
            )
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self.process.poll() is not None:
                raise AssertionError(f"versitygw exited:\n{self.log_path.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"versitygw did not answer on {self.endpoint}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server (the store is down: connections are refused)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGCONT)  # a frozen one too
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def freeze(self) -> None:
        """SIGSTOP: the store hangs (connections accepted, nothing answered)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def create_bucket(self, name: str) -> None:
        """A bucket is a folder of the POSIX backend; through the S3 API in tests that
        check CreateBucket itself."""
        (self.root / name).mkdir(exist_ok=True)

    def objects(self, bucket: str = "overseer") -> list[str]:
        """Every object key of a bucket, from the backend's folder (the server's truth)."""
        top = self.root / bucket
        return sorted(
            str(path.relative_to(top))
            for path in top.rglob("*")
            if path.is_file() and not path.name.startswith(".")
        )

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
                return bool(sock.recv(16))
        except OSError:
            return False


@contextmanager
def running(root: Path) -> Iterator[S3Server]:
    """A started server over ``root`` (its buckets' folders); stopped when the block ends."""
    server = S3Server(root=root, port=free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


def client(server: S3Server) -> Any:
    """A synchronous botocore S3 client of the server (for the tests' own checks)."""
    session = botocore.session.get_session()
    return session.create_client(
        "s3",
        endpoint_url=server.endpoint,
        region_name=REGION,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        config=botocore.config.Config(
            s3={"addressing_style": "path"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            retries={"max_attempts": 1},
        ),
    )


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """One S3 server for the session's tests (each test takes its own bucket)."""
    with running(tmp_path_factory.mktemp("s3") / "buckets") as server:
        yield server


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> str:
    """A fresh bucket on the session's S3 server."""
    name = "t-" + secrets.token_hex(4)
    client(s3_server).create_bucket(Bucket=name)
    return name
