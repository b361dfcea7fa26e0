"""Webhooks, the pure half: exact payloads, what is owed, signatures, backoff, URL policy."""

from __future__ import annotations

import base64
import decimal
import hashlib
import hmac
import ipaddress
import json
from datetime import UTC, datetime, timedelta

import pytest

from overseer import errors
from overseer.core import delivery_retry, webhook_payload, webhooks
from overseer.crd import execution, types

UID = "6f1c0c2e-8d7e-4a34-9d5c-3c1a2b4e5f60"
API = "https://overseer.example.com/api/"
NS = "team-a"
T0 = datetime(2017, 3, 19, 4, 33, 44, 840211, tzinfo=UTC)


def event(status: str, id: str | None = None, data: object = None) -> execution.Event:
    return execution.Event(id=id or status, status=status, time=T0, data=data)


def body(ev: execution.Event, job: str = "A job", execution_id: str = "1489895624.840211") -> bytes:
    payload = webhook_payload.build_payload(
        job=job, execution_id=execution_id, execution_uid=UID, event=ev, api_url=API, namespace=NS
    )
    return webhook_payload.render_body(payload)


# --- payload -----------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["start", "complete", "fail", "time-out"])
def test_payload_of_a_standard_status_is_exact(status: str) -> None:
    key = "msg_" + hashlib.sha256(f"{UID}\0{status}".encode()).hexdigest()[:32]
    # the original's four fields first, with the original's types: execution a number
    expected = (
        '{"job":"A job","execution":1489895624.840211,'
        f'"status":"{status}",'
        '"metadata":"https://overseer.example.com/api/jobs/A%20job/1489895624.840211",'
        f'"executionId":"1489895624.840211","event":"{key}",'
        '"time":"2017-03-19T04:33:44.840211Z","data":null,"namespace":"team-a"}'
    )
    assert body(event(status)).decode() == expected


@pytest.mark.parametrize(
    "execution_id",
    # a whole second keeps its six zeros; more digits than a float holds keep every one
    ["1489888092.000000", "9999999999.999999", "99999999999.000001", "0.000001"],
)
def test_execution_is_a_json_number_with_the_ids_exact_digits(execution_id: str) -> None:
    raw = body(event("start"), execution_id=execution_id)
    assert f'"execution":{execution_id},'.encode() in raw
    assert f'"executionId":"{execution_id}",'.encode() in raw
    parsed = json.loads(raw, parse_float=decimal.Decimal)
    assert parsed["execution"] == decimal.Decimal(execution_id)
    assert isinstance(json.loads(raw)["execution"], float)  # a number, not a string
    assert parsed["executionId"] == execution_id


def test_the_signature_covers_the_bytes_with_the_number() -> None:
    owed = webhooks.Owed(event("start"), "https://a.example/h", None)
    message = webhooks.build_message(
        owed,
        job="A job",
        execution_id="9999999999.999999",
        execution_uid=UID,
        api_url=API,
        namespace=NS,
    )
    assert b'"execution":9999999999.999999,' in message.body
    assert message.body == body(event("start"), execution_id="9999999999.999999")
    headers = webhooks.sign("k", message.key, 1, message.body)
    digest = hmac.new(b"k", f"{message.key}.1.".encode() + message.body, hashlib.sha256)
    assert headers["webhook-signature"] == "v1," + base64.b64encode(digest.digest()).decode()


def test_payload_of_a_custom_event_carries_its_data() -> None:
    ev = event("half-way", id="pod-x:3", data={"done": 50, "note": "été"})
    key = "msg_" + hashlib.sha256(f"{UID}\0pod-x:3".encode()).hexdigest()[:32]
    assert json.loads(body(ev, job="Nightly/backup ü"), parse_float=decimal.Decimal) == {
        "event": key,
        "job": "Nightly/backup ü",
        "execution": decimal.Decimal("1489895624.840211"),
        "executionId": "1489895624.840211",
        "status": "half-way",
        "time": "2017-03-19T04:33:44.840211Z",
        "metadata": (
            "https://overseer.example.com/api/jobs/Nightly%2Fbackup%20%C3%BC/1489895624.840211"
        ),
        "data": {"done": 50, "note": "été"},
        "namespace": "team-a",
    }
    assert "été".encode() in body(ev)  # UTF-8, not \u escapes


def test_event_key_is_stable_and_distinct() -> None:
    key = webhook_payload.event_key
    assert key(UID, event("start")) == key(UID, event("start"))
    assert key(UID, event("start")) != key(UID, event("complete"))
    assert key(UID, event("start")) != key("other", event("start"))


