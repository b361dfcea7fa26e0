"""Plan a repository sync: which objects to create, update, delete or leave alone.

Pure: no I/O, no Kubernetes types. Objects are named plain dicts, so the plan works
with whatever resource model renders them.

Rules:

- Each written body carries the hash of its spec in the ``overseer.dev/spec-hash``
  annotation (and its file in ``overseer.dev/source-file``); an object whose stored
  hash and file equal the desired ones is unchanged, so a sync with no change in git
  makes no API write at all.
- ``spec.active`` belongs to the API (DELETE/PUT flip it): it is stripped from every
  body sent for server-side apply and ignored by :func:`hash_spec`, so a sync never
  undoes what the API set.
- An object whose file failed to parse in this commit is neither updated nor
  deleted: a typo in one file must not delete its jobs. If another, valid file now
  defines the same name, that definition wins.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Collection, Mapping
from typing import Any

REQUESTED_SYNC_ANNOTATION = "overseer.dev/requested-sync"
"""Set (to the request's time) on a repository to have it synced now: POST /sync, push hooks."""
REQUESTED_BY_ANNOTATION = "overseer.dev/requested-sync-by"
"""Who asked for the last requested sync (a caller, or ``hook:<provider>``)."""
SPEC_HASH_ANNOTATION = "overseer.dev/spec-hash"
SOURCE_FILE_ANNOTATION = "overseer.dev/source-file"
API_OWNED_SPEC_FIELDS = frozenset({"active"})
HASH_LENGTH = 32


def hash_spec(spec: Mapping[str, Any]) -> str:
    """A stable digest of a spec: sha256 of canonical JSON, without API-owned fields.

    Key order and whitespace do not matter; any change of value does.
    """
    kept = {key: value for key, value in spec.items() if key not in API_OWNED_SPEC_FIELDS}
    canonical = json.dumps(
        kept, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:HASH_LENGTH]


@dataclasses.dataclass(frozen=True)
class DesiredObject:
    """An object the current commit defines: its full body and its spec's hash."""

    body: Mapping[str, Any]
    spec_hash: str
    source_file: str | None = None


@dataclasses.dataclass(frozen=True)
class ExistingObject:
    """What the planner needs of an object already in the cluster."""

    spec_hash: str | None
    source_file: str | None
    metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    display_name: str | None = None
    active: bool = True
    """``spec.active``: False once the API deactivated the job."""


@dataclasses.dataclass(frozen=True)
class Write:
    """One server-side apply: the object's name and the body to send."""

    name: str
    body: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Plan:
    """The difference between what git defines and what the cluster holds."""

    create: tuple[Write, ...] = ()
    update: tuple[Write, ...] = ()
    delete: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    kept_because_file_failed: tuple[str, ...] = ()

    @property
    def writes(self) -> tuple[Write, ...]:
        """Every body to apply: creations then updates."""
        return self.create + self.update

    @property
    def is_noop(self) -> bool:
        """True when carrying out the plan makes no API call."""
        return not (self.create or self.update or self.delete)


def plan_sync(
    desired: Mapping[str, DesiredObject],
    failed_files: Collection[str],
    existing: Mapping[str, ExistingObject],
) -> Plan:
    """Compare the objects a commit defines with those that exist; names sorted."""
    create: list[Write] = []
    update: list[Write] = []
    unchanged: list[str] = []
    for name in sorted(desired):
        want = desired[name]
        have = existing.get(name)
        if have is None:
            create.append(Write(name, build_apply_body(name, want)))
        elif have.spec_hash != want.spec_hash or (
            want.source_file is not None and have.source_file != want.source_file
        ):
            update.append(Write(name, build_apply_body(name, want)))
        else:
            unchanged.append(name)
    failed = set(failed_files)
    delete: list[str] = []
    kept: list[str] = []
    for name in sorted(set(existing) - set(desired)):
        (kept if existing[name].source_file in failed else delete).append(name)
    return Plan(tuple(create), tuple(update), tuple(delete), tuple(unchanged), tuple(kept))


def build_apply_body(name: str, desired: DesiredObject) -> dict[str, Any]:
    """The body to server-side apply: the hash annotations added, API fields left out.

    New dicts down to what changes (the body, its metadata and annotations, its spec);
    the values below are the desired body's own, shared, not copied (10,000 jobs held
    twice made the sync's peak memory): neither body is changed afterwards.
    """
    body = dict(desired.body)
    spec = body.get("spec")
    if isinstance(spec, dict) and not API_OWNED_SPEC_FIELDS.isdisjoint(spec):
        body["spec"] = {k: v for k, v in spec.items() if k not in API_OWNED_SPEC_FIELDS}
    metadata = dict(body.get("metadata") or {})
    metadata.setdefault("name", name)
    annotations = dict(metadata.get("annotations") or {})
    annotations[SPEC_HASH_ANNOTATION] = desired.spec_hash
    if desired.source_file is not None:
        annotations[SOURCE_FILE_ANNOTATION] = desired.source_file
    metadata["annotations"] = annotations
    body["metadata"] = metadata
    return body


def build_sync_request(when: float, who: str) -> dict[str, Any]:
    """The merge patch that asks the operator to sync a repository now, saying who asked.

    The operator reacts to any change of the requested-sync annotation, so each request
    carries its own time (seconds since the epoch, as ``kubectl annotate`` scripts do).
    """
    return {
        "metadata": {
            "annotations": {REQUESTED_SYNC_ANNOTATION: f"{when:.6f}", REQUESTED_BY_ANNOTATION: who}
        }
    }
