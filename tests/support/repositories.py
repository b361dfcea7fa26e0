"""Given / When / Then helpers for OverseerRepositories: credentials Secrets, conditions, Events.

Secrets are created the way docs/repositories.rst tells users to (``kubectl create secret
generic --from-file``, then ``kubectl label`` to mark them for Overseer).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support.cluster import Kube
from tests.support.overseer import eventually, jobs

CREDENTIALS_LABEL = "overseer.dev/git-credentials"
"""The label docs/repositories.rst tells users to put on a credentials Secret."""


def create_secret(
    kube: Kube,
    name: str,
    files: dict[str, str],
    folder: Path,
    type_: str = "Opaque",
    *,
    marked: bool = True,
) -> None:
    """``kubectl create secret generic NAME --from-file=KEY=...``, then mark it, as the docs show.

    ``marked``: label it ``overseer.dev/git-credentials=true``, which Overseer requires
    before it sends a Secret's credentials to a git server.
    """
    folder.mkdir(parents=True, exist_ok=True)
    options = []
    for key, content in files.items():
        path = folder / f"{name}.{key}"
        path.write_text(content)
        options.append(f"--from-file={key}={path}")
    kube.kubectl("create", "secret", "generic", name, f"--type={type_}", *options)
    if marked:
        mark_secret(kube, name)


def mark_secret(kube: Kube, name: str) -> None:
    """``kubectl label secret NAME overseer.dev/git-credentials=true``."""
    kube.kubectl("label", "secret", name, f"{CREDENTIALS_LABEL}=true")


def replace_secret_key(kube: Kube, name: str, key: str, value: str) -> None:
    kube.kubectl(
        "patch", "secret", name, "--type=merge", "-p", json.dumps({"stringData": {key: value}})
    )


def condition(kube: Kube, name: str, type_: str) -> dict[str, Any] | None:
    status = kube.get("overseerrepository", name).get("status") or {}
    return next((c for c in status.get("conditions", []) if c["type"] == type_), None)


def wait_for_synced(
    kube: Kube, name: str, status: str | None = None, reason: str | None = None
) -> dict[str, Any]:
    """The repository's Synced condition once it has ``status`` and ``reason`` (None: any)."""

    def check() -> dict[str, Any] | None:
        synced = condition(kube, name, "Synced")
        if synced and status in (None, synced["status"]) and reason in (None, synced["reason"]):
            return synced
        return None

    what = f"{name} Synced={status or 'any'} {reason or ''}"
    found: dict[str, Any] = eventually(check, 60, what)
    return found


def warning_events(kube: Kube, name: str, reason: str) -> list[dict[str, Any]]:
    def check() -> list[dict[str, Any]]:
        items = json.loads(
            kube.kubectl(
                "get", "events", "--field-selector", f"involvedObject.name={name}", "-o", "json"
            ).stdout
        )["items"]
        return [e for e in items if e["type"] == "Warning" and e["reason"] == reason]

    found: list[dict[str, Any]] = eventually(check, 30, f"a Warning {reason} Event on {name}")
    return found


def jobs_of(kube: Kube, repository_name: str) -> list[dict[str, Any]]:
    return [j for j in jobs(kube).values() if j["spec"]["source"]["repository"] == repository_name]
