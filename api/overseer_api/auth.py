"""Who calls, and whether they may: ``Authenticator``, the ``token`` mode, ``require``.

Every route but the health ones checks its caller with :func:`check` (through the one
dependency of ``overseer_api.deps``) for the scope it needs.
An :class:`Authenticator` turns a bearer token into a :class:`Caller` and decides
whether that caller may use a scope in a namespace; :func:`build_authenticator` picks
the one the settings name. ``token`` mode is here; ``kubernetes`` mode (TokenReview and
SubjectAccessReview) lives in its own module.

Token mode: each token is stored as its SHA-256 with its scopes, one JSON value per
token name, in a Secret (or, for host processes, a JSON file of the same shape)::

    {"ci": {"sha256": "<64 hex digits>", "scopes": ["execute"]}}

Scopes nest: ``admin`` grants ``execute`` which grants ``read``. A presented token is
hashed and compared with every stored hash in constant time. Tokens are never logged
or echoed, not even in an error.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Protocol

from fastapi import Request

from overseer import errors
from overseer_api import settings as settings_

log = logging.getLogger(__name__)


class Scope(enum.StrEnum):
    """What a caller may do: read, execute (and signal, repeat), administer (activate, sync)."""

    READ = "read"
    EXECUTE = "execute"
    ADMIN = "admin"


GRANTS: Mapping[Scope, frozenset[Scope]] = {
    Scope.READ: frozenset({Scope.READ}),
    Scope.EXECUTE: frozenset({Scope.READ, Scope.EXECUTE}),
    Scope.ADMIN: frozenset({Scope.READ, Scope.EXECUTE, Scope.ADMIN}),
}
"""The scopes each scope grants: they nest."""


@dataclasses.dataclass(frozen=True)
class Caller:
    """An authenticated caller."""

    name: str
    """Who, as recorded in audit fields: ``token:<name>`` or the Kubernetes username."""
    scopes: frozenset[Scope]
    """What a token grants; empty in kubernetes mode (decided per request)."""


class Authenticator(Protocol):
    """Turns credentials into a caller, and decides what the caller may do."""

    async def authenticate(self, bearer_token: str) -> Caller | None:
        """The caller this token stands for; None when it stands for nobody (401)."""
        ...

    async def authorize(self, caller: Caller, scope: Scope, namespace: str) -> bool:
        """Whether ``caller`` may use ``scope`` in ``namespace``; False means 403."""
        ...


@dataclasses.dataclass(frozen=True)
class StoredToken:
    """One token as stored: its name, the SHA-256 of its value, what it grants."""

    name: str
    sha256: bytes
    scopes: frozenset[Scope]


def hash_token(token: str) -> str:
    """The hex SHA-256 to store for ``token`` (what the chart and ``docs/api.rst`` compute)."""
    return hashlib.sha256(token.encode()).hexdigest()


def parse_tokens(data: Mapping[str, bytes | str]) -> tuple[StoredToken, ...]:
    """The tokens in a Secret's data (or the file); raises SettingsError naming a bad entry."""
    tokens = []
    for name, raw in sorted(data.items()):
        try:
            entry = json.loads(raw)
            digest = bytes.fromhex(entry["sha256"])
            scopes = frozenset().union(*(GRANTS[Scope(s)] for s in entry["scopes"]))
        except (ValueError, KeyError, TypeError) as error:
            msg = (
                f"token {name!r}: {error!s:.100}; each value is JSON such as "
                '{"sha256": "<hex sha256 of the token>", "scopes": ["read"]}'
            )
            raise errors.SettingsError(msg) from None
        if len(digest) != hashlib.sha256().digest_size:
            msg = f"token {name!r}: sha256 must be 64 hex digits"
            raise errors.SettingsError(msg)
        tokens.append(StoredToken(name, digest, scopes))
    return tuple(tokens)


TokenSource = Callable[[], Awaitable[Mapping[str, bytes | str]]]


