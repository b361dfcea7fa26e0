"""The kubernetes auth mode's pure parts and caching, with a fake review answerer."""

from __future__ import annotations

from typing import Any

from overseer_api import auth, kubernetes_auth
from overseer_api.kubernetes_auth import KubernetesAuthenticator, KubernetesCaller, TtlCache

ALICE = {
    "authenticated": True,
    "user": {
        "username": "system:serviceaccount:team:alice",
        "uid": "u-1",
        "groups": ["system:serviceaccounts", "system:serviceaccounts:team"],
        "extra": {"authentication.kubernetes.io/pod-name": ["p"]},
    },
}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Reviews:
    """Answers TokenReviews and SubjectAccessReviews; counts them."""

    def __init__(self, allowed: set[tuple[str, str]]) -> None:
        self.allowed = allowed
        self.asked: list[tuple[str, dict[str, Any]]] = []

    async def review(self, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
        self.asked.append((kind, spec))
        if kind == "TokenReview":
            return ALICE if spec["token"] == "good" else {"authenticated": False, "error": "no"}
        attrs = spec["resourceAttributes"]
        return {"allowed": (attrs["resource"], attrs["verb"]) in self.allowed}


def test_ttl_cache_expires_and_stays_bounded() -> None:
    clock = Clock()
    cache: TtlCache[str, int] = TtlCache(ttl=5, size=2, clock=clock)
    cache.put("a", 1)
    assert cache.get("a") == (True, 1)
    clock.now += 5
    assert cache.get("a") == (False, None)
    for key in "bcd":
        cache.put(key, 0)
    assert len(cache) == 2
    assert cache.get("b") == (False, None)  # the oldest went first
    assert cache.get("d") == (True, 0)


def test_a_token_review_names_the_caller_with_groups_for_access_reviews() -> None:
    caller = kubernetes_auth.parse_token_review(ALICE)
    assert caller is not None
    assert caller.name == "system:serviceaccount:team:alice"
    assert caller.scopes == frozenset()
    spec = kubernetes_auth.build_access_review(caller, "team", "overseerexecutions", "create")
    assert spec == {
        "user": "system:serviceaccount:team:alice",
        "uid": "u-1",
        "groups": ["system:serviceaccounts", "system:serviceaccounts:team"],
        "extra": {"authentication.kubernetes.io/pod-name": ["p"]},
        "resourceAttributes": {
            "namespace": "team",
            "verb": "create",
            "group": "overseer.dev",
            "resource": "overseerexecutions",
        },
    }


def test_an_unauthenticated_review_is_no_caller() -> None:
    assert kubernetes_auth.parse_token_review({"authenticated": False}) is None
    assert kubernetes_auth.parse_token_review({"authenticated": True, "user": {}}) is None


async def test_answers_are_cached_for_the_ttl_then_asked_again() -> None:
    clock, reviews = Clock(), Reviews({("overseerjobs", "get"), ("overseerjobs", "list")})
    authenticator = KubernetesAuthenticator(reviews, ttl=10, clock=clock)  # type: ignore[arg-type]
    caller = await authenticator.authenticate("good")
    assert isinstance(caller, KubernetesCaller)
    assert await authenticator.authenticate("good") == caller
    assert await authenticator.authenticate("bad") is None
    assert await authenticator.authenticate("bad") is None
    assert [kind for kind, _ in reviews.asked] == ["TokenReview", "TokenReview"]
    assert await authenticator.authorize(caller, auth.Scope.READ, "team")
    assert await authenticator.authorize(caller, auth.Scope.READ, "team")
    assert len(reviews.asked) == 4  # get and list, once each
    clock.now += 10
    assert await authenticator.authenticate("good") == caller
    assert len(reviews.asked) == 5


async def test_each_scope_needs_its_own_verbs_in_the_namespace() -> None:
    reviews = Reviews({("overseerjobs", "get"), ("overseerjobs", "list")})
    authenticator = KubernetesAuthenticator(reviews)  # type: ignore[arg-type]
    caller = await authenticator.authenticate("good")
    assert caller is not None
    assert await authenticator.authorize(caller, auth.Scope.READ, "team")
    assert not await authenticator.authorize(caller, auth.Scope.EXECUTE, "team")
    assert not await authenticator.authorize(caller, auth.Scope.ADMIN, "team")
    namespaces = {
        s["resourceAttributes"]["namespace"] for k, s in reviews.asked if k != "TokenReview"
    }
    assert namespaces == {"team"}


async def test_read_needs_both_get_and_list() -> None:
    authenticator = KubernetesAuthenticator(Reviews({("overseerjobs", "get")}))  # type: ignore[arg-type]
    caller = await authenticator.authenticate("good")
    assert caller is not None
    assert not await authenticator.authorize(caller, auth.Scope.READ, "team")


async def test_a_caller_from_another_mode_is_never_authorized() -> None:
    authenticator = KubernetesAuthenticator(Reviews(set()))  # type: ignore[arg-type]
    token_caller = auth.Caller("token:ci", frozenset(auth.Scope))
    assert not await authenticator.authorize(token_caller, auth.Scope.READ, "team")


async def test_tokens_are_cached_by_digest_never_as_they_are() -> None:
    authenticator = KubernetesAuthenticator(Reviews(set()))  # type: ignore[arg-type]
    await authenticator.authenticate("good")
    assert "good" not in repr(vars(authenticator._callers))
