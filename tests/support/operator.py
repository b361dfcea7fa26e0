"""Run the real operator (``python -m overseer.operator``) as a process for a test.

The operator runs on this host against the cluster under test, watching only
the test's namespace, so tests do not see each other's objects. Its log is
kept in a file the test can read and search (for progress lines, and to prove
that no secret was ever logged).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.support.cluster import REPO, Cluster


@dataclass
class OperatorProcess:
    process: subprocess.Popen[bytes]
    log_path: Path
    metrics_port: int = 0

    def metrics(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        """Its /metrics page: each sample by (name, labels)."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as answer:
            text = answer.read().decode()
        return {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    def metric(self, name: str, **labels: str) -> float:
        """The sum of the samples of NAME whose labels include LABELS (0 when none)."""
        wanted = set(labels.items())
        return sum(v for (n, ls), v in self.metrics().items() if n == name and wanted <= ls)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise AssertionError(
                f"the operator exited ({self.process.returncode}):\n{self.log()[-3000:]}"
            )

    def status(self) -> dict[str, int]:
        """VmHWM and VmRSS (KiB) and CPU seconds (user + system) of the process."""
        pid = self.process.pid
        fields = {}
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                fields[key] = int(value.split()[0])
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        fields["cpu"] = round((int(stat[11]) + int(stat[12])) / ticks)
        return fields

    def wait_for_log(self, text: str, count: int = 1, timeout: float = 60) -> str:
        """Wait until TEXT appears COUNT times in the log; return the log."""
        deadline = time.monotonic() + timeout
        while True:
            log = self.log()
            if log.count(text) >= count:
                return log
            if self.process.poll() is not None:
                raise AssertionError(
                    f"the operator exited ({self.process.returncode}):\n{log[-3000:]}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{text!r} not seen {count} time(s) in the operator log:\n{log[-3000:]}"
                )
            time.sleep(0.2)


def free_port() -> int:
    """A TCP port free on this host now (the operator binds it a moment later)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def run_operator(
    cluster: Cluster,
    namespace: str,
    workdir: Path,
    *,
    verbose: bool = True,
    extra_env: Mapping[str, str] | None = None,
    python_args: Sequence[str] = (),
) -> Iterator[OperatorProcess]:
    """Start the operator for NAMESPACE; stop it (SIGTERM, then SIGKILL) when the block ends.

    Tests want its debug log (to grep for secrets); benchmarks do not (writing a
    line per object would be measured too). ``python_args`` go before ``-m
    overseer.operator`` (a benchmark's ``-m cProfile -o FILE``).
    """
    log_path = workdir / "operator.log"
    metrics_port = free_port()
    env = {
        **os.environ,
        "KUBECONFIG": str(cluster.kubeconfig),
        "OVERSEER_NAMESPACES": namespace,
        "OVERSEER_CACHE_DIR": str(workdir / "cache"),
        "OVERSEER_ARCHIVE_DIR": str(workdir / "archive"),
        "OVERSEER_RETRY_MIN": "1s",
        "OVERSEER_RETRY_MAX": "5s",
        # The tests serve most repositories as file:// on this host: a setting for tests
        # and development only (docs/security.rst); a test of the default overrides it.
        "OVERSEER_GIT_ALLOW_FILE_URLS": "true",
        # Never the default 8080: other operators of other test runs share this host.
        "OVERSEER_METRICS_PORT": str(metrics_port),
        **(extra_env or {}),
    }
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [
                sys.executable,
                *python_args,
                "-m",
                "overseer.operator",
                *(["--verbose"] if verbose else []),
            ],
            cwd=REPO,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    operator = OperatorProcess(process, log_path, metrics_port)
    try:
        yield operator
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
