"""``Idempotency-Key`` on POSTs: a request with a key the caller used before happens once.

``Idempotency.once`` runs an action (create an execution, request a sync) at most
once per (namespace, caller, key) for as long as keys live (``ttl``, 24 hours by
default), across API replicas and restarts, because the record is a claim object in
the cluster (``overseer.core.idempotency`` says what it holds):

1. Create the claim. The API server's create is atomic: of concurrent requests with
   one key exactly one succeeds and runs the action; its result (an execution's
   name) is then written into the claim.
2. A request that finds the claim compares request digests: another body or path
   is refused (:class:`~overseer.errors.IdempotencyKeyReusedError`, 422); the same
   one replays the recorded result, or waits (``wait`` seconds at most, then
   :class:`~overseer.errors.IdempotencyKeyBusyError`, 409) while the holder works.
3. A claim older than ``ttl`` is replaced (compare-and-swap on its resourceVersion,
   so two replicas never both take it). A claim still without a result after
   ``stale`` seconds lost its holder (a crash between create and record): the
   action's ``recover`` looks for what it made (executions carry the claim's name in
   a label), else the claim is taken over and the action runs.
4. An action that fails deletes its claim, so the client's retry with the same key
   starts afresh.

:meth:`Idempotency.collect` deletes expired claims; the app runs it periodically.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from overseer import errors
from overseer.core import idempotency as core
from overseer.crd import execution as execution_

log = logging.getLogger(__name__)

Action = Callable[[str], Awaitable[str]]
"""Does the work, given the claim's name (to label what it creates); returns the result."""
Recover = Callable[[str], Awaitable[str | None]]
"""Finds the result an abandoned claim's holder made, given the claim's name."""


class ClaimStore(Protocol):
    """What claims need of :class:`overseer.kube.Kube`."""

    async def create(self, body: dict[str, Any]) -> dict[str, Any] | None: ...

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None: ...

    async def replace(self, body: dict[str, Any]) -> dict[str, Any] | None: ...

    async def delete_unchanged(
        self, kind: str, namespace: str, name: str, resource_version: str
    ) -> bool: ...

    def list(
        self, kind: str, namespace: str, labels: Mapping[str, str] | None = None
    ) -> AsyncIterator[dict[str, Any]]: ...


@dataclasses.dataclass(frozen=True)
class Outcome:
    """The action's result, and whether this request replayed an earlier one."""

    result: str
    replayed: bool


Create = Callable[[dict[str, str]], Awaitable[str]]
"""Creates an execution with these labels (the claim's, or none); returns its name."""


