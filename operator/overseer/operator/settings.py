"""The operator's settings: ``OVERSEER_*`` variables, read once in ``__main__`` and passed down.

Declared on :class:`overseer.settings.OverseerSettings` (pydantic-settings): each field is
one variable, its docstring is the variable's ``--help`` line. The signing secret is a
``SecretStr``: it shows in no ``repr`` and no message.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import urllib.parse
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import pydantic
from pydantic_settings import NoDecode

from overseer import errors, kube, webhooks
from overseer import settings as shared
from overseer.core import (
    bundle,
    delivery_retry,
    event_bounds,
    execution_job,
    git_source,
    leases,
    write_pacing,
)
from overseer.core import retention as retention_
from overseer.core import webhooks as core_webhooks

DEFAULT_API_URL = "http://localhost:8000"
DEFAULT_SIGNING_SECRET = "overseer-webhook-signing"  # noqa: S105 - a Secret's name
DEFAULT_SIGNING_KEY = "secret"


def _words(value: Any) -> Any:
    """``"a, b c"`` -> ``("a", "b", "c")``: lists are written comma- or space-separated."""
    return tuple(value.replace(",", " ").split()) if isinstance(value, str) else value


def _networks(value: Any) -> tuple[core_webhooks.Network, ...]:
    """CIDRs (an address alone is one host), comma- or space-separated."""
    found: list[core_webhooks.Network] = []
    for item in _words(value):
        try:
            found.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            msg = f"{item!r} is not a network; write CIDRs such as 10.20.0.0/16, fd00::/8"
            raise ValueError(msg) from None
    return tuple(found)


def _deadline(value: Any) -> Any:
    return None if isinstance(value, str) and value.strip().lower() == "none" else value


Words = Annotated[tuple[str, ...], NoDecode, pydantic.BeforeValidator(_words)]
Networks = Annotated[
    tuple[core_webhooks.Network, ...], NoDecode, pydantic.BeforeValidator(_networks)
]


@dataclasses.dataclass(frozen=True)
class WebhookSettings:
    """How the operator sends webhooks (derived from the ``OVERSEER_WEBHOOK_*`` fields)."""

    api_url: str
    secret: str = dataclasses.field(repr=False)
    url_policy: core_webhooks.UrlPolicy
    timeout: float
    concurrency: int
    host_concurrency: int
    retry: delivery_retry.RetryPolicy
    signing_secret: str = DEFAULT_SIGNING_SECRET
    """The Secret, in each execution's namespace, that signs its deliveries."""
    signing_key: str = DEFAULT_SIGNING_KEY
    fallback: bool = False
    """Sign with ``secret`` (the operator's) where a namespace has no Secret of its own."""
    signing_cache: float = 10.0
    """Seconds a namespace's Secret (or its absence) is remembered."""

    @property
    def send_policy(self) -> webhooks.SendPolicy:
        return webhooks.SendPolicy(url=self.url_policy, retry=self.retry, timeout=self.timeout)


