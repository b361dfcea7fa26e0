"""The real API process (``python -m overseer_api``) on loopback, for e2e tests.

It runs from this checkout against the test's cluster and namespace, with its own
settings (``OVERSEER_API_*`` only) and its log in a file; ``restart`` stops it and
starts a new process with the same settings (nothing survives but the cluster).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.cluster import Cluster

READY_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class ApiServer:
    """A running API process; ``url`` is its base URL."""

    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def start(self) -> None:
        env = {**os.environ, **self.env, "OVERSEER_API_PORT": str(self.port)}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "overseer_api"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the API exited with {self.process.returncode}:\n{self.log()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise TimeoutError(f"the API was not ready within {READY_TIMEOUT:.0f}s:\n{self.log()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def restart(self) -> None:
        self.stop()
        self.start()


@contextlib.contextmanager
def run_api(cluster: Cluster, namespace: str, folder: Path, **settings: str) -> Iterator[ApiServer]:
    """The API serving ``namespace`` of ``cluster``; ``settings`` are OVERSEER_API_* (lower-case
    names without the prefix), such as ``auth="kubernetes"`` or ``tokens_file=...``."""
    env = {
        "OVERSEER_API_KUBECONFIG": str(cluster.kubeconfig),
        "OVERSEER_API_NAMESPACE": namespace,
        "OVERSEER_API_HOST": "127.0.0.1",
        "OVERSEER_API_ARCHIVE_DIR": str(folder / "archive"),
        **{f"OVERSEER_API_{name.upper()}": value for name, value in settings.items()},
    }
    server = ApiServer(env, folder / "api.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()
