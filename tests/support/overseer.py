"""Given / When / Then helpers for tests that drive Overseer's resources with kubectl."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from overseer.core import execution_resource, names
from overseer.crd import execution as execution_
from tests.support.cluster import Kube


def repository(name: str, url: str, interval: str = "1m", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "overseer.dev/v1alpha1",
        "kind": "OverseerRepository",
        "metadata": {"name": name},
        "spec": {"url": url, "interval": interval, **spec},
    }


def jobs(kube: Kube) -> dict[str, dict[str, Any]]:
    """OverseerJobs of the namespace by display name."""
    items = json.loads(kube.kubectl("get", "overseerjobs", "-o", "json").stdout)["items"]
    return {item["spec"]["displayName"]: item for item in items}


def eventually(check: Callable[[], Any], timeout: float = 60, what: str = "condition") -> Any:
    """Poll CHECK until it returns something truthy (kubectl has no watch for arbitrary state)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.5)


def wait_for_jobs(kube: Kube, names: set[str], timeout: float = 60) -> dict[str, dict[str, Any]]:
    def check() -> dict[str, dict[str, Any]] | None:
        found = jobs(kube)
        return found if set(found) == names else None

    result: dict[str, dict[str, Any]] = eventually(check, timeout, f"jobs {sorted(names)}")
    return result


def request_sync(kube: Kube, name: str) -> None:
    kube.kubectl(
        "annotate",
        "--overwrite",
        "overseerrepository",
        name,
        f"overseer.dev/requested-sync={time.time()}",
    )


def execution(
    job: dict[str, Any],
    execution_id: str | None = None,
    *,
    parameters: dict[str, str] | None = None,
    trigger: str = "manual",
    repeat_of: str | None = None,
    commit: str | None = None,
) -> dict[str, Any]:
    """An OverseerExecution of the OverseerJob JOB, as the API (or a person) would create it.

    ``commit`` should be the repository's ``status.commit``; the job's own
    ``source.commit`` (the default) is the same until a later commit leaves the job as
    it was.
    """
    return execution_resource.build_execution(
        job,
        execution_id or names.execution_id(datetime.now(UTC)),
        trigger=execution_.Trigger(type=trigger, repeat_of=repeat_of),
        parameters=parameters,
        commit=commit,
    )