class Idempotency:
    """Claims in the cluster: build one per process, with the settings, and pass it down."""

    def __init__(
        self,
        kube: ClaimStore,
        *,
        ttl: timedelta = timedelta(hours=24),
        wait: float = 10.0,
        stale: timedelta = timedelta(seconds=30),
        poll: float = 0.1,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._kube, self._ttl, self._wait, self._stale = kube, ttl, wait, stale
        self._poll, self._clock = poll, clock
        self._holder = f"{socket.gethostname()}/{os.getpid()}"

    async def once(
        self,
        namespace: str,
        caller: str,
        key: str,
        digest: str,
        *,
        action: Action,
        recover: Recover | None = None,
    ) -> Outcome:
        """Run ``action`` unless this key's request ran already; see the module docstring."""
        core.check_key(key)
        name = core.claim_name(namespace, caller, key)
        deadline = asyncio.get_running_loop().time() + self._wait
        while True:
            mine = core.Claim(namespace, name, digest, caller, self._clock())
            created = await self._kube.create(self._body(mine))
            if created is not None:
                return await self._act(core.parse_claim(created), action)
            found = await self._kube.get("Lease", namespace, name)
            if found is None:
                continue  # deleted since (its action failed): try to claim it again
            claim = core.parse_claim(found)
            decision = core.decide(claim, digest, self._clock(), self._ttl, self._stale)
            if decision is core.Decision.MISMATCH:
                raise errors.IdempotencyKeyReusedError(
                    "this Idempotency-Key was used for a request with another body or path; "
                    "use a new key for a new request"
                )
            if decision is core.Decision.REPLAY:
                assert claim.result is not None
                return Outcome(claim.result, replayed=True)
            if decision is core.Decision.RECOVER and recover is not None:
                made = await recover(name)
                if made is not None:
                    await self._record(claim, made)
                    return Outcome(made, replayed=True)
            if decision in {core.Decision.EXPIRED, core.Decision.RECOVER}:
                taken = dataclasses.replace(mine, resource_version=claim.resource_version)
                replaced = await self._kube.replace(self._body(taken))
                if replaced is not None:
                    return await self._act(core.parse_claim(replaced), action)
                continue  # another replica took it first: read it again
            if asyncio.get_running_loop().time() >= deadline:
                raise errors.IdempotencyKeyBusyError(
                    "a request with this Idempotency-Key is still being processed; "
                    "retry in a few seconds with the same key"
                )
            await asyncio.sleep(self._poll)

    async def run(
        self,
        namespace: str,
        caller: str,
        key: str | None,
        digest: str,
        action: Callable[[], Awaitable[str]],
    ) -> Outcome:
        """Run ``action`` once per ``key`` (always without one): for POSTs that create
        nothing to label, such as ``POST /sync``, whose result (a short JSON text) is kept
        in the claim and replayed as it was."""
        if key is None:
            return Outcome(await action(), replayed=False)

        async def act(claim: str) -> str:
            return await action()

        return await self.once(namespace, caller, key, digest, action=act)

    async def create_execution(
        self, namespace: str, caller: str, key: str | None, digest: str, create: Create
    ) -> Outcome:
        """Create an execution, once per ``key`` when there is one (the routes' entry).

        The execution carries the claim's name in a label, which is how an abandoned
        claim finds it (``recover``).
        """
        if key is None:
            return Outcome(await create({}), replayed=False)

        async def action(claim: str) -> str:
            return await create({core.CLAIM_LABEL: claim})

        async def recover(claim: str) -> str | None:
            labels = {core.CLAIM_LABEL: claim}
            async for found in self._kube.list(execution_.KIND.kind, namespace, labels):
                return str(found["metadata"]["name"])
            return None

        return await self.once(namespace, caller, key, digest, action=action, recover=recover)

    async def _act(self, claim: core.Claim, action: Action) -> Outcome:
        try:
            result = await action(claim.name)
        except BaseException:
            # Free the key: the client's retry with it must be able to run the action.
            assert claim.resource_version is not None
            await self._kube.delete_unchanged(
                "Lease", claim.namespace, claim.name, claim.resource_version
            )
            raise
        await self._record(claim, result)
        return Outcome(result, replayed=False)

    async def _record(self, claim: core.Claim, result: str) -> None:
        done = dataclasses.replace(claim, result=result)
        if await self._kube.replace(self._body(done)) is None:
            # Taken over as stale meanwhile: its new holder recovers the result by label.
            log.warning("idempotency claim %s/%s changed before its result was recorded",
                        claim.namespace, claim.name)  # fmt: skip

    def _body(self, claim: core.Claim) -> dict[str, Any]:
        return core.build_claim(claim, self._holder, self._ttl)

    async def collect(self, namespace: str) -> int:
        """Delete the expired claims of a namespace; how many went."""
        now, deleted = self._clock(), 0
        labels = {core.LABEL: core.LABEL_VALUE}
        async for found in self._kube.list("Lease", namespace, labels):
            claim = core.parse_claim(found)
            if core.expired(claim, now, self._ttl) and claim.resource_version:
                deleted += await self._kube.delete_unchanged(
                    "Lease", namespace, claim.name, claim.resource_version
                )
        return deleted

    async def collect_forever(self, namespaces: Sequence[str], every: float = 3600.0) -> None:
        """:meth:`collect` in each namespace every ``every`` seconds, until cancelled."""
        while True:
            for namespace in namespaces:
                try:
                    deleted = await self.collect(namespace)
                except errors.OverseerError as error:
                    log.warning("collecting idempotency claims in %s: %s", namespace, error.message)
                else:
                    if deleted:
                        log.info("deleted %d expired idempotency claims in %s", deleted, namespace)
            await asyncio.sleep(every)
