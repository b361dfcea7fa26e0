"""The ``kubernetes`` auth mode: callers are Kubernetes identities, RBAC decides.

A bearer token is checked with a TokenReview (the API server says whose token it
is: a ServiceAccount's, an OIDC user's); each scope is a SubjectAccessReview on
Overseer's custom resources in the request's namespace, so what a caller may do
is granted with ordinary Roles and RoleBindings:

========  ==================================================
read      ``get`` and ``list`` on ``overseerjobs``
execute   ``create`` on ``overseerexecutions``
admin     ``patch`` on ``overseerjobs`` (activation, sync)
========  ==================================================

Both answers are kept for ``ttl`` seconds (a revoked token or RoleBinding takes
effect within that time), in bounded caches: a flood of distinct tokens evicts
the oldest entries instead of growing the process. Tokens are cached by their
SHA-256 only, never kept or logged as they are.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import time
from collections.abc import Callable, Hashable
from typing import Any, Generic, Protocol, TypeVar

from overseer.crd import base
from overseer.crd import execution as execution_
from overseer.crd import job as job_
from overseer_api import auth

RULES: dict[auth.Scope, tuple[tuple[str, str], ...]] = {
    auth.Scope.READ: ((job_.KIND.plural, "get"), (job_.KIND.plural, "list")),
    auth.Scope.EXECUTE: ((execution_.KIND.plural, "create"),),
    auth.Scope.ADMIN: ((job_.KIND.plural, "patch"),),
}
"""The (resource, verb) pairs of API group overseer.dev that each scope needs, all of them."""

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Reviewer(Protocol):
    """What this mode needs of :class:`overseer.kube.Kube`."""

    async def review(self, kind: str, spec: dict[str, Any]) -> dict[str, Any]: ...


class TtlCache(Generic[K, V]):
    """A dict whose entries expire after ``ttl`` seconds, holding at most ``size`` of them."""

    def __init__(self, ttl: float, size: int, clock: Callable[[], float] = time.monotonic):
        self._ttl, self._size, self._clock = ttl, size, clock
        self._entries: collections.OrderedDict[K, tuple[float, V]] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: K) -> tuple[bool, V | None]:
        """(True, value) when a fresh entry exists, else (False, None)."""
        entry = self._entries.get(key)
        if entry is None:
            return False, None
        if entry[0] <= self._clock():
            del self._entries[key]
            return False, None
        return True, entry[1]

    def put(self, key: K, value: V) -> None:
        self._entries.pop(key, None)
        self._entries[key] = (self._clock() + self._ttl, value)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)  # the oldest insertion goes first


@dataclasses.dataclass(frozen=True)
class KubernetesCaller(auth.Caller):
    """A caller the API server vouched for, with what a SubjectAccessReview needs."""

    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()


def parse_token_review(status: dict[str, Any]) -> KubernetesCaller | None:
    """The caller a TokenReview's status names; None when the token was not accepted."""
    user = status.get("user") or {}
    if not status.get("authenticated") or not user.get("username"):
        return None
    extra = tuple(sorted((k, tuple(v)) for k, v in (user.get("extra") or {}).items()))
    return KubernetesCaller(
        name=str(user["username"]),
        scopes=frozenset(),
        uid=str(user.get("uid") or ""),
        groups=tuple(user.get("groups") or ()),
        extra=extra,
    )


def build_access_review(
    caller: KubernetesCaller, namespace: str, resource: str, verb: str
) -> dict[str, Any]:
    """The spec of a SubjectAccessReview: may ``caller`` do ``verb`` on ``resource`` here?"""
    spec: dict[str, Any] = {
        "user": caller.name,
        "groups": list(caller.groups),
        "resourceAttributes": {
            "namespace": namespace,
            "verb": verb,
            "group": base.GROUP,
            "resource": resource,
        },
    }
    if caller.uid:
        spec["uid"] = caller.uid
    if caller.extra:
        spec["extra"] = {k: list(v) for k, v in caller.extra}
    return spec


class KubernetesAuthenticator:
    """TokenReview to authenticate, SubjectAccessReview per scope to authorize, both cached."""

    def __init__(
        self,
        kube: Reviewer,
        *,
        ttl: float = 10.0,
        size: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._kube = kube
        self._callers: TtlCache[bytes, KubernetesCaller | None] = TtlCache(ttl, size, clock)
        self._decisions: TtlCache[tuple[KubernetesCaller, str, str, str], bool] = TtlCache(
            ttl, size, clock
        )

    async def authenticate(self, bearer_token: str) -> auth.Caller | None:
        key = hashlib.sha256(bearer_token.encode()).digest()
        found, caller = self._callers.get(key)
        if not found:
            status = await self._kube.review("TokenReview", {"token": bearer_token})
            caller = parse_token_review(status)
            self._callers.put(key, caller)
        return caller

    async def authorize(self, caller: auth.Caller, scope: auth.Scope, namespace: str) -> bool:
        if not isinstance(caller, KubernetesCaller):
            return False  # only callers this mode authenticated have an identity to check
        for resource, verb in RULES[scope]:
            if not await self._allowed(caller, namespace, resource, verb):
                return False
        return True

    async def _allowed(
        self, caller: KubernetesCaller, namespace: str, resource: str, verb: str
    ) -> bool:
        key = (caller, namespace, resource, verb)
        found, allowed = self._decisions.get(key)
        if not found:
            spec = build_access_review(caller, namespace, resource, verb)
            status = await self._kube.review("SubjectAccessReview", spec)
            allowed = bool(status.get("allowed")) and not status.get("denied")
            self._decisions.put(key, allowed)
        return bool(allowed)
