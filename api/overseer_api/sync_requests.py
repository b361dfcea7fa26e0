"""Ask the operator to sync a repository now: the one way POST /sync and push hooks do it.

A merge patch of the repository's ``overseer.dev/requested-sync`` annotation (the
operator reacts to its change) with who asked, under the API's field manager.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from overseer.core import sync
from overseer.crd import repository as repository_


class Patcher(Protocol):
    async def patch_merge(
        self, kind: str, namespace: str, name: str, patch: dict[str, Any]
    ) -> dict[str, Any]: ...


async def request_sync(kube: Patcher, namespace: str, repository: str, who: str) -> float:
    """Request a sync of ``namespace/repository`` on behalf of ``who``; when it was asked.

    Raises :class:`overseer.kube.NotFoundError` when the repository does not exist.
    """
    when = time.time()
    patch = sync.build_sync_request(when, who)
    await kube.patch_merge(repository_.KIND.kind, namespace, repository, patch)
    return when
