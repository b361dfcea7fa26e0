"""The webhook adapter: post one signed message to one URL, and say what happens next.

The only module that uses httpx. :func:`send` makes one attempt and returns the
updated :class:`overseer.crd.execution.Delivery` record (Delivered, Pending with its
next attempt, or Failed); it never raises for a failed delivery. The decisions
(payload, signature, backoff, URL policy) are pure, in :mod:`overseer.core.webhooks`.

DNS rebinding: the host name is resolved here, every address it resolves to is
checked against the URL policy, and the request goes to the first address itself
(the URL's host replaced by the IP), with the name kept in the ``Host`` header and as
the TLS server name (SNI and certificate check). No second resolution happens, so a
name cannot pass the check and then connect elsewhere. Connections are not kept
alive, so a TLS session verified for one name is never reused for another name on
the same address. Environment proxies are ignored (``trust_env=False``): a proxy
would resolve the name itself and defeat the check.

Name resolution runs on a thread pool of its own (:class:`Resolver`), never on
asyncio's default executor: git syncs run there (``asyncio.to_thread``), and a DNS
server that never answers for a hook's domain would otherwise hold its threads and
stall every sync. One lookup per host runs at a time, so a name that never resolves
holds one thread, whatever the number of deliveries waiting on it.

Redirects are not followed and count as a permanent failure: they could point
anywhere. ``410 Gone`` is final for the URL: nothing more is sent to it for the
execution (:func:`overseer.core.webhooks.plan_deliveries`). A failing attempt is tried
again with backoff up to the retry horizon (:mod:`overseer.core.delivery_retry`), then
recorded GivenUp. Response bodies are read up to a bound, only to quote them in the error:
the request asks for ``identity`` encoding and the bound applies to the bytes off the
wire, which are never decompressed, so a compressed "bomb" costs nothing.
The signing secret is never logged nor quoted, and URLs are shown as scheme, host and
port only, since hook URLs often carry a token in their path.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import functools
import ipaddress
import logging
import socket
import time
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import httpx

import overseer
from overseer import errors
from overseer.core import delivery_retry
from overseer.core import webhooks as core
from overseer.crd import execution as execution_

logger = logging.getLogger(__name__)

USER_AGENT = f"overseer/{overseer.__version__}"
_MAX_ERROR = 512


@dataclasses.dataclass(frozen=True)
class SendPolicy:
    """How deliveries are made: URL policy, retries, timeout of one attempt, bounds."""

    url: core.UrlPolicy = core.DEFAULT_URL_POLICY
    retry: delivery_retry.RetryPolicy = delivery_retry.DEFAULT_RETRY
    timeout: float = 10.0
    max_response_bytes: int = 4096


DEFAULT_POLICY = SendPolicy()


@dataclasses.dataclass(frozen=True)
class Result:
    """The outcome of one attempt: the record to store, and what the receiver said."""

    record: execution_.Delivery
    status_code: int | None = None
    error: errors.WebhookError | None = None

    @property
    def delivered(self) -> bool:
        return self.record.status == "Delivered"

    @property
    def retry(self) -> bool:
        """Whether another attempt is planned (at ``record.next_attempt_at``)."""
        return self.record.status == "Pending"


class _Answer(NamedTuple):
    status_code: int | None
    retry_after: timedelta | None
    error: errors.WebhookError | None


def new_client(policy: SendPolicy = DEFAULT_POLICY) -> httpx.AsyncClient:
    """The client :func:`send` expects: no redirects, no proxies, no keep-alive."""
    return httpx.AsyncClient(
        follow_redirects=False,
        trust_env=False,
        timeout=httpx.Timeout(policy.timeout),
        limits=httpx.Limits(max_keepalive_connections=0),
        headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
    )


async def send(
    message: core.Message,
    secret: str,
    client: httpx.AsyncClient,
    policy: SendPolicy = DEFAULT_POLICY,
    *,
    now: datetime | None = None,
    resolver: Resolver | None = None,
) -> Result:
    """Make one attempt to deliver ``message``; never raises for a failed delivery."""
    now = now or datetime.now(UTC)
    answer = _Answer(None, None, None)
    error: errors.WebhookError | None
    try:
        async with asyncio.timeout(policy.timeout):
            answer = await _post(
                message, secret, client, policy, now, resolver=resolver or _resolver()
            )
        error = answer.error
    except errors.WebhookError as exc:
        error = exc
    except TimeoutError:
        error = errors.WebhookTimeoutError(
            f"{core.display_url(message.url)} did not answer within {policy.timeout:g}s"
        )
    except Exception as exc:  # the adapter's boundary: no library error escapes unwrapped
        error = _wrap(exc, message.url, secret)
    if error is None:
        logger.info("webhook %s delivered to %s", message.key, core.display_url(message.url))
        return Result(
            record=execution_.Delivery(
                event_id=message.event_id,
                url=message.url,
                status="Delivered",
                attempts=message.attempts + 1,
                delivered_at=now,
                retry_since=message.retry_since,
                replays=message.replays,
            ),
            status_code=answer.status_code,
        )
    return _failed(message, error, answer, now=now, policy=policy, secret=secret)


def not_sent(
    message: core.Message,
    error: errors.WebhookError,
    policy: SendPolicy = DEFAULT_POLICY,
    *,
    now: datetime | None = None,
) -> Result:
    """The record of an attempt given up before sending (no signing secret, say): as a
    failed one, so a waiting error is retried with backoff up to the horizon."""
    return _failed(
        message,
        error,
        _Answer(None, None, None),
        now=now or datetime.now(UTC),
        policy=policy,
        secret="",
    )


def _failed(
    message: core.Message,
    error: errors.WebhookError,
    answer: _Answer,
    *,
    now: datetime,
    policy: SendPolicy,
    secret: str,
) -> Result:
    """The record of a failed attempt: Pending (retried), GivenUp, Gone or Failed."""
    attempts = message.attempts + 1
    # A record without retrySince after an attempt was written by an operator before
    # this field (or pruned by an older CRD): its horizon counts from the event, as then.
    since = message.retry_since or (message.event_time if message.attempts else now)
    text = errors.scrub(error.message, [secret])[:_MAX_ERROR]
    state: execution_.DeliveryState = "Failed"
    next_at = None
    if isinstance(error, errors.WebhookGoneError):
        state = "Gone"
    elif not error.stalled:
        next_at = delivery_retry.next_attempt(
            attempts, now, since=since, policy=policy.retry, retry_after=answer.retry_after
        )
        state = "Pending" if next_at else "GivenUp"
        if next_at is None:
            horizon = _duration(policy.retry.horizon)
            text = f"gave up after {attempts} attempts over {horizon}: {text}"[:_MAX_ERROR]
    logger.warning(
        "webhook %s to %s failed (attempt %d): %s",
        message.key,
        core.display_url(message.url),
        attempts,
        text,
    )
    return Result(
        record=execution_.Delivery(
            event_id=message.event_id,
            url=message.url,
            status=state,
            attempts=attempts,
            last_error=text,
            next_attempt_at=next_at,
            retry_since=since,
            replays=message.replays,
        ),
        status_code=answer.status_code,
        error=error,
    )


async def _post(
    message: core.Message,
    secret: str,
    client: httpx.AsyncClient,
    policy: SendPolicy,
    now: datetime,
    *,
    resolver: Resolver,
) -> _Answer:
    """POST once; what the receiver answered. Raises if the target is refused."""
    target = core.check_url(message.url, policy.url)
    address = target.address or await _resolve(target, policy.url, resolver)
    shown = core.display_url(message.url)
    # Sign at send time: receivers refuse stale timestamps, so each attempt signs anew.
    headers = core.sign(secret, message.key, int(time.time()), message.body)
    headers.update(
        {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Accept-Encoding": "identity",
            "Host": _host_header(target),
        }
    )
    url = httpx.URL(message.url).copy_with(host=str(address))
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    request = client.build_request(
        "POST", url, content=message.body, headers=headers, extensions=extensions
    )
    response = await client.send(request, stream=True, follow_redirects=False)
    try:
        body = await _read_bounded(response, policy.max_response_bytes)
    finally:
        await response.aclose()
    code = response.status_code
    if 200 <= code < 300:
        return _Answer(code, None, None)
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        quoted = errors.scrub(body.decode("utf-8", "replace"), [secret]).strip()[:200]
    else:
        quoted = f"(a {encoding[:20]}-encoded body, not decompressed nor quoted)"
    said = f"{shown} answered {code}" + (f": {quoted}" if quoted else "")
    if 300 <= code < 400:
        error: errors.WebhookError = errors.WebhookRejectedError(
            f"{shown} answered {code}, a redirect: not followed (it could point anywhere); "
            "configure the final URL"
        )
    elif code == 410:
        error = errors.WebhookGoneError(
            f"{said}; nothing more is sent to this URL for this execution"
        )
    elif 400 <= code < 500 and code not in {408, 429}:
        error = errors.WebhookRejectedError(f"{said}; not retried, fix the receiver")
    else:
        error = errors.WebhookServerError(f"{said}; retried with backoff")
    retry_after = delivery_retry.parse_retry_after(response.headers.get("Retry-After"), now)
    return _Answer(code, retry_after, error)


class Resolver:
    """Name resolution of webhook hosts, on threads of its own (see the module's doc).

    Build one per process (:class:`overseer.operator.deliveries.Deliveries` does) and
    :meth:`close` it at shutdown.
    """

    def __init__(self, threads: int = 4) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(
            threads, thread_name_prefix="webhook-dns"
        )
        self._lookups: dict[tuple[str, int], asyncio.Future[list[core.Address]]] = {}

    async def resolve(self, host: str, port: int) -> list[core.Address]:
        """The addresses of ``host``; raises ``OSError`` as ``getaddrinfo`` does."""
        key = (host, port)
        lookup = self._lookups.get(key)
        if lookup is None:
            loop = asyncio.get_running_loop()
            call = functools.partial(_addresses, host, port)
            lookup = loop.run_in_executor(self._pool, call)
            self._lookups[key] = lookup

            def done(finished: asyncio.Future[list[core.Address]]) -> None:
                if self._lookups.get(key) is finished:
                    del self._lookups[key]
                if not finished.cancelled():
                    finished.exception()  # retrieved: every waiter may have timed out

            lookup.add_done_callback(done)
        # Shielded: one delivery timing out must not cancel the lookup others wait on.
        return await asyncio.shield(lookup)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _addresses(host: str, port: int) -> list[core.Address]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


_shared: list[Resolver] = []


def _resolver() -> Resolver:
    """The process's resolver for callers that pass none (created on first use)."""
    if not _shared:
        _shared.append(Resolver())
    return _shared[0]


async def _resolve(target: core.Target, policy: core.UrlPolicy, resolver: Resolver) -> core.Address:
    """Resolve the name; check every address; return the first to connect to."""
    try:
        addresses = await resolver.resolve(target.host, target.port)
    except OSError as exc:
        raise errors.WebhookUnreachableError(
            f"webhook host {target.host!r} could not be resolved: {exc}"
        ) from None
    if not addresses:
        raise errors.WebhookUnreachableError(f"webhook host {target.host!r} has no address")
    for address in addresses:
        core.check_address(address, policy)
    return addresses[0]


def _duration(span: timedelta) -> str:
    seconds = span.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def _host_header(target: core.Target) -> str:
    default = 443 if target.scheme == "https" else 80
    host = f"[{target.host}]" if ":" in target.host else target.host
    return host if target.port == default else f"{host}:{target.port}"


async def _read_bounded(response: httpx.Response, limit: int) -> bytes:
    """At most ``limit`` bytes as they came off the wire: never decompressed."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_raw():
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(chunks)[:limit]


def _wrap(exc: Exception, url: str, secret: str) -> errors.WebhookError:
    shown = core.display_url(url)
    detail = errors.scrub(f"{type(exc).__name__}: {exc}", [secret])
    if isinstance(exc, httpx.TimeoutException):
        return errors.WebhookTimeoutError(f"{shown} timed out: {detail}")
    if isinstance(exc, httpx.TransportError | OSError):
        return errors.WebhookUnreachableError(f"{shown} could not be reached: {detail}")
    return errors.WebhookError(f"posting to {shown} failed: {detail}; retried with backoff")
