"""The servers bench/api.py measures, each run as ``python bench/api_fixture.py MODE ... PORT``.

- ``fixture FOLDER JOBS [STDOUT_MIB] PORT``: the API on one uvicorn worker, its caches
  filled with JOBS jobs (and one finished execution) through its own cache module, as
  a watch's first list would; with STDOUT_MIB, that execution's stdout is archived in
  FOLDER with that many MiB.
- ``bare JSON_FILE PORT``: a bare FastAPI app answering ``GET /jobs/{name}`` with the
  JSON in the file, from a dict.
- ``cluster FOLDER NAMESPACE PORT``: the real API process (``python -m overseer_api``)
  on KUBECONFIG's cluster, serving NAMESPACE.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
import urllib.parse
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from overseer import archive_local
from overseer.core import definitions, names, repository_sync, schedule
from overseer.crd import definition as defn
from overseer_api import app, settings
from overseer_library import protocol

NAMESPACE = "bench"
JOB_NAME = "Nightly report 0042"
TOKEN = "bench-token-0123456789abcdef"
EXECUTION_TIME = datetime(2026, 12, 6, 4, 0, tzinfo=UTC)


def quoted(name: str) -> str:
    return urllib.parse.quote(name, safe="")


def job(namespace: str, name: str) -> dict[str, Any]:
    """An OverseerJob as the sync writes it (no owner: nothing deletes it in a bare namespace)."""
    model = defn.JobDefinition.model_validate(
        {
            "name": name,
            "description": "Builds the nightly report and mails it.",
            "cmdspec": "report --day day --format format",
            "parameters": {"format": {"default": "pdf", "allowed": ["pdf", "html"]}},
            "timeout": "10m",
        }
    )
    parsed = definitions.ParsedJob(
        definition=model,
        resource_name=names.job_resource_name(name),
        file="jobs/reports.yml",
        index=0,
        line=1,
        template=None,
    )
    owner = repository_sync.Owner(namespace=namespace, name="jobs", uid="uid-bench")
    body = repository_sync.build_job(owner, "c0ffee" * 6 + "c0ff", parsed)
    body["metadata"].pop("ownerReferences", None)
    body["metadata"]["resourceVersion"] = "1"
    return body


def execution(job_body: dict[str, Any]) -> dict[str, Any]:
    """A finished execution of the job, built by the scheduler's builder."""
    body = schedule.build_scheduled_execution(job_body, EXECUTION_TIME)
    body["metadata"]["resourceVersion"] = "1"
    body["status"] = {"phase": "Complete"}
    return body


def mark_archived(body: dict[str, Any], root: Path, mib: int) -> None:
    """The execution's status as the operator leaves it once its output is whole."""
    meta = body["metadata"]
    body["status"]["archive"] = {
        "backend": "local",
        "location": archive_local.LocalArchive(root).location(meta["namespace"], meta["name"]),
        "state": "Complete",
        "stdout": {"size": mib * 2**20},
        "stderr": {"size": 0},
    }


def stdout_path() -> str:

    return f"/jobs/{quoted(JOB_NAME)}/{names.execution_id(EXECUTION_TIME)}/stdout"


class Listed:
    """A watch source that lists what it holds, then stays quiet: the caches, filled."""

    def __init__(self, objects: dict[str, list[dict[str, Any]]]) -> None:
        self.objects = objects

    async def watch(self, kind: str, namespace: str) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        yield "LIST", {"items": self.objects.get(kind, []), "metadata": {}}
        await asyncio.Event().wait()

    async def read_secret(self, namespace: str, name: str) -> dict[str, bytes]:
        raise RuntimeError("no secrets in the benchmark")

    async def create(self, body: dict[str, Any]) -> dict[str, Any] | None:
        raise RuntimeError("no writes in the benchmark")


def write_tokens(folder: Path) -> Path:

    path = folder / "tokens.json"
    digest = hashlib.sha256(TOKEN.encode()).hexdigest()
    path.write_text(json.dumps({"bench": {"sha256": digest, "scopes": ["admin"]}}))
    return path


def archive_stdout(root: Path, body: dict[str, Any], mib: int) -> None:
    """``mib`` MiB of stdout archived for the execution, as the operator writes it."""
    writer = archive_local.LocalArchive(root).open_writer(
        body["metadata"]["namespace"], body["metadata"]["name"]
    )
    writer.begin("bench-pod")
    chunk = bytes(range(256)) * 256  # 64 KiB, every byte value
    for seq in range(1, mib * 16 + 1):
        writer.append(protocol.Output(seq=seq, stream="stdout", data=chunk))
    writer.commit(mib * 16, complete=True)
    writer.close()


def serve_fixture(folder: Path, jobs: int, stdout_mib: int, port: int) -> None:

    names = {JOB_NAME} | {f"Nightly report {i:04d}" for i in range(jobs - 1)}
    bodies = [job(NAMESPACE, name) for name in sorted(names)]
    target = next(b for b in bodies if b["spec"]["displayName"] == JOB_NAME)
    finished = execution(target)
    root = folder / "archive"
    if stdout_mib:
        archive_stdout(root, finished, stdout_mib)
        mark_archived(finished, root, stdout_mib)
    source = Listed({"OverseerJob": bodies, "OverseerExecution": [finished]})
    config = settings.Settings(
        namespace=NAMESPACE, auth="token", tokens_file=write_tokens(folder), archive_dir=root
    )
    api = app.create_app(config, source, archive_local.LocalArchive(root))  # type: ignore[arg-type]
    uvicorn.run(api, host="127.0.0.1", port=port, workers=1, log_level="warning", access_log=False)


def serve_bare(json_file: Path, port: int) -> None:

    answer = json.loads(json_file.read_text())
    bare = FastAPI()

    @bare.get("/jobs/{name}")
    async def get_job(name: str) -> JSONResponse:
        # json.dumps of the dict: no model, no validation, no encoder walk
        return JSONResponse(answer)

    @bare.get("/readyz")
    async def ready() -> dict[str, str]:
        return {"status": "ready"}

    uvicorn.run(bare, host="127.0.0.1", port=port, workers=1, log_level="warning", access_log=False)


def serve_cluster(folder: Path, namespace: str, port: int) -> None:
    env = {
        **os.environ,
        "OVERSEER_API_NAMESPACE": namespace,
        "OVERSEER_API_AUTH": "token",
        "OVERSEER_API_TOKENS_FILE": str(write_tokens(folder)),
        "OVERSEER_API_ARCHIVE_DIR": str(folder / "archive"),
        "OVERSEER_API_HOST": "127.0.0.1",
        "OVERSEER_API_PORT": str(port),
        "OVERSEER_API_KUBECONFIG": os.environ["KUBECONFIG"],
        "OVERSEER_API_LOG_LEVEL": "warning",
    }
    os.execve(sys.executable, [sys.executable, "-m", "overseer_api"], env)


def main(argv: list[str]) -> None:
    mode, *rest = argv
    port = int(rest[-1])
    if mode == "fixture":
        stdout_mib = int(rest[2]) if len(rest) == 4 else 0
        serve_fixture(Path(rest[0]), int(rest[1]), stdout_mib, port)
    elif mode == "bare":
        serve_bare(Path(rest[0]), port)
    elif mode == "cluster":
        serve_cluster(Path(rest[0]), rest[1], port)
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
