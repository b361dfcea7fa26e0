"""The API server's audit log, as the benchmarks read it: write calls in a namespace, by client.

The local cluster's API server logs every write (``hack/cluster.sh``'s audit policy);
a benchmark takes a :class:`AuditMark` before a phase and reads what was written after.
"""

from __future__ import annotations

import collections
import dataclasses
import json
from pathlib import Path
from typing import Any

WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})


@dataclasses.dataclass(frozen=True)
class AuditMark:
    """A point in the API server's audit log, which survives one rotation."""

    path: Path
    inode: int
    offset: int

    @classmethod
    def now(cls, path: Path) -> AuditMark:
        stat = path.stat()
        return cls(path, stat.st_ino, stat.st_size)

    def writes_since(self, namespace: str, having: bytes = b"") -> list[dict[str, Any]]:
        """Write calls in NAMESPACE audited after this mark (whose line holds HAVING)."""
        parts: list[tuple[Path, int]] = []
        if self.path.stat().st_ino == self.inode:
            parts.append((self.path, self.offset))
        else:  # rotated: the old file keeps its inode under a timestamped name
            for old in self.path.parent.glob(f"{self.path.stem}-*"):
                if old.stat().st_ino == self.inode:
                    parts.append((old, self.offset))
            parts.append((self.path, 0))
        writes = []
        for path, offset in parts:
            with path.open("rb") as log:
                log.seek(offset)
                for line in log:
                    if namespace.encode() not in line or having not in line:
                        continue
                    entry = json.loads(line)
                    if (
                        entry.get("stage") == "ResponseComplete"
                        and entry.get("verb") in WRITE_VERBS
                        and (entry.get("objectRef") or {}).get("namespace") == namespace
                    ):
                        writes.append(entry)
        return writes


def writer(entry: dict[str, Any]) -> str:
    """Who made an audited call: this benchmark (kubectl), the cluster, or the operator."""
    agent = str(entry.get("userAgent", ""))
    if agent.startswith("kubectl"):
        return "kubectl"
    if str((entry.get("user") or {}).get("username", "")).startswith("system:"):
        return "cluster"
    return "operator"


def describe(writes: list[dict[str, Any]]) -> list[str]:
    counts: collections.Counter[str] = collections.Counter()
    for entry in writes:
        ref = entry.get("objectRef") or {}
        resource = ref.get("resource", "?") + (
            f"/{ref['subresource']}" if "subresource" in ref else ""
        )
        agent = str(entry.get("userAgent", "?")).split(" ")[0]
        counts[f"{writer(entry)}: {entry['verb']} {resource} ({agent})"] += 1
    return [f"{n:>6}  {what}" for what, n in sorted(counts.items())]