def test_naive_time_is_read_as_utc() -> None:
    assert types.rfc3339(datetime(2020, 1, 2, 3, 4, 5)) == "2020-01-02T03:04:05Z"


# --- what is owed ------------------------------------------------------------------------

HOOKS = {"start": ["https://a.example/h", "https://b.example/h", "https://a.example/h"]}


def test_plan_lists_every_event_and_url_in_order() -> None:
    hooks = {**HOOKS, "complete": ["https://c.example/h"]}
    owed = webhooks.plan_deliveries(hooks, [event("start"), event("complete")], [])
    assert [(o.event.status, o.url, o.record) for o in owed] == [
        ("start", "https://a.example/h", None),
        ("start", "https://b.example/h", None),
        ("complete", "https://c.example/h", None),
    ]


def test_plan_skips_delivered_and_given_up_keeps_pending() -> None:
    done = execution.Delivery(event_id="start", url="https://a.example/h", status="Delivered")
    gave_up = execution.Delivery(event_id="start", url="https://b.example/h", status="Failed")
    pending = execution.Delivery(
        event_id="start", url="https://b.example/h", status="Pending", attempts=2
    )
    assert webhooks.plan_deliveries(HOOKS, [event("start")], [done, gave_up]) == []
    owed = webhooks.plan_deliveries(HOOKS, [event("start")], [done, pending])
    assert [(o.url, o.record) for o in owed] == [("https://b.example/h", pending)]
    message = webhooks.build_message(
        owed[0], job="j", execution_id="1.000000", execution_uid=UID, api_url=API, namespace=NS
    )
    assert (message.attempts, message.event_id) == (2, "start")
    assert message.key == webhook_payload.event_key(UID, event("start"))


def test_is_due() -> None:
    later = execution.Delivery(
        event_id="start", url="u", status="Pending", next_attempt_at=T0 + timedelta(seconds=5)
    )
    assert webhooks.is_due(webhooks.Owed(event("start"), "u", None), T0)
    assert not webhooks.is_due(webhooks.Owed(event("start"), "u", later), T0)
    assert webhooks.is_due(webhooks.Owed(event("start"), "u", later), T0 + timedelta(seconds=5))


# --- signature ---------------------------------------------------------------------------


def test_signature_matches_the_standard_webhooks_vector() -> None:
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    msg_id, ts, payload = "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}'
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{ts}.".encode() + payload, hashlib.sha256).digest()
    expected = "v1," + base64.b64encode(mac).decode()
    assert expected == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="  # the spec's vector
    assert webhooks.sign(secret, msg_id, ts, payload) == {
        "webhook-id": msg_id,
        "webhook-timestamp": "1614265330",
        "webhook-signature": expected,
    }


def test_a_raw_secret_is_used_as_its_bytes() -> None:
    mac = hmac.new(b"plain secret", b"m.1.{}", hashlib.sha256).digest()
    headers = webhooks.sign("plain secret", "m", 1, b"{}")
    assert headers["webhook-signature"] == "v1," + base64.b64encode(mac).decode()


@pytest.mark.parametrize("secret", ["", "whsec_", "whsec_not base64!"])
def test_a_bad_secret_is_refused_without_quoting_it(secret: str) -> None:
    with pytest.raises(errors.WebhookSecretError) as caught:
        webhooks.sign(secret, "m", 1, b"{}")
    assert caught.value.stalled
    assert "not base64!" not in caught.value.message


# --- backoff -----------------------------------------------------------------------------


@pytest.mark.parametrize("rand", [0.0, 0.5, 1.0])
def test_backoff_doubles_with_bounded_jitter_and_a_ceiling(rand: float) -> None:
    policy = delivery_retry.RetryPolicy(horizon=timedelta(days=30))
    for attempts, nominal in [(1, 1), (2, 2), (3, 4), (4, 8), (9, 256), (10, 300), (40, 300)]:
        when = delivery_retry.next_attempt(attempts, T0, policy=policy, rand=lambda: rand)
        assert when is not None
        delay = (when - T0).total_seconds()
        assert nominal * (1 - policy.jitter) <= delay <= nominal
        assert delay == pytest.approx(nominal * (1 - policy.jitter * rand))


def test_backoff_goes_on_up_to_the_horizon_whatever_the_count() -> None:
    # The default: capped at 5 minutes, given up 24 hours after the run of attempts began
    policy = delivery_retry.DEFAULT_RETRY
    assert policy.horizon == timedelta(hours=24)
    began = T0 - timedelta(hours=23)
    when = delivery_retry.next_attempt(250, T0, since=began, rand=lambda: 0)
    assert when == T0 + timedelta(minutes=5)  # attempt 250, still retried, at the cap
    late = T0 - timedelta(hours=23, minutes=58)
    assert delivery_retry.next_attempt(250, T0, since=late, rand=lambda: 0) is None
    assert delivery_retry.next_attempt(1, T0, since=T0 - timedelta(hours=24)) is None
    # A horizon set by the operator's settings
    short = delivery_retry.RetryPolicy(horizon=timedelta(minutes=10))
    assert (
        delivery_retry.next_attempt(1, T0, since=T0 - timedelta(minutes=10), policy=short) is None
    )
    assert delivery_retry.next_attempt(1, T0, since=T0, policy=short) is not None


