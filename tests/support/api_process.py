"""Run the real API (``python -m overseer_api``) as a process for a test, like the operator.

It serves the test's namespace on a free loopback port, reads the operator's archive
directory, and knows three tokens (one per scope) from a tokens file. Its log is kept
in a file the test can read (to prove no token was ever logged).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support import api
from tests.support.cluster import REPO, Cluster
from tests.support.gitserver import free_port

TOKENS = {
    "reader": ("read-0f1e2d3c4b5a69788796a5b4c3d2e1f0", ["read"]),
    "runner": ("exec-1f2e3d4c5b6a79880796a5b4c3d2e1f0", ["execute"]),
    "boss": ("admin-2f3e4d5c6b7a89900796a5b4c3d2e1f0", ["admin"]),
}


@dataclass
class ApiProcess:
    process: subprocess.Popen[bytes]
    log_path: Path
    url: str

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def client(self, who: str | None = "runner", timeout: float = 30.0) -> httpx.Client:
        """An HTTP client for the API, with the token of ``who`` (none when None)."""
        headers = {"Authorization": f"Bearer {TOKENS[who][0]}"} if who else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"the API exited:\n{self.log()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"the API was not ready in {timeout}s:\n{self.log()[-3000:]}")
            time.sleep(0.2)


@contextmanager
def run_api(
    cluster: Cluster,
    namespace: str,
    workdir: Path,
    *,
    extra_env: Mapping[str, str] | None = None,
) -> Iterator[ApiProcess]:
    """Start the API for NAMESPACE; stop it (SIGTERM, then SIGKILL) when the block ends."""
    port = free_port()
    tokens = api.write_tokens(workdir / "api-tokens.json", TOKENS)
    log_path = workdir / "api.log"
    env = {
        **os.environ,
        "OVERSEER_API_KUBECONFIG": str(cluster.kubeconfig),
        "OVERSEER_API_NAMESPACE": namespace,
        "OVERSEER_API_TOKENS_FILE": str(tokens),
        "OVERSEER_API_ARCHIVE_DIR": str(workdir / "archive"),
        "OVERSEER_API_HOST": "127.0.0.1",
        "OVERSEER_API_PORT": str(port),
        "OVERSEER_API_LOG_LEVEL": "debug",
        **(extra_env or {}),
    }
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "overseer_api"],
            cwd=REPO,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    served = ApiProcess(process, log_path, f"http://127.0.0.1:{port}")
    try:
        served.wait_ready()
        yield served
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
