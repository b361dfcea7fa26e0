"""Micro-benchmark: the CPU one server-side apply costs this process, per HTTP client.

Prints figures; asserts nothing. Run from the repository root (small: no lock needed)::

    .venv/bin/python bench/apply_clients.py [--objects 400] [--rounds 3] [--repeats 2]

Against the real API server of ``KUBECONFIG``, in a fresh namespace: ``--objects``
OverseerJobs as the sync builds them (``bench/sync.py``'s definitions, no owner), each
applied ``--rounds`` times (every round changes an annotation, so each apply writes),
8 at a time as the sync's workers do, by each client in turn, ``--repeats`` times
interleaved. For each client: this process's CPU seconds (``time.process_time``) and
wall seconds per 1,000 applies (the first round of each client, which opens its
connections, included). The namespace is deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import ssl
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import httpcore2
import httpx2
from lightkube.config import client_adapter
from lightkube.config.kubeconfig import KubeConfig

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import sync as bench_sync  # noqa: E402  (next to this file)
from tests.support import cluster as test_cluster  # noqa: E402

from overseer import kube, kube_apply, kube_http, kube_resources  # noqa: E402
from overseer.core import definitions, repository_sync, write_pacing  # noqa: E402
from overseer.core import sync as core_sync  # noqa: E402

WORKERS = write_pacing.DEFAULT_CONCURRENCY
PARAMS = {"fieldManager": kube_resources.FIELD_MANAGER, "force": "true"}
APPLY_HEADERS = {"Content-Type": kube_http.APPLY_PATCH}
Apply = Callable[[str, bytes], Awaitable[None]]


@dataclasses.dataclass
class Target:
    server: str
    ssl: ssl.SSLContext
    auth: httpx2.Auth | None
    headers: dict[str, str]


def bodies(namespace: str, count: int, round_: int, fresh: bool) -> list[tuple[str, bytes]]:
    """(path, encoded body) of ``count`` OverseerJobs as the sync writes them (``fresh``:
    new names, created)."""
    files = max(1, count // 20)
    content = bench_sync.build_repository(count, files)
    texts = {k: v for k, v in content.items() if isinstance(v, str) and k.startswith("jobs/")}
    result = definitions.parse_repository(texts, str(content["overseer.yml"]))
    owner = repository_sync.Owner(namespace, "bench", "00000000-0000-0000-0000-000000000000")
    desired = repository_sync.build_desired_jobs(owner, "0" * 40, result)
    out = []
    for given, want in desired.items():
        name = f"{given}-{round_}" if fresh else given
        body = core_sync.build_apply_body(name, want)
        body["metadata"]["name"] = name
        del body["metadata"]["ownerReferences"]  # no repository: the collector would delete
        body["metadata"]["annotations"]["bench/round"] = str(round_)
        path = f"/apis/overseer.dev/v1alpha1/namespaces/{namespace}/overseerjobs/{name}"
        out.append((path, write_pacing.encode(body)))
    return out


async def run_round(apply: Apply, work: list[tuple[str, bytes]]) -> None:
    pending = iter(work)

    async def worker() -> None:
        for path, data in pending:
            await apply(path, data)

    await asyncio.gather(*(worker() for _ in range(WORKERS)))


async def httpx_apply(http: httpx2.AsyncClient, path: str, data: bytes) -> None:
    """The apply of main at e003fcd (``kube_http.apply_encoded``)."""
    try:
        response = await http.request(
            "PATCH", path, content=data, params=PARAMS, headers=APPLY_HEADERS
        )
    except httpx2.HTTPError as error:
        raise RuntimeError(error) from None
    if response.is_error:
        raise RuntimeError(response.status_code)


async def with_httpx_now(target: Target, rounds: list[list[tuple[str, bytes]]]) -> None:
    client = kube.Kube.connect()
    http = client._http  # lightkube's own client: the path of main

    async def apply(path: str, data: bytes) -> None:
        await httpx_apply(http, path, data)

    try:
        for work in rounds:
            await run_round(apply, work)
    finally:
        await client.close()


async def with_httpx_http2(target: Target, rounds: list[list[tuple[str, bytes]]]) -> None:
    http = httpx2.AsyncClient(
        base_url=target.server, auth=target.auth, verify=target.ssl, http2=True, timeout=30
    )

    async def apply(path: str, data: bytes) -> None:
        await httpx_apply(http, path, data)

    async with http:
        for work in rounds:
            await run_round(apply, work)


async def with_httpcore(target: Target, rounds: list[list[tuple[str, bytes]]]) -> None:
    pool = httpcore2.AsyncConnectionPool(
        ssl_context=target.ssl, max_connections=WORKERS, socket_options=kube_http.KEEPALIVE
    )
    query = "?fieldManager=overseer&force=true"
    headers = [(k.encode(), v.encode()) for k, v in target.headers.items()]
    headers.append((b"Content-Type", kube_http.APPLY_PATCH.encode()))

    async def apply(path: str, data: bytes) -> None:
        response = await pool.request(
            "PATCH", target.server + path + query, headers=headers, content=data
        )
        if response.status >= 400:
            raise RuntimeError(response.status)

    async with pool:
        for work in rounds:
            await run_round(apply, work)


async def with_aiohttp(target: Target, rounds: list[list[tuple[str, bytes]]]) -> None:
    session = kube_apply.BulkApply(target.server, target.ssl, target.auth, kube.Timeouts())

    async def apply(path: str, data: bytes) -> None:
        await session.apply(
            path, data, field_manager=kube_resources.FIELD_MANAGER, force=True, doing=""
        )

    try:
        for work in rounds:
            await run_round(apply, work)
    finally:
        await session.close()


async def with_aiohttp_plain(target: Target, rounds: list[list[tuple[str, bytes]]]) -> None:
    connector = aiohttp.TCPConnector(ssl=target.ssl, limit=WORKERS)
    headers = {**target.headers, "Content-Type": kube_http.APPLY_PATCH}
    async with aiohttp.ClientSession(target.server, connector=connector) as session:

        async def apply(path: str, data: bytes) -> None:
            async with session.patch(path, params=PARAMS, data=data, headers=headers) as response:
                await response.read()
                if response.status >= 400:
                    raise RuntimeError(response.status)

        for work in rounds:
            await run_round(apply, work)


CLIENTS: dict[str, Callable[[Target, list[list[tuple[str, bytes]]]], Awaitable[None]]] = {
    "httpx2 via lightkube (main)": with_httpx_now,
    "httpx2, HTTP/2": with_httpx_http2,
    "httpcore2 directly": with_httpcore,
    "aiohttp, plain session.patch": with_aiohttp_plain,
    "aiohttp, kube_apply.BulkApply": with_aiohttp,
}


async def target() -> Target:
    config = KubeConfig.from_env().get()
    assert config.user is not None
    ctx = client_adapter.verify_cluster(config.cluster, config.user, config.abs_file)
    auth = client_adapter.user_auth(config.user)
    headers = await kube_apply.authorization(auth, config.cluster.server)
    return Target(config.cluster.server.rstrip("/"), ctx, auth, headers)


async def measure(args: argparse.Namespace, namespace: str) -> dict[str, list[tuple[float, float]]]:
    where = await target()
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name in CLIENTS}
    generation = 0
    for _ in range(args.repeats):
        for name, run in CLIENTS.items():
            if args.clients and not any(word in name for word in args.clients.split(",")):
                continue
            rounds = []
            for _ in range(args.rounds):
                generation += 1
                rounds.append(bodies(namespace, args.objects, generation, args.fresh))
            cpu, wall = time.process_time(), time.perf_counter()
            await run(where, rounds)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            per = 1000 / (args.objects * args.rounds)
            figures[name].append((cpu * per, wall * per))
            print(f"  {name}: {cpu * per:.2f} s CPU, {wall * per:.2f} s wall per 1,000")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--fresh", action="store_true", help="create new objects each round")
    parser.add_argument("--clients", default="", help="only these (comma-separated words)")
    args = parser.parse_args()
    cluster = test_cluster.connect()
    os.environ["KUBECONFIG"] = str(cluster.kubeconfig)
    namespace = cluster.create_namespace("bench-apply-clients")
    try:
        figures = asyncio.run(measure(args, namespace))
    finally:
        cluster.delete_namespace(namespace)
    print(f"\n{args.objects} objects x {args.rounds} rounds, {WORKERS} at a time; per 1,000:")
    print(f"{'client':34} {'CPU s (median)':>15} {'wall s (median)':>16}")
    for name, runs in figures.items():
        if not runs:
            continue
        cpu = statistics.median(c for c, _ in runs)
        wall = statistics.median(w for _, w in runs)
        print(f"{name:34} {cpu:15.2f} {wall:16.2f}")


if __name__ == "__main__":
    main()
