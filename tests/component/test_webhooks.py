"""The webhook adapter against real HTTP servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import gzip
import logging
import socket
import time
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from standardwebhooks import webhooks as standard

import overseer
from overseer import errors, webhooks
from overseer.core import delivery_retry, url_policy, webhook_payload
from overseer.core import webhooks as core
from overseer.crd import execution
from tests.support import loopback, recorder

pytestmark = pytest.mark.timeout(60)

SECRET = "whsec_" + base64.b64encode(b"k" * 24 + b"-the-receiver-key").decode()
UID = "0b8f5a4e-0000-4000-8000-000000000001"
NOW = datetime.now(UTC).replace(microsecond=0)
PRIVATE = webhooks.SendPolicy(url=core.UrlPolicy(allow_private=True), timeout=2.0)


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok\n"
    delay: float = 0.0


@dataclass
class Scripted:
    """A server answering each request with the next reply (the last one repeats)."""

    url: str
    replies: list[Reply]
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)


@contextmanager
def scripted(*replies: Reply) -> Iterator[Scripted]:
    state: Scripted

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            data = self.rfile.read(length)
            state.requests.append((self.path, dict(self.headers.items()), data))
            index = min(len(state.requests), len(state.replies)) - 1
            reply = state.replies[index]
            time.sleep(reply.delay)
            try:
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    host, port = server.server_address[:2]
    state = Scripted(url=f"http://{host}:{port}", replies=list(replies) or [Reply()])
    with loopback.running(server, "scripted receiver"):
        yield state


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with webhooks.new_client(PRIVATE) as c:
        yield c


def message(url: str, status: str = "complete", attempts: int = 0) -> core.Message:
    ev = execution.Event(id=status, status=status, time=NOW, data={"exitCode": 0})
    owed = core.Owed(ev, url, None)
    built = core.build_message(
        owed,
        job="A job",
        execution_id="1489895624.840211",
        execution_uid=UID,
        api_url="https://o",
        namespace="ns",
    )
    return built._replace(attempts=attempts)


def verify(headers: dict[str, str], body: bytes) -> bool:
    """What a receiver does, with the reference Standard Webhooks library."""
    try:
        standard.Webhook(SECRET).verify(body, headers)
    except standard.WebhookVerificationError:
        return False
    return True


async def test_delivered_signed_with_the_standard_headers(client: httpx.AsyncClient) -> None:
    with recorder.serve() as rec:
        sent = message(rec.url + "/hooks/done?token=abc")
        result = await webhooks.send(sent, SECRET, client, PRIVATE, now=NOW)
        (request,) = rec.wait_for(1)
    assert result.delivered and result.status_code == 200 and result.error is None
    assert result.record == execution.Delivery(
        event_id="complete", url=sent.url, status="Delivered", attempts=1, delivered_at=NOW
    )
    headers = {k.lower(): v for k, v in request.headers.items()}
    assert request.method == "POST" and request.path == "/hooks/done?token=abc"
    assert request.body == sent.body
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"] == f"overseer/{overseer.__version__}"
    assert headers["webhook-id"] == webhook_payload.event_key(
        UID, execution.Event(status="x", id="complete", time=NOW)
    )
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60
    assert headers["host"] == rec.url.removeprefix("http://")
    assert verify(headers, request.body)
    assert not verify({**headers, "webhook-timestamp": "1"}, request.body)


async def test_a_name_is_resolved_and_sent_as_host(client: httpx.AsyncClient) -> None:
    with recorder.serve() as rec:
        port = rec.url.rsplit(":", 1)[1]
        result = await webhooks.send(message(f"http://localhost:{port}/h"), SECRET, client, PRIVATE)
        (request,) = rec.wait_for(1)
    assert result.delivered
    assert {k.lower(): v for k, v in request.headers.items()}["host"] == f"localhost:{port}"


async def test_500_then_200_is_retried_under_the_same_id(client: httpx.AsyncClient) -> None:
    with scripted(Reply(500, body=b"x" * 1_000_000), Reply(200)) as server:
        first = await webhooks.send(message(server.url), SECRET, client, PRIVATE, now=NOW)
        assert first.retry and first.status_code == 500
        assert isinstance(first.error, errors.WebhookServerError)
        record = first.record
        assert (record.status, record.attempts) == ("Pending", 1)
        assert record.next_attempt_at is not None
        assert NOW < record.next_attempt_at <= NOW + timedelta(seconds=1)
        assert record.last_error is not None and len(record.last_error) <= 512
        retried = message(server.url, attempts=record.attempts)
        second = await webhooks.send(retried, SECRET, client, PRIVATE, now=NOW)
    assert second.delivered and second.record.attempts == 2
    ids = {r[1]["webhook-id"] for r in server.requests}
    assert len(server.requests) == 2 and len(ids) == 1


async def test_400_is_not_retried(client: httpx.AsyncClient) -> None:
    with scripted(Reply(400, body=b"bad payload")) as server:
        result = await webhooks.send(message(server.url), SECRET, client, PRIVATE, now=NOW)
    assert isinstance(result.error, errors.WebhookRejectedError) and result.error.stalled
    assert result.record.status == "Failed" and result.record.next_attempt_at is None
    assert "400" in (result.record.last_error or "") and "bad payload" in result.error.message
    assert len(server.requests) == 1


async def test_a_redirect_is_refused_not_followed(client: httpx.AsyncClient) -> None:
    with recorder.serve() as elsewhere, scripted(Reply(302, {"Location": elsewhere.url})) as server:
        result = await webhooks.send(message(server.url), SECRET, client, PRIVATE, now=NOW)
        await asyncio.sleep(0.2)
        assert elsewhere.requests == []
    assert isinstance(result.error, errors.WebhookRejectedError)
    assert result.record.status == "Failed" and "redirect" in (result.record.last_error or "")


async def test_a_slow_server_times_out_and_is_retried() -> None:
    policy = webhooks.SendPolicy(url=core.UrlPolicy(allow_private=True), timeout=0.3)
    with scripted(Reply(200, delay=2.0)) as server:
        async with webhooks.new_client(policy) as slow_client:
            started = time.monotonic()
            result = await webhooks.send(message(server.url), SECRET, slow_client, policy, now=NOW)
            assert time.monotonic() - started < 1.5
    assert isinstance(result.error, errors.WebhookTimeoutError)
    assert result.retry and result.record.attempts == 1


async def test_429_retry_after_is_honoured(client: httpx.AsyncClient) -> None:
    with scripted(Reply(429, {"Retry-After": "120"})) as server:
        result = await webhooks.send(message(server.url), SECRET, client, PRIVATE, now=NOW)
    assert result.retry and result.status_code == 429
    assert result.record.next_attempt_at == NOW + timedelta(seconds=120)


async def test_408_and_503_are_retried(client: httpx.AsyncClient) -> None:
    for status in (408, 503):
        with scripted(Reply(status)) as server:
            result = await webhooks.send(message(server.url), SECRET, client, PRIVATE, now=NOW)
        assert result.retry, status


async def test_giving_up_at_the_retry_horizon(client: httpx.AsyncClient) -> None:
    policy = webhooks.SendPolicy(
        url=core.UrlPolicy(allow_private=True),
        retry=delivery_retry.RetryPolicy(horizon=timedelta(minutes=10)),
    )
    began = datetime.now(UTC) - timedelta(minutes=10)
    with scripted(Reply(500)) as server:
        owed = message(server.url, attempts=40)._replace(retry_since=began)
        result = await webhooks.send(owed, SECRET, client, policy)
    assert result.record.status == "GivenUp" and result.record.attempts == 41
    assert result.record.retry_since == began and result.record.next_attempt_at is None
    assert (result.record.last_error or "").startswith("gave up after 41 attempts over 10m: ")
    # Within the horizon, the 41st failure is retried like the first
    with scripted(Reply(500)) as server:
        owed = message(server.url, attempts=40)._replace(retry_since=datetime.now(UTC))
        assert (await webhooks.send(owed, SECRET, client, policy)).retry


async def test_a_record_without_its_start_counts_the_horizon_from_the_event(
    client: httpx.AsyncClient,
) -> None:
    # Written by an operator older than retrySince: the horizon still ends
    old_event = datetime.now(UTC) - timedelta(hours=25)
    with scripted(Reply(500)) as server:
        owed = message(server.url, attempts=3)._replace(event_time=old_event)
        result = await webhooks.send(owed, SECRET, client, PRIVATE)
    assert result.record.status == "GivenUp" and result.record.retry_since == old_event


async def test_410_gone_is_final_and_recorded_gone(client: httpx.AsyncClient) -> None:
    with scripted(Reply(410, body=b"this hook was deleted")) as server:
        result = await webhooks.send(message(server.url), SECRET, client, PRIVATE, now=NOW)
    assert isinstance(result.error, errors.WebhookGoneError) and result.status_code == 410
    assert result.record.status == "Gone" and result.record.next_attempt_at is None
    assert "nothing more is sent to this URL" in (result.record.last_error or "")


async def test_connection_refused_is_retried(client: httpx.AsyncClient) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = await webhooks.send(message(f"http://127.0.0.1:{port}/"), SECRET, client, PRIVATE)
    assert isinstance(result.error, errors.WebhookUnreachableError) and result.retry


async def test_loopback_is_refused_without_allow_private() -> None:
    policy = webhooks.SendPolicy()
    with recorder.serve() as rec:
        async with webhooks.new_client(policy) as default_client:
            result = await webhooks.send(message(rec.url), SECRET, default_client, policy)
        await asyncio.sleep(0.2)
        assert rec.requests == []
    assert isinstance(result.error, errors.WebhookUrlRefusedError)
    assert result.record.status == "Failed" and "loopback" in (result.record.last_error or "")


async def test_every_resolved_address_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    # Pretend "localhost" is a public-looking name: only the resolved address betrays it.
    monkeypatch.setattr(url_policy, "_internal_name", lambda host, domain: False)
    policy = webhooks.SendPolicy()
    with recorder.serve() as rec:
        port = rec.url.rsplit(":", 1)[1]
        async with webhooks.new_client(policy) as default_client:
            url = f"http://localhost:{port}/"
            result = await webhooks.send(message(url), SECRET, default_client, policy)
        assert rec.requests == []
    assert isinstance(result.error, errors.WebhookUrlRefusedError)


async def test_the_secret_and_the_url_path_never_reach_logs_or_errors(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="overseer")
    with scripted(Reply(500, body=SECRET.encode())) as server:
        url = server.url + "/services/T0/B0/path-token"
        result = await webhooks.send(message(url), SECRET, client, PRIVATE)
    texts = [caplog.text, result.record.last_error or "", str(result.error)]
    for text in texts:
        assert SECRET not in text
        assert "path-token" not in text
    assert "***" in (result.record.last_error or "")


async def test_a_gzip_bomb_in_an_error_body_costs_no_memory(client: httpx.AsyncClient) -> None:
    """Issue 11, item 9: 200 MB of zeros gzipped to ~200 KB, sent whatever was asked."""
    bomb = gzip.compress(b"\0" * (200 * 1024 * 1024), compresslevel=9)
    reply = Reply(500, {"Content-Encoding": "gzip", "Content-Type": "text/plain"}, bomb)
    with scripted(reply) as server:
        tracemalloc.start()
        try:
            result = await webhooks.send(message(server.url + "/hook"), SECRET, client, PRIVATE)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        (_, headers, _), *_ = server.requests
    assert peak < 2 * 1024 * 1024, f"peak {peak} bytes"
    assert {k.lower(): v for k, v in headers.items()}["accept-encoding"] == "identity"
    assert result.status_code == 500 and result.retry
    assert result.record.last_error is not None
    assert "answered 500" in result.record.last_error
    assert "gzip" in result.record.last_error
