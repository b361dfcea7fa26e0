"""Seed finished executions as the operator leaves them (bench/scale.py's second half).

Running 10,000 real pods on a 2-core node takes over an hour, so ``bench/scale.py`` runs
a few hundred real executions through the API and the operator and makes the rest here,
with the operator stopped, each from a real finished execution of the same run (the
*template*) and the same writes the real path makes, in the same order:

1. the OverseerExecution, built by the one builder the API uses
   (:func:`overseer.core.execution_resource.build_execution`: API trigger, the caller in
   ``overseer.dev/created-by``, the job's definition and commit, the parameters the
   real executions were given) and created;
2. kopf's ``last-handled-configuration`` annotation, computed by kopf's own diff-base
   storage with the operator's prefix from the object as created, merge-patched as kopf
   does after the creation handler (so a restarted operator resumes it as handled);
3. its output written through the archive the operator uses
   (:class:`overseer.archive_local.LocalArchive`: ``begin`` the pod, ``append`` the
   frames, ``commit`` complete), one line of stdout as the job would print it;
4. the status, through the status subresource: the template's, with every time moved
   by the same amount to this execution's own, its names and uid in place of the
   template's, and the archive's location and sizes;
5. the OverseerJob's ``lastExecution``/``lastStatus`` through the operator's own
   :func:`overseer.operator.last_execution.report_on_job`;
6. the ``overseer.dev/settled`` label, the operator's own merge patch
   (:func:`overseer.core.settlement.plan_label`, guarded by the version step 4 wrote),
   as the operator labels a settled execution (it then leaves the operator's watch).

At most ``concurrency`` executions are in flight (the API server shares the 2 cores).
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import json
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import kopf

from overseer import archive_local, kube
from overseer.core import execution_resource, names, settlement
from overseer.crd import execution as execution_
from overseer.operator import handlers, last_execution
from overseer_library import protocol

SEED_FIELD_MANAGER = "overseer-bench-seed"
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def diffbase_storage() -> kopf.AnnotationsDiffBaseStorage:
    """kopf's diff-base storage as ``overseer.operator.handlers.configure`` sets it."""
    return kopf.AnnotationsDiffBaseStorage(
        prefix=handlers.KOPF_PREFIX, key="last-handled-configuration"
    )


def handled_annotation(body: Mapping[str, Any]) -> dict[str, Any]:
    """The merge patch kopf writes once an object's creation was handled."""
    storage = diffbase_storage()
    essence = storage.build(body=kopf.Body(dict(body)))
    patch = kopf.Patch()
    storage.store(body=kopf.Body(dict(body)), patch=patch, essence=essence)
    return dict(patch)


def check_template(template: Mapping[str, Any]) -> str:
    """Whether the annotation computed here for the real execution is the one kopf wrote,
    and whether the operator labelled the real one settled (the seeding labels each)."""
    annotations = template["metadata"].get("annotations") or {}
    key = f"{handlers.KOPF_PREFIX}/last-handled-configuration"
    # kopf wrote it before the settled label came (its essence holds the labels).
    as_handled = copy.deepcopy(dict(template))
    (as_handled["metadata"].get("labels") or {}).pop(settlement.SETTLED_LABEL, None)
    computed = handled_annotation(as_handled)["metadata"]["annotations"][key]
    if key not in annotations:
        return "the real execution has no kopf annotation"
    same = json.loads(annotations[key]) == json.loads(computed)
    said = "the same as kopf wrote on a real one" if same else "DIFFERS from kopf's on a real one"
    labelled = settlement.is_labelled(template)
    return f"{said}; the real one {'is' if labelled else 'is NOT'} labelled settled"


def shift_times(value: Any, delta: timedelta) -> Any:
    """VALUE with every RFC 3339 time in it moved by DELTA (kept in the same form)."""
    if isinstance(value, dict):
        return {k: shift_times(v, delta) for k, v in value.items()}
    if isinstance(value, list):
        return [shift_times(v, delta) for v in value]
    if isinstance(value, str) and TIME.match(value):
        moved = datetime.fromisoformat(value.replace("Z", "+00:00")) + delta
        text = moved.astimezone(UTC).isoformat()
        if value.endswith("Z"):
            text = text.replace("+00:00", "Z")
        if "." not in value:
            text = re.sub(r"\.\d+", "", text)
        return text
    return value


def replace_text(value: Any, replacements: Mapping[str, str]) -> Any:
    """VALUE with the template's names and uid replaced in every string."""
    if isinstance(value, dict):
        return {k: replace_text(v, replacements) for k, v in value.items()}
    if isinstance(value, list):
        return [replace_text(v, replacements) for v in value]
    if isinstance(value, str):
        for old, new in replacements.items():
            value = value.replace(old, new)
    return value


