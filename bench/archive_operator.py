"""Run 3 of ``bench/archive.py``: the real operator archiving a job's output to the store.

The operator runs as a host process (``tests/support/operator.py``) against the local
cluster with the s3 backend, on the loopback S3 server of the benchmark; one execution
writes ``mib`` MiB of pseudo-random bytes to each stream, at most ``rate`` MiB/s each
(faster, the kubelet rotates the log before it is read: that loss is flagged, never
silent), and reports the SHA-256 of each as a custom event. Printed: the operator's RSS
through the run (sampled every 2 s), the time until the archive is Complete, and the
manifest's sizes and SHA-256 against the job's.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import yaml
from tests.support import cluster as test_cluster
from tests.support import gitserver, overseer, s3server
from tests.support.operator import run_operator

JOB = "Two streams"
WRITER = """\
import hashlib, json, os, subprocess, sys, time
digests = {"stdout": hashlib.sha256(), "stderr": hashlib.sha256()}
block = os.urandom(1 << 20)
start, rate = time.monotonic(), float(sys.argv[2])  # MiB/s per stream
for n in range(int(sys.argv[1])):
    time.sleep(max(0.0, start + n / rate - time.monotonic()))
    pairs = ((n, "stdout", sys.stdout.buffer), (n + 7, "stderr", sys.stderr.buffer))
    for shift, stream, out in pairs:
        data = block[shift % 1024 :] + block[: shift % 1024]
        digests[stream].update(data)
        out.write(data)
sys.stdout.flush(); sys.stderr.flush()
said = json.dumps({s: d.hexdigest() for s, d in digests.items()})
subprocess.run(["event", "digests", said], check=True)
"""


def run(server: s3server.S3Server, bucket: str, mib: int, rate: float, workdir: Path) -> None:
    upstream = gitserver.Upstream.create(workdir / "git" / "jobs.git")
    jobs = [{"name": JOB, "command": ["python3", "-c", WRITER, str(mib), str(rate)]}]
    upstream.commit({"jobs.yml": yaml.safe_dump(jobs)}, "bench: a job writing both streams")
    cluster = test_cluster.connect()
    cluster.run(
        "apply", "--server-side", "--force-conflicts", "-f",
        str(test_cluster.REPO / "manifests" / "crds.yaml"),
    )  # fmt: skip
    namespace = cluster.create_namespace("bench-archive")
    kube = test_cluster.Kube(cluster, namespace)
    (workdir / "operator").mkdir()
    env = {**server.env("OVERSEER_", bucket), "OVERSEER_FINISHED_JOB_TTL": "0"}
    try:
        with run_operator(
            cluster, namespace, workdir / "operator", verbose=False, extra_env=env
        ) as op:
            try:
                kube.apply(overseer.repository("jobs", upstream.file_url, interval="1h"))
                job = overseer.wait_for_jobs(kube, {JOB})[JOB]
                manifest = overseer.execution(job)
                name = manifest["metadata"]["name"]
                samples = [op.status()["VmRSS"] // 1024]
                start = time.monotonic()
                kube.create(manifest)
                status: dict[str, Any] = {}
                while (status.get("archive") or {}).get("state") not in ("Complete", "Incomplete"):
                    time.sleep(2)
                    op.check_alive()
                    samples.append(op.status()["VmRSS"] // 1024)
                    got = kube.kubectl("get", "osx", name, "-o", "json", check=False)
                    if got.returncode == 0:  # else a blip of the shared API server
                        status = json.loads(got.stdout).get("status") or {}
                    if time.monotonic() - start > 60 * 60:
                        raise TimeoutError("the archive did not complete within an hour")
                seconds = time.monotonic() - start
                [path] = (server.root / bucket / namespace / name).glob("*/manifest.json")
                figures = {"mib": mib, "seconds": seconds, "peak": op.status()["VmHWM"] // 1024}
                report(json.loads(path.read_bytes()), figures, samples, status)
            finally:
                kube.kubectl(
                    "delete", "overseerrepositories", "--all", "--timeout=60s", check=False
                )
    finally:
        cluster.delete_namespace(namespace)


def report(
    manifest: dict[str, Any], figures: dict[str, Any], samples: list[int], status: dict[str, Any]
) -> None:
    seconds, total = figures["seconds"], sum(manifest["sizes"].values()) / 2**20
    [digests] = [e.get("data") for e in status.get("events", []) if e.get("status") == "digests"]
    print(
        f"   {total:.0f} MiB archived, state {status['archive']['state']}, {seconds:.0f} s "
        f"from creation ({total / seconds:.1f} MiB/s)"
    )
    step = max(1, len(samples) // 10)
    print(
        f"   operator RSS (MiB) every {2 * step} s: {[*samples[::step], samples[-1]]}; "
        f"peak (VmHWM) {figures['peak']} MiB"
    )
    for stream in ("stdout", "stderr"):
        ok = "matches" if manifest["sha256"][stream] == digests[stream] else "DIFFERS from"
        print(
            f"   manifest {stream}: {manifest['sizes'][stream]} bytes, SHA-256 "
            f"{manifest['sha256'][stream][:16]}... {ok} the job's"
        )
    print(f"   manifest complete: {manifest['complete']}, lost: {manifest['lost']}", flush=True)
