"""Webhook deliveries: post each status event an execution owes; record every attempt.

:meth:`Deliveries.notice` sees every watch event of every OverseerExecution (the
listing after an operator start included). When the execution's frozen definition
has ``hooks`` and the events in its status owe deliveries
(:func:`overseer.core.webhooks.plan_deliveries`), it starts a *lane* per URL: a task
that sends that URL's owed events one at a time, in event order, until none is owed.

Each round of a lane re-reads the execution (never a watch body that may be older
than the lane's own last write), takes the first delivery owed to its URL, and
either sends it (:func:`overseer.webhooks.send`, one attempt, at most
``concurrency`` attempts in flight over all lanes) or, when the record says to try
later, waits on an asyncio timer until ``nextAttemptAt`` (or until a watch event
wakes it). No polling: a lane with nothing owed ends, and the next event starts it.

Every attempt's record is folded into ``status.deliveries``
(:func:`overseer.core.delivery_records.merge_records`) under the execution's lock,
the :class:`~overseer.operator.context.Tracker`'s that the observe path holds
while it writes the status, after re-reading the execution, and written as a merge
patch of ``deliveries`` alone: neither writer undoes the other's.

At least once: a delivery stays owed until a final record (Delivered, Failed,
GivenUp, Gone) is written. An operator stopped between the receiver's answer and that
write sends it again after its restart, under the same ``webhook-id``. A refused URL
or a rejected delivery is Failed at once, with a Warning Event on the execution, and
never retried; a failing one is retried up to the horizon, then GivenUp; a ``410
Gone`` ends its URL's lane for the execution. Each comes with a Warning Event.

Isolation: besides ``concurrency`` over all lanes, at most ``host_concurrency``
attempts are in flight to one host (scheme, host and port). A lane takes its host's
slot before a shared one, so the lanes of a receiver that hangs wait on their host's
slots, never on the shared ones: they hold at most ``host_concurrency`` of those, and
another receiver waits for nothing but its own answer.

Each namespace signs with its own secret (:mod:`overseer.operator.signing`). Where
there is none, nothing is sent unsigned: the delivery is recorded Pending with the
reason, retried with backoff like a failing receiver (so it goes out, signed, once the
namespace's Secret exists), and a ``WebhookNotSigned`` Warning Event says so once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pydantic

from overseer import errors, kube_client, webhooks
from overseer.core import backoff, delivery_records, execution_phase
from overseer.core import webhooks as core
from overseer.crd import base
from overseer.crd import execution as execution_
from overseer.operator import context, events, metrics, signing
from overseer.operator.settings import Settings

log = logging.getLogger(__name__)

Lane = tuple[context.Key, str]
"""One execution and one URL: its deliveries go one at a time, in event order."""

TERMINAL_HOLD = timedelta(seconds=30)
"""Longest a terminal event waits for the execution's log to be read (see _hold)."""
MAX_HELD = 10_000
"""Events this process remembers holding (memory stays bounded)."""
REFINE_HOLD = timedelta(seconds=5)
"""Longest a start or terminal event on a whole second (the pod status's time) waits, from
that time, for the supervisor's frame to give it microseconds (see _hold)."""


