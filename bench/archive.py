"""The output archive's figures, printed side by side (asserts nothing): ``make bench-archive``.

A real S3 server (versitygw, built by ``hack/build-s3-server.sh``, POSIX backend on a
temporary folder) runs on loopback; everything else runs in this process, as in the
operator: the supervisor's frames of pseudo-random bytes (8 KiB each, as the
supervisor cuts them), decoded by ``overseer_library.protocol`` and appended to an
archive writer, which holds the reading while its store lags, as the follower does.

1. The same ``--size`` MiB of stdout, in one run: MiB/s archived to the store
   (``overseer.archive_s3``), to a local directory (``overseer.archive_local``), and a
   plain upload of the same bytes with the same client (aiobotocore ``put_object`` of
   chunk-size objects, one after the other): the ceiling. Goal: the archive at 0.8 of
   the plain upload or more. Alternating rounds (``--rounds``), best of each.
2. ``--large`` MiB on each stream (1 GiB by default) archived to the store, frames made
   as they are read (the job's bytes are never all in memory): this process's RSS
   (VmRSS) through the run (flat: bounded by the chunk size, not the output's size),
   its peak (VmHWM), and the manifest's SHA-256 of each stream against the bytes made.
3. ``--operator-mib`` MiB on each stream (1 GiB) written by a job on the local cluster
   and archived by the real operator (``bench/archive_operator.py``): the operator's RSS
   through the run, and the manifest's SHA-256 against the job's own. Needs the cluster
   (``--operator-mib 0`` leaves it out).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import sys
import tempfile
import time
from collections.abc import Awaitable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import archive_operator
import options
from tests.support import s3server

from overseer import archive, archive_local, archive_s3, archive_s3_store
from overseer_library import protocol

MIB = 1024 * 1024
FRAME = protocol.MAX_OUT_CHUNK
NS = "bench"


def parse_args() -> options.argparse.Namespace:
    parser = options.new_parser("bench/archive.py", __doc__, "")
    parser.add_argument("--size", type=int, default=256, help="MiB of run 1; 0: no run 1")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the side-by-side run")
    parser.add_argument("--large", type=int, default=1024, help="MiB per stream of run 2; 0: none")
    parser.add_argument("--chunk", type=int, default=4, help="the archive's chunk size, MiB")
    parser.add_argument(
        "--operator-mib",
        type=int,
        default=1024,
        help="MiB per stream of run 3 (the real operator and the local cluster); 0: no run 3",
    )
    parser.add_argument(
        "--operator-rate", type=float, default=4.0, help="MiB/s per stream the job of run 3 writes"
    )
    return parser.parse_args()


def rss_kib() -> dict[str, int]:
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields


def log_chunks(size: int, streams: tuple[protocol.Stream, ...], seed: int) -> Iterator[bytes]:
    """The supervisor's log of a job writing ``size`` bytes of pseudo-random data to each
    of ``streams``, as the kubelet serves it (64 KiB reads), made as it is read."""
    rng = random.Random(seed)
    block = rng.randbytes(FRAME * 64)
    seq, written, pending = 0, 0, bytearray()
    while written < size:
        for stream in streams:
            seq += 1
            offset = (written // FRAME * 7919 + seq) % (len(block) - FRAME)
            take = min(FRAME, size - written)
            pending += protocol.encode(protocol.Output(seq, stream, block[offset : offset + take]))
        written += take
        if len(pending) >= 64 * 1024:
            yield bytes(pending)
            pending.clear()
    yield bytes(pending)


def expected_sha(size: int, streams: tuple[protocol.Stream, ...], seed: int) -> dict[str, str]:
    hashes = {stream: hashlib.sha256() for stream in streams}
    for chunk in log_chunks(size, streams, seed):
        for record in protocol.decode_all([chunk]):
            if isinstance(record, protocol.Output):
                hashes[record.stream].update(record.data)
    return {stream: h.hexdigest() for stream, h in hashes.items()}


async def archive_log(
    store: archive.Archive, name: str, chunks: Iterator[bytes], sample: list[int] | None = None
) -> int:
    """Feed a log to a writer as the follower does; the bytes archived."""
    writer = await store.open(NS, name, uid=name)
    writer.begin("pod")
    decoder, total = protocol.Decoder(), 0
    for count, chunk in enumerate(chunks):
        for record in decoder.feed(chunk):
            if isinstance(record, protocol.Output):
                writer.append(record)
                total += len(record.data)
        writer.flush()
        await writer.ready()
        if sample is not None and count % 2048 == 0:
            sample.append(rss_kib()["VmRSS"])
    writer.commit(decoder.last_seq, complete=True)
    await writer.drain()
    writer.close()
    return total


async def plain_upload(store: archive_s3_store.Store, name: str, chunks: Iterator[bytes]) -> int:
    """The same bytes as chunk-size objects, with the same client: the ceiling."""
    size, pending, index, decoder = store.config.chunk_size, bytearray(), 0, protocol.Decoder()
    total = 0
    for chunk in chunks:
        for record in decoder.feed(chunk):
            if isinstance(record, protocol.Output):
                pending += record.data
        if len(pending) >= size:
            await store.put(f"plain/{name}/{index:016d}", bytes(pending))
            total, index, pending = total + len(pending), index + 1, bytearray()
    if pending:
        await store.put(f"plain/{name}/{index:016d}", bytes(pending))
        total += len(pending)
    return total


async def timed(run: Awaitable[int]) -> tuple[float, int]:
    start = time.perf_counter()
    total = await run
    return time.perf_counter() - start, total


async def side_by_side(args: options.argparse.Namespace, config: archive_s3.S3Config, root: Path):
    s3 = archive_s3.S3Archive(config)
    local = archive_local.LocalArchive(root / "local")
    size = args.size * MIB
    best: dict[str, float] = {}
    try:
        for round_ in range(args.rounds):
            runs = {
                "archive to the store": lambda r=round_: archive_log(
                    s3, f"s3-{r}", log_chunks(size, ("stdout",), 1)
                ),
                "plain upload, same client": lambda r=round_: plain_upload(
                    s3.store, f"p-{r}", log_chunks(size, ("stdout",), 1)
                ),
                "archive to a local directory": lambda r=round_: archive_log(
                    local, f"local-{r}", log_chunks(size, ("stdout",), 1)
                ),
            }
            for label, run in runs.items():
                seconds, total = await timed(run())
                assert total == size, (label, total)
                best[label] = max(best.get(label, 0.0), size / MIB / seconds)
            await s3.remove(NS, f"s3-{round_}")
            await local.remove(NS, f"local-{round_}")
    finally:
        await s3.close()
    return best


async def large(args: options.argparse.Namespace, config: archive_s3.S3Config, server):
    s3 = archive_s3.S3Archive(config)
    streams: tuple[protocol.Stream, ...] = ("stdout", "stderr")
    size, sample = args.large * MIB, [rss_kib()["VmRSS"]]
    try:
        seconds, total = await timed(archive_log(s3, "large", log_chunks(size, streams, 2), sample))
    finally:
        await s3.close()
    path = server.root / config.bucket / NS / "large" / "large" / "manifest.json"
    manifest = json.loads(path.read_bytes())
    return seconds, total, sample, manifest


def print_side_by_side(
    args: options.argparse.Namespace, config: archive_s3.S3Config, root: Path
) -> None:
    print(
        f"1. {args.size} MiB of stdout in {FRAME // 1024} KiB frames, best of "
        f"{args.rounds} alternating rounds, chunks of {args.chunk} MiB",
        flush=True,
    )
    best = asyncio.run(side_by_side(args, config, root))
    for label, rate in best.items():
        print(f"   {label:32} {rate:8.1f} MiB/s")
    ratio = best["archive to the store"] / best["plain upload, same client"]
    print(f"   archive / plain upload           {ratio:8.2f}   (goal >= 0.8)", flush=True)


def print_large(
    args: options.argparse.Namespace, config: archive_s3.S3Config, server: s3server.S3Server
) -> None:
    print(f"2. {args.large} MiB on each stream archived to the store", flush=True)
    seconds, total, sample, manifest = asyncio.run(large(args, config, server))
    want = expected_sha(args.large * MIB, ("stdout", "stderr"), 2)
    print(f"   {total / MIB:.0f} MiB in {seconds:.1f} s: {total / MIB / seconds:.1f} MiB/s")
    quarter = [sample[len(sample) * q // 4] // 1024 for q in range(4)] + [sample[-1] // 1024]
    print(
        f"   RSS (MiB) at 0, 25, 50, 75, 100 %: {quarter}; "
        f"peak (VmHWM) {rss_kib()['VmHWM'] // 1024} MiB"
    )
    for stream in ("stdout", "stderr"):
        ok = "matches" if manifest["sha256"][stream] == want[stream] else "DIFFERS"
        print(
            f"   manifest {stream}: {manifest['sizes'][stream]} bytes, "
            f"SHA-256 {manifest['sha256'][stream][:16]}... {ok} the bytes made"
        )
    print(f"   manifest complete: {manifest['complete']}, lost: {manifest['lost']}", flush=True)


def main() -> None:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-archive-") as folder:
        root = Path(folder)
        with s3server.running(root / "buckets") as server:
            s3server.client(server).create_bucket(Bucket="bench")
            config = archive_s3_store.S3Config(
                bucket="bench",
                endpoint=server.endpoint,
                path_style=True,
                credentials=(server.access_key, server.secret_key),
                chunk_size=args.chunk * MIB,
            )
            if args.size:
                print_side_by_side(args, config, root)
            if args.large:
                print_large(args, config, server)
            if args.operator_mib:
                print(
                    f"3. {args.operator_mib} MiB on each stream from a job "
                    f"({args.operator_rate:g} MiB/s each), archived to the store by the "
                    "operator (host process, local cluster)",
                    flush=True,
                )
                archive_operator.run(server, "bench", args.operator_mib, args.operator_rate, root)


if __name__ == "__main__":
    main()