class Settings(shared.ArchiveSettings):
    """Everything the operator's reactions need to know about their environment."""

    kubeconfig: str | None = pydantic.Field(default=None, validation_alias="KUBECONFIG")
    """A kubeconfig file; in-cluster credentials when unset."""
    namespaces: Words = ()
    """Namespaces to watch, comma separated; unset: the whole cluster."""
    cache_dir: Path = Path("/var/cache/overseer")
    """Where git mirrors are kept (an emptyDir in the chart)."""
    git_timeout: shared.Duration = 120.0
    """Longest a git fetch may take before it is abandoned."""
    git_allow_file_urls: bool = False
    """Let repositories use file:// URLs (tests, development; never into cache_dir)."""
    retry_min: shared.Duration = 5.0
    """First delay after a temporary (waiting) failure, doubled each time."""
    retry_max: shared.Duration = 300.0
    """Longest delay between retries after temporary failures."""
    kube_timeout: shared.Duration = 30.0
    """Longest wait to connect to the API server, and for each answer of a request."""
    log_read_timeout: shared.Duration = 300.0
    """Silence on a followed pod log before it is given up and read again (a half-open
    connection is found this late at most; a job quiet for longer has its log read again
    from its start, and nothing archived twice)."""
    watch_timeout: shared.Duration = 300.0
    """How long the API server keeps one watch open; a watch silent for a minute longer
    is given up and started again (a half-open connection)."""
    resync_interval: shared.Duration = 300.0
    """How often each execution not yet ended is observed again, even without a watch
    event (one missed while the API server was away, say)."""
    library_image: str = execution_job.LIBRARY_IMAGE
    """The library image: executions' default image, and the supervisor's source."""
    image_pull_policy: execution_job.PullPolicy = "IfNotPresent"
    """Pull policy of job pods' images: Always, IfNotPresent or Never."""
    finished_job_ttl: shared.DurationOrZero = 3600.0
    """How long a finished execution keeps its Job and pod once its output is archived."""
    execution_ttl: shared.Duration | None = None
    """How long after it ends an execution and its output are deleted; unset keeps them."""
    execution_account_grace: shared.Duration = 60.0
    """How long an execution's Job may be without a pod before the namespace's
    overseer-execution ServiceAccount is created again (it may have been deleted)."""
    kept_bundles: int = pydantic.Field(default=bundle.DEFAULT_KEPT_BUNDLES, ge=1)
    """Most bin/ bundles a repository keeps beyond the synced commit's and those of
    executions not ended (for repeats of ended ones); see overseer.core.bundle."""
    schedule_starting_deadline: Annotated[
        shared.Duration | None, pydantic.BeforeValidator(_deadline)
    ] = 3600.0
    """How late a missed scheduled time may still start; none: however late."""
    api_url: str = DEFAULT_API_URL
    """Base URL of Overseer's API: webhook payloads' metadata is the execution's URL on it."""
    webhook_secret: pydantic.SecretStr = pydantic.SecretStr("")
    """The operator's own signing secret (whsec_...): used only with the fallback below."""
    webhook_signing_secret: Annotated[
        str, pydantic.Field(pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", max_length=253)
    ] = DEFAULT_SIGNING_SECRET
    """The Secret, in each execution's namespace, whose key signs its webhooks."""
    webhook_signing_key: Annotated[
        str, pydantic.Field(pattern=r"^[-._a-zA-Z0-9]+$", max_length=253)
    ] = DEFAULT_SIGNING_KEY
    """The key of that Secret holding the signing secret (whsec_... or text)."""
    webhook_signing_fallback: bool = False
    """Sign for namespaces without that Secret with OVERSEER_WEBHOOK_SECRET (true/false)."""
    webhook_signing_cache: shared.DurationOrZero = 10.0
    """How long a namespace's signing Secret (or its absence) is remembered."""
    webhook_allow_private: bool = False
    """Let webhooks reach loopback, cluster-internal and private addresses (true/false)."""
    webhook_allow_link_local: bool = False
    """Let webhooks reach link-local addresses too (cloud metadata); true/false."""
    webhook_private_networks: Networks = ()
    """The ranges counted as private (CIDRs); unset: the usual cluster-internal ones."""
    webhook_allowed_networks: Networks = ()
    """Ranges webhooks may always reach (CIDRs), private or not."""
    service_cidr: Networks = ()
    """The cluster's Service CIDRs, counted as cluster-internal for webhooks."""
    webhook_timeout: shared.Duration = 10.0
    """Longest one webhook attempt may take: resolution, connection and the answer."""
    webhook_concurrency: int = pydantic.Field(default=16, ge=1)
    """Webhook attempts in flight at once, over all executions."""
    webhook_host_concurrency: int = pydantic.Field(default=4, ge=1)
    """Webhook attempts in flight at once to one host, so a hung one holds no more."""
    webhook_retry_min: shared.Duration = 1.0
    """First wait before a failed webhook delivery is tried again, doubled each time."""
    webhook_retry_max: shared.Duration = 300.0
    """Longest wait between two attempts of a failing webhook delivery."""
    webhook_retry_horizon: shared.Duration = 86400.0
    """How long a failing webhook delivery is tried again before it is given up."""
    sync_write_concurrency: int = pydantic.Field(
        default=write_pacing.DEFAULT_CONCURRENCY, ge=1, le=64
    )
    """API writes a repository sync keeps in flight at once (the scheduler's status writes
    share them, after the sync's); one refused for now (429, 5xx) is sent again later."""
    repository_max_files: int = pydantic.Field(default=git_source.DEFAULT_LIMITS.max_files, ge=1)
    """Files a repository may hold under its path; more fails its sync (RepositoryTooLarge)."""
    repository_max_file_size: shared.Size = git_source.DEFAULT_LIMITS.max_file_bytes
    """Bytes of one job file or overseer.yml (1Mi); a larger one is that file's error, unread."""
    repository_max_jobs_size: shared.Size = git_source.DEFAULT_LIMITS.max_job_bytes
    """Bytes of a repository's job files together (32Mi); more fails its sync."""
    repository_max_bin_size: shared.Size = git_source.DEFAULT_LIMITS.max_bin_bytes
    """Bytes of a repository's bin/ together (1Mi, what a ConfigMap holds)."""
    repository_max_mirror_size: shared.Size = git_source.DEFAULT_LIMITS.max_mirror_bytes
    """Bytes of a repository's git mirror on the operator's disk (256Mi)."""
    execution_max_events: int = pydantic.Field(
        default=event_bounds.DEFAULT_EVENT_LIMITS.max_events, ge=1
    )
    """Custom events an execution keeps; later ones are only counted (eventsDropped)."""
    execution_max_events_size: shared.Size = event_bounds.DEFAULT_EVENT_LIMITS.max_total_bytes
    """Bytes of data of an execution's kept custom events together (256Ki)."""

    lease_name: str = leases.LEASE_NAME
    """The Lease operators contend for, in each watched namespace: only its holder acts."""
    lease_namespace: str = ""
    """Where the Lease lives when the whole cluster is watched; unset: the pod's namespace."""
    lease_duration: shared.Duration = 15.0
    """How long a standby waits, after the last renewal it saw, before it takes over."""
    lease_renew_deadline: shared.Duration = 10.0
    """How long after its last renewal started a leader that cannot renew stops acting."""
    lease_retry_period: shared.Duration = 2.0
    """How often the leader renews and a standby tries to take the Lease."""
    metrics_port: int = pydantic.Field(default=8080, ge=0, le=65535)
    """Port of /metrics and /healthz (all addresses); 0 serves neither."""

    @pydantic.field_validator("library_image")
    @classmethod
    def _image_reference(cls, value: str) -> str:
        value = value.strip()
        if not value or any(c.isspace() for c in value):
            msg = f"use an image reference, such as {execution_job.LIBRARY_IMAGE}"
            raise ValueError(msg)
        return value

    @pydantic.field_validator("api_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        parts = urllib.parse.urlsplit(value.strip())
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            msg = f"{value!r}: write the API's base URL, such as https://overseer.example.com"
            raise ValueError(msg)
        return value.strip()

    @pydantic.field_validator("webhook_secret")
    @classmethod
    def _signing_secret(cls, value: pydantic.SecretStr) -> pydantic.SecretStr:
        secret = value.get_secret_value().strip()
        if secret:
            try:
                core_webhooks.parse_secret(secret)
            except errors.WebhookSecretError as error:
                raise ValueError(error.message) from None
        return pydantic.SecretStr(secret)

    @pydantic.model_validator(mode="after")
    def _retry_bounds(self) -> Settings:
        if self.retry_max < self.retry_min:
            msg = "OVERSEER_RETRY_MIN must be > 0 and <= OVERSEER_RETRY_MAX"
            raise ValueError(msg)
        if self.webhook_retry_max < self.webhook_retry_min:
            msg = "OVERSEER_WEBHOOK_RETRY_MIN must be <= OVERSEER_WEBHOOK_RETRY_MAX"
            raise ValueError(msg)
        if not self.lease_retry_period < self.lease_renew_deadline < self.lease_duration:
            msg = (
                "need OVERSEER_LEASE_RETRY_PERIOD < OVERSEER_LEASE_RENEW_DEADLINE"
                " < OVERSEER_LEASE_DURATION"
            )
            raise ValueError(msg)
        if self.webhook_host_concurrency > self.webhook_concurrency:
            msg = "OVERSEER_WEBHOOK_HOST_CONCURRENCY must be <= OVERSEER_WEBHOOK_CONCURRENCY"
            raise ValueError(msg)
        return self

    @property
    def lease_timing(self) -> leases.Timing:
        """How long the Lease lasts and how often it is renewed (docs/operations.rst)."""
        return leases.Timing(
            duration=self.lease_duration,
            renew_deadline=self.lease_renew_deadline,
            retry_period=self.lease_retry_period,
        )

    @property
    def retention(self) -> retention_.Retention:
        """What these settings decide about cleaning up after executions."""
        ttl = self.execution_ttl
        return retention_.Retention(
            finished_job_ttl=timedelta(seconds=self.finished_job_ttl),
            execution_ttl=None if ttl is None else timedelta(seconds=ttl),
        )

    @property
    def repository_limits(self) -> git_source.Limits:
        """What one repository may hold (docs/security.rst)."""
        return git_source.Limits(
            max_file_bytes=self.repository_max_file_size,
            max_files=self.repository_max_files,
            max_job_bytes=self.repository_max_jobs_size,
            max_bin_bytes=self.repository_max_bin_size,
            max_mirror_bytes=self.repository_max_mirror_size,
        )

    @property
    def event_limits(self) -> event_bounds.EventLimits:
        """Custom events kept per execution (docs/security.rst)."""
        return event_bounds.EventLimits(
            max_events=self.execution_max_events,
            max_total_bytes=self.execution_max_events_size,
        )

    @property
    def kube_timeouts(self) -> kube.Timeouts:
        """How long the API client waits on the API server."""
        return kube.Timeouts(request=self.kube_timeout, log_read=self.log_read_timeout)

    @property
    def job_settings(self) -> execution_job.JobSettings:
        """What these settings decide about every execution's pod."""
        return execution_job.JobSettings(
            library_image=self.library_image, image_pull_policy=self.image_pull_policy
        )

    @property
    def webhooks(self) -> WebhookSettings:
        """Webhook deliveries: API URL, signing secret, URL policy, timeout."""
        policy = core_webhooks.UrlPolicy(
            allow_private=self.webhook_allow_private,
            allow_link_local=self.webhook_allow_link_local,
            private=self.webhook_private_networks or core_webhooks.CLUSTER_INTERNAL,
            service_cidrs=self.service_cidr,
            allowed=self.webhook_allowed_networks,
        )
        return WebhookSettings(
            api_url=self.api_url,
            secret=self.webhook_secret.get_secret_value(),
            url_policy=policy,
            timeout=self.webhook_timeout,
            concurrency=self.webhook_concurrency,
            host_concurrency=self.webhook_host_concurrency,
            retry=delivery_retry.RetryPolicy(
                first=timedelta(seconds=self.webhook_retry_min),
                max_delay=timedelta(seconds=self.webhook_retry_max),
                horizon=timedelta(seconds=self.webhook_retry_horizon),
            ),
            signing_secret=self.webhook_signing_secret,
            signing_key=self.webhook_signing_key,
            fallback=self.webhook_signing_fallback,
            signing_cache=self.webhook_signing_cache,
        )
