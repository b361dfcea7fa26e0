"""The REST API's figures, printed side by side (asserts nothing): ``make bench-api``.

Every server runs as its own process on one uvicorn worker; the load comes from
this process over loopback HTTP/1.1 with keep-alive (so on a 2-core machine client
and server share the cores: compare the figures with each other, not with other
machines).

1. ``GET /jobs/{name}``: requests/s and p50/p99 of the API (caches filled with
   ``--jobs`` jobs through its own cache module, a token checked on each request)
   against a bare FastAPI endpoint returning the same JSON from a dict, measured in
   alternating rounds. Goal: a ratio of at least 0.8. Also each server's CPU time per
   request (the least of the rounds), which the load of a shared machine disturbs far
   less than requests/s.
2. ``GET /jobs?limit=100``: p50/p99 of each of the 100 pages of 10,000 cached jobs,
   walked with the ``continue`` cursor. Goal: p99 under 50 ms.
3. ``POST /jobs/{name}`` to 201 on the real cluster (a real API server; no operator):
   p50/p99 of ``--posts`` executions created one after the other.
4. ``GET .../stdout`` of a 200 MiB archived output: bytes served and the API's RSS
   growth (VmRSS after minus before, and VmHWM). Goal: under 20 MiB.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import api_fixture
import options
from tests.support import cluster as test_cluster

TOKEN = api_fixture.TOKEN
HEADERS = {"Authorization": f"Bearer {TOKEN}"}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def load(url: str, seconds: float, concurrency: int) -> tuple[float, list[float]]:
    """GET ``url`` from ``concurrency`` connections for ``seconds``: requests/s, latencies (ms).

    A minimal HTTP/1.1 keep-alive client on asyncio streams rather than httpx, whose
    own cost per request would otherwise be what is measured on a 2-core machine.
    """
    parts = urllib.parse.urlsplit(url)
    request = (
        f"GET {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Authorization: Bearer {TOKEN}\r\n\r\n"
    ).encode()
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                writer.write(request)
                status, length = await _response_head(reader)
                await reader.readexactly(length)
                latencies.append((time.perf_counter() - start) * 1000)
                if status != 200:
                    raise SystemExit(f"{url}: HTTP {status}")
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(latencies) / (time.perf_counter() - start), latencies


async def _response_head(reader: asyncio.StreamReader) -> tuple[int, int]:
    """The status and Content-Length of the next response (the API never chunks these)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = next(
        int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:")
    )
    return status, length


@contextmanager
def server(*args: str, port: int, env: dict[str, str] | None = None) -> Iterator[int]:
    """A server process (``bench/api_fixture.py ARGS``) on ``port``; yields its pid."""
    command = [sys.executable, str(Path(__file__).parent / "api_fixture.py"), *args, str(port)]
    process = subprocess.Popen(command, env={**os.environ, **(env or {})})
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", process)
        yield process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not answer 200 within {timeout:.0f}s")