def test_retry_after_is_a_lower_bound_capped() -> None:
    when = delivery_retry.next_attempt(1, T0, retry_after=timedelta(seconds=30), rand=lambda: 0)
    assert when == T0 + timedelta(seconds=30)
    capped = delivery_retry.next_attempt(1, T0, retry_after=timedelta(days=2), rand=lambda: 0)
    assert capped == T0 + delivery_retry.DEFAULT_RETRY.max_retry_after


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120),
        ("Sun, 19 Mar 2017 04:34:44 GMT", 59.159789),
        ("Sun, 19 Mar 2017 04:00:00 GMT", 0),
        ("soon", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    delay = delivery_retry.parse_retry_after(value, T0)
    assert (None if delay is None else delay.total_seconds()) == pytest.approx(seconds)


# --- URL policy --------------------------------------------------------------------------

REFUSED = [
    "http://10.0.0.1/hook",
    "http://172.16.3.4/hook",
    "http://192.168.1.1/hook",
    "http://100.64.0.1/hook",
    "http://169.254.169.254/latest/meta-data",
    "http://[fe80::1]/hook",
    "http://[::1]/hook",
    "http://127.0.0.1:8080/hook",
    "http://0.0.0.0/hook",
    "http://[::ffff:10.0.0.1]/hook",
    "http://2130706433/hook",  # 127.0.0.1 as one number
    "http://0x7f.1/hook",
    "http://localhost/hook",
    "http://LocalHost./hook",
    "http://foo.svc.cluster.local/hook",
    "http://foo.bar.svc/hook",
    "http://kubernetes/hook",
    "http://metadata.google.internal/computeMetadata/v1/",
    "file:///etc/passwd",
    "ftp://example.com/x",
    "gopher://example.com/x",
    "http://user:pass@example.com/hook",
    "http://user@example.com/hook",
    "http:///hook",
]


@pytest.mark.parametrize("url", REFUSED)
def test_refused_urls(url: str) -> None:
    with pytest.raises(errors.WebhookUrlRefusedError) as caught:
        webhooks.check_url(url)
    assert caught.value.policy is errors.Policy.STALLED
    assert "pass" not in caught.value.message


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/overseer",
        "http://hooks.slack.com/services/T0/B0/XYZ",
        "https://93.184.216.34:8443/x",
        "https://[2606:2800:220:1:248:1893:25c8:1946]/x",
    ],
)
def test_public_urls_pass(url: str) -> None:
    target = webhooks.check_url(url)
    assert target.scheme in {"http", "https"}


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/hook",
        "http://[::1]/hook",
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://foo.svc.cluster.local/hook",
        "http://100.64.0.1/hook",
    ],
)
def test_allow_private_lets_private_targets_through(url: str) -> None:
    webhooks.check_url(url, allow_private=True)
    webhooks.check_url(url, webhooks.UrlPolicy(allow_private=True))


def test_link_local_needs_its_own_permission() -> None:
    url = "http://169.254.169.254/latest"
    with pytest.raises(errors.WebhookUrlRefusedError, match="link-local"):
        webhooks.check_url(url, allow_private=True)
    webhooks.check_url(url, webhooks.UrlPolicy(allow_link_local=True))


def test_service_cidr_and_allowed_ranges() -> None:
    svc = webhooks.UrlPolicy(service_cidrs=(ipaddress.ip_network("34.118.224.0/20"),))
    with pytest.raises(errors.WebhookUrlRefusedError, match="cluster-internal"):
        webhooks.check_url("http://34.118.224.7/", svc)
    webhooks.check_url("http://34.118.224.7/")
    allowed = webhooks.UrlPolicy(allowed=(ipaddress.ip_network("10.1.0.0/16"),))
    webhooks.check_url("http://10.1.2.3/", allowed)
    with pytest.raises(errors.WebhookUrlRefusedError):
        webhooks.check_url("http://10.2.0.1/", allowed)


def test_display_url_hides_path_and_query() -> None:
    shown = webhooks.display_url("https://hooks.slack.com:8443/services/T0/B0/SECRET?t=x")
    assert shown == "https://hooks.slack.com:8443/…"