class TokenAuthenticator:
    """``token`` mode: hashed tokens with scopes, read again every ``refresh`` seconds."""

    def __init__(self, source: TokenSource, refresh: float) -> None:
        self._source = source
        self._refresh = refresh
        self._tokens: tuple[StoredToken, ...] | None = None
        self._loaded_at = 0.0
        self._lock = asyncio.Lock()

    async def _current(self) -> tuple[StoredToken, ...]:
        if self._tokens is not None and time.monotonic() - self._loaded_at < self._refresh:
            return self._tokens
        async with self._lock:
            if self._tokens is None or time.monotonic() - self._loaded_at >= self._refresh:
                try:
                    self._tokens = parse_tokens(await self._source())
                except errors.OverseerError as error:
                    if self._tokens is None:
                        raise
                    # Keep serving with the tokens read last: a Secret being edited or
                    # an API server blip must not lock every client out.
                    log.warning("keeping the tokens read before: %s", error.message)
                self._loaded_at = time.monotonic()
        return self._tokens

    async def authenticate(self, bearer_token: str) -> Caller | None:
        digest = hashlib.sha256(bearer_token.encode()).digest()
        found: StoredToken | None = None
        for token in await self._current():
            # Every stored hash is compared, so the time taken says nothing about which.
            if hmac.compare_digest(digest, token.sha256):
                found = token
        return None if found is None else Caller(f"token:{found.name}", found.scopes)

    async def authorize(self, caller: Caller, scope: Scope, namespace: str) -> bool:
        return scope in caller.scopes


class SecretReader(Protocol):
    async def read_secret(self, namespace: str, name: str) -> dict[str, bytes]: ...


def build_authenticator(settings: settings_.Settings, kube: SecretReader) -> Authenticator:
    """The authenticator ``settings.auth`` names."""
    if settings.auth == "token":
        return TokenAuthenticator(_token_source(settings, kube), settings.tokens_refresh)
    msg = f"OVERSEER_API_AUTH={settings.auth!r} is not available in this build; use token"
    raise errors.SettingsError(msg)


def _token_source(settings: settings_.Settings, kube: SecretReader) -> TokenSource:
    path = settings.tokens_file
    if path is not None:
        return lambda: _read_file(path)
    namespace, name = settings.namespace, settings.tokens_secret
    return lambda: kube.read_secret(namespace, name)


async def _read_file(path: Path) -> Mapping[str, bytes | str]:
    try:
        data = json.loads(await asyncio.to_thread(path.read_bytes))
    except (OSError, ValueError) as error:
        msg = f"reading the tokens file {path}: {error!s:.200}"
        raise errors.SettingsError(msg) from None
    if not isinstance(data, dict):
        msg = f"the tokens file {path} must hold a JSON object of token name to entry"
        raise errors.SettingsError(msg)
    return {str(k): json.dumps(v) for k, v in data.items()}


def bearer_token(request: Request) -> str | None:
    """The token of the request's ``Authorization: Bearer <token>`` header, if any."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return token if scheme.lower() == "bearer" and token else None


async def check(
    authenticator: Authenticator, token: str | None, scope: Scope, namespace: str
) -> Caller:
    """The caller ``token`` stands for, allowed ``scope`` in ``namespace``.

    Raises AuthenticationError (401 with ``WWW-Authenticate``) without a token or with an
    unknown one, PermissionDeniedError (403, naming the scope) when not allowed.
    """
    if token is None:
        raise errors.AuthenticationError(
            "this route needs a bearer token: send 'Authorization: Bearer <token>'"
        )
    who = await authenticator.authenticate(token)
    if who is None:
        raise errors.AuthenticationError(
            "the bearer token is not valid: check it, or ask for a new one"
        )
    if not await authenticator.authorize(who, scope, namespace):
        raise errors.PermissionDeniedError(
            f"{who.name} lacks the {scope.value!r} scope in namespace {namespace!r}; "
            f"use a token that grants it",
            scope.value,
        )
    return who