def memory(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM of a process, in MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in {"VmRSS", "VmHWM"}:
            fields[key] = int(value.split()[0]) / 1024
    return fields


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclasses.dataclass
class Rounds:
    """One server's rounds: requests/s, latencies, server CPU per request (us)."""

    rates: list[float] = dataclasses.field(default_factory=list)
    latencies: list[float] = dataclasses.field(default_factory=list)
    cpus: list[float] = dataclasses.field(default_factory=list)

    def add(self, rate: float, latencies: list[float], cpu: float) -> None:
        self.rates.append(rate)
        self.latencies.extend(latencies)
        self.cpus.append(cpu)

    @property
    def rate(self) -> float:
        return statistics.median(self.rates)

    @property
    def cpu(self) -> float:
        """The least CPU per request of the rounds: on a shared machine, the least disturbed."""
        return min(self.cpus)

    @property
    def cpu_text(self) -> str:
        return f"CPU {self.cpu:4.0f} us/request"


def row(label: str, rate: float | None, latencies: list[float], extra: str = "") -> None:
    rate_text = f"{rate:9.0f}/s" if rate is not None else " " * 11
    print(
        f"  {label:<44} {rate_text}  p50 {percentile(latencies, 0.5):7.2f} ms"
        f"  p99 {percentile(latencies, 0.99):7.2f} ms  {extra}"
    )


def bench_reads(args: argparse.Namespace, folder: Path) -> None:
    """GET /jobs/{name} against the bare endpoint; the pages of GET /jobs."""
    api_port, bare_port = args.port, args.port + 1
    with server("fixture", str(folder), str(args.jobs), port=api_port) as api_pid:
        path = f"/jobs/{api_fixture.quoted(api_fixture.JOB_NAME)}"
        body = httpx.get(f"http://127.0.0.1:{api_port}{path}", headers=HEADERS).json()
        (folder / "job.json").write_text(json.dumps(body))
        with server("bare", str(folder / "job.json"), port=bare_port) as bare_pid:
            targets = {
                "api": (f"http://127.0.0.1:{api_port}{path}", api_pid),
                "bare": (f"http://127.0.0.1:{bare_port}{path}", bare_pid),
            }
            results = {name: Rounds() for name in targets}
            for _ in range(args.rounds):  # alternate, so a noisy moment hits both
                for name, (url, pid) in targets.items():
                    before = cpu_seconds(pid)
                    rate, latencies = asyncio.run(load(url, args.seconds, args.concurrency))
                    spent = cpu_seconds(pid) - before
                    results[name].add(rate, latencies, spent / len(latencies) * 1e6)
        print(f"GET /jobs/{{name}}, {args.jobs} jobs cached, {args.concurrency} clients:")
        api, bare = results["api"], results["bare"]
        row("API (token auth, cache, views, schemas)", api.rate, api.latencies, api.cpu_text)
        row("bare FastAPI, the same JSON from a dict", bare.rate, bare.latencies, bare.cpu_text)
        print(
            f"  ratio API / bare: {api.rate / bare.rate:.2f} in requests/s (goal >= 0.80), "
            f"{bare.cpu / api.cpu:.2f} in server CPU per request"
        )

        pages = asyncio.run(walk_pages(f"http://127.0.0.1:{api_port}", args.walks))
        print(f"GET /jobs?limit=100, every page of {args.jobs} jobs, walked {args.walks} times:")
        row(f"{len(pages)} pages", None, pages, "(goal p99 < 50 ms)")
        before = memory(api_pid)
        print(f"  API memory after the reads: RSS {before['VmRSS']:.0f} MiB")


async def walk_pages(base: str, walks: int) -> list[float]:
    latencies: list[float] = []
    async with httpx.AsyncClient(headers=HEADERS, timeout=30) as client:
        for _ in range(walks):
            cursor = None
            while True:
                params = {"limit": "100", **({"continue": cursor} if cursor else {})}
                start = time.perf_counter()
                response = await client.get(f"{base}/jobs", params=params)
                latencies.append((time.perf_counter() - start) * 1000)
                page = response.json()
                cursor = page.get("continue")
                if not cursor:
                    break
    return latencies


def bench_stdout(args: argparse.Namespace, folder: Path) -> None:
    """Stream an archived output of ``--stdout-mib`` MiB; the API's memory around it."""
    port = args.port + 2
    with server("fixture", str(folder), "10", str(args.stdout_mib), port=port) as pid:
        url = f"http://127.0.0.1:{port}{api_fixture.stdout_path()}"
        before = memory(pid)
        size, start = 0, time.perf_counter()
        with httpx.stream("GET", url, headers=HEADERS, timeout=300) as response:
            if response.status_code != 200:
                response.read()
                print(f"GET stdout: HTTP {response.status_code} {response.text[:300]}")
                return
            for chunk in response.iter_raw():
                size += len(chunk)
        elapsed = time.perf_counter() - start
        after = memory(pid)
    print(f"GET .../stdout of {args.stdout_mib} MiB archived:")
    print(
        f"  {size / 2**20:.0f} MiB in {elapsed:.1f} s ({size / 2**20 / elapsed:.0f} MiB/s); "
        f"API RSS {before['VmRSS']:.0f} -> {after['VmRSS']:.0f} MiB "
        f"(growth {after['VmRSS'] - before['VmRSS']:+.1f} MiB, goal < 20), "
        f"peak {after['VmHWM']:.0f} MiB"
    )


def bench_posts(args: argparse.Namespace, folder: Path) -> None:
    """POST /jobs/{name} to 201 through a real API server (no operator)."""
    cluster = test_cluster.connect()
    namespace = cluster.create_namespace("bench-api-post")
    try:
        crds = Path(__file__).resolve().parents[1] / "manifests" / "crds.yaml"
        cluster.run("apply", "--server-side", "--force-conflicts", "-f", str(crds))
        job = api_fixture.job(namespace, api_fixture.JOB_NAME)
        cluster.run("apply", "--server-side", "-f", "-", input=json.dumps(job))
        port = args.port + 3
        env = {"KUBECONFIG": str(cluster.kubeconfig)}
        with server("cluster", str(folder), namespace, port=port, env=env):
            url = f"http://127.0.0.1:{port}/jobs/{api_fixture.quoted(api_fixture.JOB_NAME)}"
            latencies = asyncio.run(post(url, args.posts))
        print(f"POST /jobs/{{name}} to 201, {args.posts} one after the other, real API server:")
        row("create an OverseerExecution", None, latencies)
    finally:
        cluster.delete_namespace(namespace)


async def post(url: str, count: int) -> list[float]:
    latencies = []
    async with httpx.AsyncClient(headers=HEADERS, timeout=30) as client:
        for _ in range(count):
            start = time.perf_counter()
            response = await client.post(url, json={})
            latencies.append((time.perf_counter() - start) * 1000)
            if response.status_code != 201:
                raise SystemExit(f"POST: HTTP {response.status_code} {response.text[:300]}")
    return latencies


STEPS: dict[str, Callable[[argparse.Namespace, Path], None]] = {
    "reads": bench_reads,
    "stdout": bench_stdout,
    "posts": bench_posts,
}


def main() -> None:
    parser = options.new_parser("bench/api.py", __doc__, "")
    parser.add_argument("--jobs", type=int, default=10_000, help="jobs in the caches")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds of each round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per server")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent clients")
    parser.add_argument("--walks", type=int, default=5, help="walks through every page")
    parser.add_argument("--posts", type=int, default=100, help="executions to create")
    parser.add_argument("--stdout-mib", type=int, default=200, help="size of the output")
    parser.add_argument("--port", type=int, default=18700, help="first of four ports")
    parser.add_argument("--no-cluster", action="store_true", help="skip the POST figure")
    parser.add_argument(
        "--only",
        choices=sorted(STEPS),
        action="append",
        help="run only this part (repeat for several); the cluster is used by posts alone",
    )
    args = parser.parse_args()
    names = args.only or [n for n in STEPS if not (args.no_cluster and n == "posts")]
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        for name in names:
            STEPS[name](args, Path(tmp))


if __name__ == "__main__":
    main()
