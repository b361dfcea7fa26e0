"""The operator's webhook settings, read from ``OVERSEER_*`` variables at start-up.

Apart from :mod:`overseer.operator.settings` so that the shared settings module only
gains one field: :class:`Settings.webhooks`. Errors are ``ValueError`` with a message
naming the variable (the caller turns them into its ``SettingsError``). The signing
secret is kept out of ``repr`` and out of every message, so it is never logged.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import urllib.parse
from collections.abc import Mapping

from overseer import errors, webhooks
from overseer.core import webhooks as core
from overseer.crd import types

DEFAULT_API_URL = "http://localhost:8000"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


@dataclasses.dataclass(frozen=True)
class WebhookSettings:
    """How the operator sends webhooks."""

    api_url: str = DEFAULT_API_URL
    """Base URL of Overseer's API: payloads' ``metadata`` is the execution's URL on it."""
    secret: str = dataclasses.field(default="", repr=False)
    """The signing secret (``OVERSEER_WEBHOOK_SECRET``); empty: deliveries fail, unsigned."""
    url_policy: core.UrlPolicy = core.DEFAULT_URL_POLICY
    """Which targets are allowed (private, link-local, allow-listed networks)."""
    timeout: float = 10.0
    """Seconds one attempt may take: resolution, connection and the answer."""
    concurrency: int = 16
    """Attempts in flight at once, over all executions."""

    @property
    def send_policy(self) -> webhooks.SendPolicy:
        return webhooks.SendPolicy(url=self.url_policy, timeout=self.timeout)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> WebhookSettings:
        """Read the ``OVERSEER_WEBHOOK_*``, ``OVERSEER_API_URL`` and ``OVERSEER_SERVICE_CIDR``."""
        api_url = env.get("OVERSEER_API_URL", "").strip() or DEFAULT_API_URL
        parts = urllib.parse.urlsplit(api_url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError(
                f"OVERSEER_API_URL is {api_url!r}; write the API's base URL, such as "
                "https://overseer.example.com"
            )
        secret = env.get("OVERSEER_WEBHOOK_SECRET", "").strip()
        if secret:
            try:
                core.parse_secret(secret)
            except errors.WebhookSecretError as error:
                raise ValueError(f"OVERSEER_WEBHOOK_SECRET: {error.message}") from None
        try:
            timeout = types.parse_duration(
                env.get("OVERSEER_WEBHOOK_TIMEOUT", "10s")
            ).total_seconds()
        except ValueError as error:
            raise ValueError(
                f"OVERSEER_WEBHOOK_TIMEOUT: {error}; durations look like 10s or 1m"
            ) from None
        if timeout <= 0:
            raise ValueError("OVERSEER_WEBHOOK_TIMEOUT must be longer than 0s")
        concurrency_text = env.get("OVERSEER_WEBHOOK_CONCURRENCY", str(cls.concurrency)).strip()
        if not concurrency_text.isdigit() or int(concurrency_text) < 1:
            raise ValueError(
                f"OVERSEER_WEBHOOK_CONCURRENCY is {concurrency_text!r}; use a whole number >= 1"
            )
        private = _networks(env, "OVERSEER_WEBHOOK_PRIVATE_NETWORKS")
        policy = core.UrlPolicy(
            allow_private=_flag(env, "OVERSEER_WEBHOOK_ALLOW_PRIVATE"),
            allow_link_local=_flag(env, "OVERSEER_WEBHOOK_ALLOW_LINK_LOCAL"),
            private=private if private else core.CLUSTER_INTERNAL,
            service_cidrs=_networks(env, "OVERSEER_SERVICE_CIDR"),
            allowed=_networks(env, "OVERSEER_WEBHOOK_ALLOWED_NETWORKS"),
        )
        return cls(
            api_url=api_url,
            secret=secret,
            url_policy=policy,
            timeout=timeout,
            concurrency=int(concurrency_text),
        )


def _flag(env: Mapping[str, str], name: str) -> bool:
    value = env.get(name, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{name} is {value!r}; use true or false")


def _networks(env: Mapping[str, str], name: str) -> tuple[core.Network, ...]:
    """A comma- or space-separated list of CIDRs (an address alone is one host)."""
    found: list[core.Network] = []
    for item in env.get(name, "").replace(",", " ").split():
        try:
            found.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(
                f"{name}: {item!r} is not a network; write CIDRs such as 10.20.0.0/16, fd00::/8"
            ) from None
    return tuple(found)