def seeded_status(
    template: Mapping[str, Any],
    created: Mapping[str, Any],
    location: str,
    sizes: Mapping[str, int],
) -> dict[str, Any]:
    """The template's status moved to the seeded execution: times, names, archive."""
    old, new = template["metadata"], created["metadata"]
    delta = _time(new["creationTimestamp"]) - _time(old["creationTimestamp"])
    status = replace_text(
        shift_times(copy.deepcopy(template["status"]), delta),
        {
            old["name"]: new["name"],
            old["uid"]: new["uid"],
            template["spec"]["executionId"]: created["spec"]["executionId"],
        },
    )
    status.pop("deliveries", None)  # the seeded job's hooks are not the template's
    archive = status["archive"]
    archive["location"] = location
    archive["stdout"] = {"size": sizes["stdout"]}
    archive["stderr"] = {"size": sizes["stderr"]}
    return status


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclasses.dataclass(frozen=True)
class Planned:
    """One execution to seed: its job (as listed), parameters and stdout."""

    job: Mapping[str, Any]
    parameters: Mapping[str, str]
    stdout: bytes


@dataclasses.dataclass
class Seeder:
    """Seeds executions like the template (see the module's docstring)."""

    client: kube.Kube
    archive: archive_local.LocalArchive
    template: Mapping[str, Any]
    caller: str
    done: int = 0

    async def seed(self, planned: Planned) -> None:
        execution_id = names.execution_id(datetime.now(UTC))  # its creation time, as the API
        body = execution_resource.build_execution(
            planned.job,
            execution_id,
            trigger=execution_.Trigger(type="api"),
            parameters=planned.parameters,
            annotations={execution_resource.CREATED_BY_ANNOTATION: self.caller},
        )
        finalizers = self.template["metadata"].get("finalizers")
        if finalizers:
            body["metadata"]["finalizers"] = list(finalizers)
        created = await self.client.create(body)
        if created is None:
            raise RuntimeError(f"execution {body['metadata']['name']} exists already")
        namespace, name = created["metadata"]["namespace"], created["metadata"]["name"]
        created = await self.client.patch_merge(
            execution_.KIND.kind, namespace, name, handled_annotation(created)
        )
        sizes = await asyncio.to_thread(self._write_output, created, planned.stdout)
        location = self.archive.location(namespace, name)
        status = seeded_status(self.template, created, location, sizes)
        settled = await self.client.patch_status(execution_.KIND.kind, namespace, name, status)
        await last_execution.report_on_job(
            self.client, namespace, str(planned.job["metadata"]["name"]),
            execution_id, str(status["phase"]),
        )  # fmt: skip
        label = settlement.plan_label(settled)
        if label is None:
            raise RuntimeError(f"execution {name} is not settled as seeded: {status}")
        await self.client.patch_merge(execution_.KIND.kind, namespace, name, label)
        self.done += 1

    def _write_output(self, created: Mapping[str, Any], stdout: bytes) -> dict[str, int]:
        """The output through the operator's archive, as its follower leaves it."""
        meta = created["metadata"]
        writer = self.archive.open_writer(meta["namespace"], meta["name"], uid=meta["uid"])
        try:
            pod = replace_text(
                self.template["status"]["podName"],
                {self.template["metadata"]["name"]: meta["name"]},
            )
            writer.begin(pod)
            writer.append(protocol.Output(seq=2, stream="stdout", data=stdout))
            writer.commit(3, complete=True)
        finally:
            writer.close()
        return {"stdout": len(stdout), "stderr": 0}


async def seed_all(
    seeder: Seeder, planned: list[Planned], concurrency: int, progress: float
) -> float:
    """Seed every planned execution, CONCURRENCY at a time; the seconds it took."""
    queue: asyncio.Queue[Planned] = asyncio.Queue()
    for item in planned:
        queue.put_nowait(item)
    started = time.monotonic()

    async def worker() -> None:
        while not queue.empty():
            await seeder.seed(queue.get_nowait())

    async def report() -> None:
        while True:
            await asyncio.sleep(progress)
            took = time.monotonic() - started
            print(f"  seeded {seeder.done}/{len(planned)} after {took:.0f}s", flush=True)

    reporter = asyncio.create_task(report())
    try:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    finally:
        reporter.cancel()
    return time.monotonic() - started


def run_seed(
    kubeconfig: Path,
    archive_root: Path,
    template: Mapping[str, Any],
    planned: list[Planned],
    *,
    concurrency: int,
    progress: float,
) -> tuple[float, int]:
    """Seed PLANNED; (seconds, API writes)."""

    async def go() -> tuple[float, int]:
        client = kube.Kube.connect(str(kubeconfig), field_manager=SEED_FIELD_MANAGER)
        try:
            caller = str(
                template["metadata"]["annotations"][execution_resource.CREATED_BY_ANNOTATION]
            )
            seeder = Seeder(client, archive_local.LocalArchive(archive_root), template, caller)
            seconds = await seed_all(seeder, planned, concurrency, progress)
            return seconds, sum(client.writes.values())
        finally:
            await client.close()

    return asyncio.run(go())