class Deliveries:
    """The lanes of this process; build once at start-up, :meth:`close` at shutdown."""

    def __init__(
        self,
        client: kube_client.KubeClient,
        settings: Settings,
        tracker: context.Tracker,
        post_event: events.EventPoster,
        *,
        http: httpx.AsyncClient | None = None,
        output: context.OutputHook | None = None,
        fence: Callable[[], None] | None = None,
    ) -> None:
        self._client = client
        self._fence = fence or (lambda: None)
        self._settings = settings
        self._webhooks = settings.webhooks
        self._policy = settings.webhooks.send_policy
        self._tracker = tracker
        self._post_event = post_event
        self._http = http or webhooks.new_client(self._policy)
        self._slots = asyncio.Semaphore(settings.webhooks.concurrency)
        self._hosts = _HostSlots(settings.webhooks.host_concurrency)
        self._resolver = webhooks.Resolver()
        self._signing = signing.SigningSecrets(client, settings.webhooks)
        self._lanes: dict[Lane, asyncio.Task[None]] = {}
        self._wake: dict[Lane, asyncio.Event] = {}
        self._output = output or context.NoOutput()
        self._held_since: dict[tuple[context.Key, str], datetime] = {}

    def notice(self, body: Mapping[str, Any], *, deleted: bool = False) -> None:
        """An execution as a watch event shows it: start (or wake) the lanes it needs."""
        metadata = body.get("metadata") or {}
        key = context.Key(str(metadata.get("namespace")), str(metadata.get("name")))
        if deleted:
            for lane in [lane for lane in self._lanes if lane[0] == key]:
                self._lanes.pop(lane).cancel()
                self._wake.pop(lane, None)
            return
        spec = body.get("spec") or {}
        if not delivery_records.hooks_of(spec):
            return
        try:
            owed = delivery_records.plan_from_status(spec, body.get("status"))
        except pydantic.ValidationError:
            return  # not a status this operator wrote; the observe path will rewrite it
        for url in dict.fromkeys(o.url for o in owed):
            lane = (key, url)
            if lane in self._lanes:
                self._wake[lane].set()
                continue
            self._wake[lane] = asyncio.Event()
            self._lanes[lane] = asyncio.create_task(
                self._run(lane), name=f"webhooks {key} {core.display_url(url)}"
            )

    async def close(self) -> None:
        """Stop every lane (an attempt in flight is sent again after a restart)."""
        tasks = list(self._lanes.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._http.aclose()
        self._resolver.close()

    @property
    def lanes(self) -> frozenset[Lane]:
        """The lanes running now (for tests and debugging)."""
        return frozenset(self._lanes)

    async def _run(self, lane: Lane) -> None:
        key, url = lane
        wake = self._wake[lane]
        failures = 0
        try:
            while True:
                wake.clear()
                try:
                    until = await self._step(key, url)
                    failures = 0
                except errors.KubeError as error:
                    delay = backoff.delay(
                        failures,
                        first=self._settings.retry_min,
                        ceiling=self._settings.retry_max,
                    )
                    failures += 1
                    log.warning(
                        "webhooks of execution %s: %s; trying again in %.0fs",
                        key,
                        error.message,
                        delay,
                    )
                    until = datetime.now(UTC) + timedelta(seconds=delay)
                except Exception:
                    # A bug, not the receiver's or the API's doing: say so, and let the
                    # next watch event of the execution start the lane again.
                    log.exception("webhooks of execution %s to %s", key, core.display_url(url))
                    return
                if until is None:
                    if wake.is_set():
                        continue  # a watch event came in while this lane looked: look again
                    return
                if until is not _NOW:
                    delay = (until - datetime.now(UTC)).total_seconds()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wake.wait(), timeout=max(delay, 0.0) + 0.05)
        finally:
            # Synchronous with the last look above: a notice after it starts a new lane.
            if self._lanes.get(lane) is asyncio.current_task():
                del self._lanes[lane]
                self._wake.pop(lane, None)

    async def _step(self, key: context.Key, url: str) -> datetime | None:
        """One round: None when nothing is owed to ``url``, else when to look again."""
        body = await self._client.get(execution_.KIND.kind, key.namespace, key.name)
        if body is None:
            return None
        spec = body.get("spec") or {}
        try:
            owed = delivery_records.plan_from_status(spec, body.get("status"))
        except pydantic.ValidationError as error:
            log.warning("webhooks of execution %s: its status is unreadable: %s", key, error)
            return None
        head = delivery_records.next_in_lane(owed, url)
        if head is None:
            return None
        if (held := self._hold(key, body, head)) is not None:
            return held
        until = delivery_records.wait_until(head, datetime.now(UTC))
        if until is not None:
            return until
        return await self._attempt(key, body, head)

    def _hold(self, key: context.Key, body: Mapping[str, Any], head: core.Owed) -> datetime | None:
        """When to look again, while a start or terminal event waits for the log.

        A start or terminal time on a whole second comes from the pod status, read before
        the supervisor's frame: held at least :data:`REFINE_HOLD` after it, and while the
        log is still being read, up to :data:`TERMINAL_HOLD` after this process first
        held it (each operator reads the log again from its start: after a run of
        restarts the frame may come late), so the frame's microseconds go out
        (receivers order by ``time``) and an attempt repeated by the next operator
        carries the very body of the first. And a terminal event waits for the log to be
        archived to its end (the status says the end once the exit frame is read, and
        its custom events are in it, see ``executions._end_waits_for_log``), so that a
        receiver told ``complete`` reads the whole output; at most :data:`TERMINAL_HOLD`
        after the end, so a log that cannot be read delays it only.
        """
        event = head.event
        terminal = event.status in execution_phase.TERMINAL_STATUSES
        if not terminal and event.status != execution_phase.START:
            return None
        now = datetime.now(UTC)
        when = event.time if event.time.tzinfo else event.time.replace(tzinfo=UTC)
        held = (key, event.id or event.status)
        since = self._held_since.setdefault(held, now)
        until = self._hold_until(key, body, when, since, terminal=terminal)
        if until is None:
            self._held_since.pop(held, None)
        elif len(self._held_since) > MAX_HELD:
            del self._held_since[next(iter(self._held_since))]
        return until

    def _hold_until(
        self,
        key: context.Key,
        body: Mapping[str, Any],
        when: datetime,
        since: datetime,
        *,
        terminal: bool,
    ) -> datetime | None:
        """:meth:`_hold` for an event at ``when``, held by this process since ``since``."""
        now = datetime.now(UTC)
        coarse = when.microsecond == 0  # the pod status's time: a frame may refine it
        if coarse and now - when < REFINE_HOLD:
            return now + timedelta(seconds=0.5)
        if not (coarse or terminal):
            return None
        if now - (max(when, since) if coarse else when) > TERMINAL_HOLD:
            return None
        status = body.get("status") or {}
        if self._output.settled(key, status.get("podName"), False):
            return None
        return now + timedelta(seconds=0.5 if coarse else 1)

    async def _attempt(
        self, key: context.Key, body: Mapping[str, Any], head: core.Owed
    ) -> datetime | None:
        """Send ``head`` once and record the outcome; None to stop the lane."""
        spec = body.get("spec") or {}
        url = head.url
        message = core.build_message(
            head,
            job=delivery_records.job_name(spec),
            execution_id=str(spec.get("executionId", "")),
            execution_uid=str(body["metadata"].get("uid", "")),
            api_url=self._webhooks.api_url,
            namespace=key.namespace,
        )
        result = await self._send(key.namespace, message)
        if not await self._record(key, result.record):
            return None  # nothing changed (the execution is gone): stop rather than loop
        state = result.record.status
        if isinstance(result.error, errors.WebhookNotSignedError) and not message.attempts:
            self._post_event(body, "Warning", "WebhookNotSigned", result.error.message)
        elif state in {"Failed", "GivenUp", "Gone"}:
            reason = f"Webhook{result.error.reason}" if result.error else "WebhookFailed"
            self._post_event(
                body,
                "Warning",
                "WebhookGivenUp" if state == "GivenUp" else reason,
                f"webhook {head.event.status} to {core.display_url(url)} "
                f"{'given up' if state == 'GivenUp' else 'failed'}: {result.record.last_error}",
            )
        return _NOW

    async def _send(self, namespace: str, message: core.Message) -> webhooks.Result:
        """One attempt, signed with the namespace's secret; none: recorded, not sent."""
        try:
            secret = await self._signing.secret_for(namespace)
        except errors.WebhookError as error:  # no secret for the namespace, or a malformed one
            return webhooks.not_sent(message, error, self._policy)
        async with self._hosts.hold(message.url), self._slots:  # the host's first: see above
            self._fence()  # a deposed leader sends nothing more (raises NotLeaderError)
            started = time.monotonic()
            result = await webhooks.send(
                message, secret, self._http, self._policy, resolver=self._resolver
            )
        metrics.webhook_attempted(result.record.status, time.monotonic() - started)
        return result

    async def _record(self, key: context.Key, record: execution_.Delivery) -> bool:
        """Fold ``record`` into ``status.deliveries``; whether anything was written."""
        async with self._tracker.hold(key):
            body = await self._client.get(execution_.KIND.kind, key.namespace, key.name)
            if body is None:
                return False
            current = [
                execution_.Delivery.model_validate(d)
                for d in (body.get("status") or {}).get("deliveries") or ()
            ]
            merged = delivery_records.merge_records(current, [record])
            if merged == current:
                return False
            await self._client.patch_status(
                execution_.KIND.kind,
                key.namespace,
                key.name,
                {"deliveries": [base.to_body(d) for d in merged]},
            )
            return True


class _HostSlots:
    """A semaphore per host (scheme, host and port), dropped once nobody holds or awaits it."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._slots: dict[str, tuple[asyncio.Semaphore, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, url: str) -> AsyncIterator[None]:
        host = core.display_url(url)  # scheme://host:port/…, the path left out
        slot, users = self._slots.get(host, (asyncio.Semaphore(self._limit), 0))
        self._slots[host] = (slot, users + 1)
        try:
            async with slot:
                yield
        finally:
            slot, users = self._slots[host]
            if users == 1:
                del self._slots[host]
            else:
                self._slots[host] = (slot, users - 1)


_NOW = datetime.min.replace(tzinfo=UTC)
"""Look again at once (an attempt was made and recorded)."""
