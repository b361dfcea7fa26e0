"""Build the ``bin/`` bundle of a commit: one immutable ConfigMap, and plan its cleanup.

Pure: files in, a manifest (plain dict) out. A pod mounts the bundle as a configMap
volume with :func:`volume_items`, which recreates the tree with executable modes.

Why a ConfigMap per commit: it is immutable (so an execution runs exactly the
scripts of its commit, even after a newer sync), the kubelet caches it cheaply, and
it needs no registry or extra storage. Its limit is 1 MiB of file content.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from overseer import errors

MAX_BUNDLE_BYTES = 1024 * 1024  # what the API server accepts for a ConfigMap's data
MAX_NAME = 253
MAX_KEY = 253
MAX_LABEL_VALUE = 63
SHORT_COMMIT = 12

LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_REPOSITORY = "overseer.dev/repository"
LABEL_COMMIT = "overseer.dev/commit"
ANNOTATION_REPOSITORY = "overseer.dev/repository"
ANNOTATION_COMMIT = "overseer.dev/commit"
ANNOTATION_ITEMS = "overseer.dev/bin-items"
COMPONENT = "bin-bundle"
MANAGER = "overseer"

_KEY_SAFE = re.compile(r"^[-._a-zA-Z0-9]+$")
_KEY_UNSAFE_CHARS = re.compile(r"[^-._a-zA-Z0-9]")
_DNS_UNSAFE_CHARS = re.compile(r"[^a-z0-9.-]")
_DNS_DOT_RUN = re.compile(r"[-.]*\.[-.]*")  # a label must not be empty nor end in "-"
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def bundle_name(repository: str, commit: str) -> str:
    """``<repository>-bin-<short commit>``, DNS-safe and at most 253 characters."""
    suffix = f"-bin-{commit[:SHORT_COMMIT].lower()}"
    base = _DNS_UNSAFE_CHARS.sub("-", repository.lower())
    base = _DNS_DOT_RUN.sub(".", base).strip("-.") or "repository"
    if len(base) + len(suffix) > MAX_NAME or base != repository:
        digest = _digest(repository, 8)
        base = base[: MAX_NAME - len(suffix) - len(digest) - 1].rstrip("-.")
        base = base or "repository"
        base = f"{base}-{digest}"
    return base + suffix


def bundle_key(path: str) -> str:
    """A ConfigMap key for a file path: the path itself when safe, else an escaped form.

    Keys allow only ``[-._a-zA-Z0-9]``; nested or odd paths become the path with
    unsafe characters replaced, plus a digest of the real path so keys never collide.
    """
    if _KEY_SAFE.match(path) and not path.startswith(".") and len(path) <= MAX_KEY:
        return path
    digest = _digest(path, 10)
    readable = _KEY_UNSAFE_CHARS.sub("_", path).lstrip(".")
    readable = readable[: MAX_KEY - len(digest) - 2]
    return f"_{readable}-{digest}" if readable else f"_{digest}"


def build_bundle(
    repository: str,
    namespace: str,
    commit: str,
    files: Iterable[tuple[str, int, bytes]],
    owner_references: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The immutable ConfigMap holding ``bin/`` at ``commit``.

    ``files`` are (path inside bin/, mode, content), as the git adapter reads them. An
    empty ``bin/`` gets an empty bundle all the same: an execution tells "no bin/ at
    that commit" from "that commit's bin/ is no longer kept" by the bundle's presence.
    Raises :class:`overseer.errors.BundleTooLargeError` (stalled) over 1 MiB.
    """
    entries = sorted(files)
    _check_size(repository, commit, entries)
    binary_data: dict[str, str] = {}
    items: list[dict[str, Any]] = []
    for path, mode, data in entries:
        key = bundle_key(path)
        if key in binary_data:
            raise errors.InvalidDefinitionError(
                f"bin/ file {path!r} maps to the same ConfigMap key as another file: rename it"
            )
        binary_data[key] = base64.b64encode(data).decode("ascii")
        items.append({"key": key, "path": path, "mode": 0o755 if mode & 0o111 else 0o644})
    metadata: dict[str, Any] = {
        "name": bundle_name(repository, commit),
        "namespace": namespace,
        "labels": {
            LABEL_MANAGED_BY: MANAGER,
            LABEL_COMPONENT: COMPONENT,
            LABEL_REPOSITORY: label_value(repository),
            LABEL_COMMIT: label_value(commit),
        },
        "annotations": {
            ANNOTATION_REPOSITORY: repository,
            ANNOTATION_COMMIT: commit,
            ANNOTATION_ITEMS: json.dumps(items, separators=(",", ":")),
        },
    }
    if owner_references:
        metadata["ownerReferences"] = [dict(ref) for ref in owner_references]
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata,
        "immutable": True,
        "binaryData": binary_data,
    }


def volume_items(bundle: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The ``items`` (key, path, mode) of a configMap volume that recreates ``bin/``."""
    annotations = (bundle.get("metadata") or {}).get("annotations") or {}
    items: list[dict[str, Any]] = json.loads(annotations.get(ANNOTATION_ITEMS) or "[]")
    return items


DEFAULT_KEPT_BUNDLES = 10
"""How many bundles a repository keeps at most, beyond those that must stay."""


def plan_bundle_gc(
    existing: Mapping[str, str],
    commits_in_use: Collection[str],
    commits_ran: Sequence[str] = (),
    keep: int = DEFAULT_KEPT_BUNDLES,
) -> list[str]:
    """Names of the bundles to delete.

    ``existing`` maps bundle names to their commit. ``commits_in_use`` (the synced
    commit and those of executions that may still start a pod) are always kept.
    ``commits_ran`` are the commits of ended executions that still exist, the most
    recent execution's first: a repeat of one reruns that commit, so they are kept
    too, newest first, as long as the repository keeps no more than ``keep`` bundles
    in all.
    """
    kept = {commit for commit in existing.values() if commit in set(commits_in_use)}
    for commit in commits_ran:
        if len(kept) >= keep:
            break
        if commit in existing.values():
            kept.add(commit)
    return sorted(name for name, commit in existing.items() if commit not in kept)


def _check_size(repository: str, commit: str, entries: list[tuple[str, int, bytes]]) -> None:
    total = sum(len(data) for _, _, data in entries)
    if total <= MAX_BUNDLE_BYTES:
        return
    largest = sorted(entries, key=lambda entry: len(entry[2]), reverse=True)[:3]
    listed = ", ".join(f"{path} ({len(data)} bytes)" for path, _, data in largest)
    raise errors.BundleTooLargeError(
        f"bin/ of repository {repository} at commit {commit[:SHORT_COMMIT]} holds {total} "
        f"bytes, over the {MAX_BUNDLE_BYTES} bytes (1 MiB) a ConfigMap can carry; largest: "
        f"{listed}. Move large files into the job's image or download them at run time"
    )


def label_value(value: str) -> str:
    """VALUE as a label value: itself when valid, else a cleaned prefix and a digest."""
    if len(value) <= MAX_LABEL_VALUE and _LABEL_VALUE.match(value):
        return value
    digest = _digest(value, 10)
    cleaned = re.sub(r"[^-A-Za-z0-9_.]", "-", value)[: MAX_LABEL_VALUE - len(digest) - 1]
    cleaned = cleaned.strip("-_.")
    return f"{cleaned}-{digest}" if cleaned else digest


def _digest(text: str, length: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]
