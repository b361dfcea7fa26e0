"""Which secret signs an execution's webhooks: its namespace's own, read through a short cache.

Each namespace signs with the secret in its own Secret (``OVERSEER_WEBHOOK_SIGNING_SECRET``,
``overseer-webhook-signing`` by default, key ``OVERSEER_WEBHOOK_SIGNING_KEY``, ``secret``),
so a tenant's deliveries never verify with another tenant's key. The operator's own
secret (``OVERSEER_WEBHOOK_SECRET``) signs for a namespace without one only when
``OVERSEER_WEBHOOK_SIGNING_FALLBACK`` is true. Otherwise nothing is sent unsigned:
:meth:`SigningSecrets.secret_for` raises :class:`overseer.errors.WebhookNotSignedError`,
which the delivery records (Pending, retried with backoff) and reports in an Event.

Reads are cached per namespace for ``OVERSEER_WEBHOOK_SIGNING_CACHE`` (10 s), found or
not, and one read per namespace runs at a time: a burst of deliveries costs one API
call, and a Secret created or rotated is used within that time. Secrets are never
logged nor quoted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from overseer import errors, kube_client
from overseer.core import webhooks as core
from overseer.operator.settings import WebhookSettings

_Entry = tuple[float, str | None, errors.WebhookError | None]


class SigningSecrets:
    """The signing secret of each namespace; build once per process."""

    def __init__(
        self,
        client: kube_client.KubeClient,
        settings: WebhookSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._settings = settings
        self._clock = clock
        self._cache: dict[str, _Entry] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def secret_for(self, namespace: str) -> str:
        """The secret that signs ``namespace``'s deliveries.

        Raises :class:`errors.WebhookNotSignedError` (retried) when there is none,
        :class:`errors.WebhookSecretError` (final) when the namespace's is malformed, and
        :class:`errors.KubeError` when the Secret cannot be read.
        """
        lock = self._locks.setdefault(namespace, asyncio.Lock())
        async with lock:
            entry = self._cache.get(namespace)
            if entry is None or self._clock() - entry[0] >= self._settings.signing_cache:
                entry = (self._clock(), *await self._read(namespace))
                self._cache[namespace] = entry
        _, secret, error = entry
        if error is not None:
            raise error
        assert secret is not None
        return secret

    async def _read(self, namespace: str) -> tuple[str | None, errors.WebhookError | None]:
        name, key = self._settings.signing_secret, self._settings.signing_key
        where = f"Secret {name} with a key {key} in namespace {namespace}"
        try:
            data = await self._client.read_secret(namespace, name)
        except errors.KubeSecretNotFoundError:
            data = {}
        raw = data.get(key)
        if raw is not None:
            try:
                secret = raw.decode("utf-8").strip()
                core.parse_secret(secret)
            except (UnicodeDecodeError, errors.WebhookSecretError) as error:
                detail = error.message if isinstance(error, errors.WebhookError) else "not UTF-8"
                return None, errors.WebhookSecretError(
                    f"the {where} is no signing secret: {detail}"
                )
            return secret, None
        if self._settings.fallback and self._settings.secret:
            return self._settings.secret, None
        fallback = (
            "the operator's own secret is not set (OVERSEER_WEBHOOK_SECRET)"
            if self._settings.fallback
            else "the operator's own secret signs only with webhooks.signing."
            "fallbackToOperatorSecret (OVERSEER_WEBHOOK_SIGNING_FALLBACK)"
        )
        return None, errors.WebhookNotSignedError(
            f"not sent, as nothing may go unsigned: no {where}, and {fallback}; create that "
            "Secret (docs/webhooks.rst): the delivery is tried again with backoff"
        )
