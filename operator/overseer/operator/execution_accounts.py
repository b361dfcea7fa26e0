"""The executions' ServiceAccount: created once per namespace, and again when a Job waits.

Every execution's pod runs as ``overseer-execution`` (:mod:`overseer.core.execution_account`).
The operator may only ``create`` ServiceAccounts (no get, list or watch: least privilege,
docs/security.rst), so it cannot look for it. It used to create it before every
execution's Job, and from the second execution of a namespace on, the API server refused
(409): one wasted write per execution. :class:`ExecutionAccounts` remembers, per
process, the namespaces where it created it or found it there (a 409), at most
:data:`~overseer.core.execution_account.MAX_REMEMBERED`, and creates nothing there
again: the common path costs no call. Concurrent first executions of a namespace share
one create. A new process (a restart, a new leader) remembers nothing: its first
execution of each namespace creates it again, or gets a 409.

Someone may delete the ServiceAccount by hand. The Job controller then cannot create the
pod (a ``FailedCreate`` Event on the Job: "serviceaccount ... not found") and tries again
with backoff, up to a minute apart. So an observation of an execution whose Job has had
no pod for ``OVERSEER_EXECUTION_ACCOUNT_GRACE`` (1 minute) since it was created
(:meth:`ExecutionAccounts.check`) creates the ServiceAccount again, unless that was done
or found within the grace (at most one create per grace and namespace: a 409 when a
ResourceQuota or a webhook holds the pod back instead), and the Job controller's next
try makes the pod. Such an execution waits about the grace, plus up to a minute.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from overseer import kube_client
from overseer.core import execution_account, execution_facts

log = logging.getLogger(__name__)


class ExecutionAccounts:
    """Which namespaces have the executions' ServiceAccount; build once per process."""

    def __init__(
        self,
        *,
        limit: int = execution_account.MAX_REMEMBERED,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._remembered = execution_account.Remembered(limit)
        self._clock = clock
        self._creating: dict[str, asyncio.Task[None]] = {}

    async def ensure(self, client: kube_client.KubeClient, namespace: str) -> None:
        """Create the namespace's ServiceAccount, unless this process made or found it.

        Raises :class:`overseer.errors.KubeError` as ``client.create`` does.
        """
        if self._remembered.confirmed_at(namespace) is None:
            await self._create(client, namespace)

    async def check(
        self,
        client: kube_client.KubeClient,
        namespace: str,
        observed: execution_facts.Observed,
        grace: float,
        *,
        now: datetime | None = None,
    ) -> datetime | None:
        """When to observe the execution again for its Job still without a pod; None when
        it has one (or no Job). Past ``grace`` seconds of waiting, first create the
        namespace's ServiceAccount again (unless made or found within the grace)."""
        since = execution_account.waiting_for_pod_since(observed)
        if since is None:
            return None
        now, wait = now or datetime.now(UTC), timedelta(seconds=grace)
        if now < since + wait:
            return since + wait
        confirmed = self._remembered.confirmed_at(namespace)
        if confirmed is None or self._clock() - confirmed >= grace:
            log.warning(
                "namespace %s: a Job has had no pod for %.0fs; creating ServiceAccount %s "
                "again, in case it was deleted (see the Job's FailedCreate Events)",
                namespace,
                (now - since).total_seconds(),
                execution_account.NAME,
            )
            await self._create(client, namespace)
        return now + wait

    async def _create(self, client: kube_client.KubeClient, namespace: str) -> None:
        """One create per namespace at a time: concurrent callers wait for the same one."""
        creating = self._creating.get(namespace)
        if creating is None:
            creating = asyncio.ensure_future(self._send(client, namespace))
            self._creating[namespace] = creating
            creating.add_done_callback(lambda done: self._done(namespace, done))
        await asyncio.shield(creating)

    def _done(self, namespace: str, creating: asyncio.Task[None]) -> None:
        self._creating.pop(namespace, None)
        if not creating.cancelled():
            creating.exception()  # retrieved: its callers got it, if any still waited

    async def _send(self, client: kube_client.KubeClient, namespace: str) -> None:
        made = await client.create(execution_account.build_service_account(namespace))
        # Made (201) or there already (409, None): it exists either way, as of now.
        self._remembered.confirm(namespace, self._clock())
        if made is not None:
            log.info("namespace %s: created ServiceAccount %s", namespace, execution_account.NAME)
