"""Idempotency claims: names, request digests, and the decision about a claim found."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from overseer import errors
from overseer.core import idempotency as core
from overseer.core.idempotency import Decision

NOW = datetime(2026, 12, 6, 4, 0, tzinfo=UTC)
TTL, STALE = timedelta(hours=24), timedelta(seconds=30)


def claim(**changes: object) -> core.Claim:
    fields: dict[str, object] = {
        "namespace": "team",
        "name": core.claim_name("team", "token:ci", "k1"),
        "digest": "d1",
        "caller": "token:ci",
        "created": NOW - timedelta(seconds=5),
    }
    return core.Claim(**{**fields, **changes})  # type: ignore[arg-type]


def test_the_claim_name_is_the_same_everywhere_and_apart_per_namespace_caller_and_key() -> None:
    name = core.claim_name("team", "token:ci", "k1")
    assert name == core.claim_name("team", "token:ci", "k1")
    # it labels what the action made: a label value holds 63 characters at most
    assert name.startswith("overseer-idempotency-") and len(name) <= 63
    others = {
        core.claim_name("other", "token:ci", "k1"),
        core.claim_name("team", "token:cd", "k1"),
        core.claim_name("team", "token:ci", "k2"),
        # the separator keeps ("a", "b\0c") apart from ("a\0b", "c")
        core.claim_name("team", "token:ci\0k1", ""),
    }
    assert name not in others and len(others) == 4


def test_the_digest_ignores_key_order_and_spacing_but_not_values_or_paths() -> None:
    digest = core.request_digest("post", "/jobs/A%20job", {"a": 1, "b": "x"})
    assert digest == core.request_digest("POST", "/jobs/A%20job", {"b": "x", "a": 1})
    assert digest != core.request_digest("POST", "/jobs/A%20job", {"a": 2, "b": "x"})
    assert digest != core.request_digest("POST", "/jobs/B", {"a": 1, "b": "x"})


@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9", "a\nb", "tab\there"])
def test_unusable_keys_are_refused_saying_what_a_key_is(key: str) -> None:
    with pytest.raises(errors.IdempotencyKeyError, match="printable ASCII"):
        core.check_key(key)


def test_a_uuid_is_a_key() -> None:
    key = "8e03978e-40d5-43e8-bc93-6894a57f9324"
    assert core.check_key(key) == key


@pytest.mark.parametrize(
    ("found", "digest", "decision"),
    [
        (claim(result="job-1"), "d1", Decision.REPLAY),
        (claim(result="job-1"), "d2", Decision.MISMATCH),
        (claim(), "d2", Decision.MISMATCH),
        (claim(), "d1", Decision.WAIT),
        (claim(created=NOW - STALE), "d1", Decision.RECOVER),
        (claim(created=NOW - TTL, result="job-1"), "d2", Decision.EXPIRED),
        (claim(created=NOW - TTL, result="job-1"), "d1", Decision.EXPIRED),
    ],
)
def test_what_a_request_does_about_a_claim_found(
    found: core.Claim, digest: str, decision: Decision
) -> None:
    assert core.decide(found, digest, NOW, TTL, STALE) is decision


def test_a_claim_survives_its_round_trip_through_a_lease() -> None:
    original = claim(result="job-1", resource_version="42")
    body = core.build_claim(original, "api-0/1", TTL)
    assert body["kind"] == "Lease"
    assert body["metadata"]["labels"][core.LABEL] == core.LABEL_VALUE
    assert body["spec"] == {"holderIdentity": "api-0/1", "leaseDurationSeconds": 86400}
    assert core.parse_claim(body) == original


def test_a_claim_without_its_creation_time_is_expired() -> None:
    body = core.build_claim(claim(), "api-0/1", TTL)
    del body["metadata"]["annotations"]["overseer.dev/created"]
    assert core.expired(core.parse_claim(body), NOW, TTL)
    assert not core.expired(claim(), NOW, TTL)
