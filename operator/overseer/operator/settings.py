"""The operator's settings, read once at start-up from the environment and validated."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import cast, get_args

from overseer import errors
from overseer.core import execution_job
from overseer.core import retention as retention_
from overseer.crd import types
from overseer.operator import webhook_settings


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything the operator's reactions need to know about their environment."""

    namespaces: tuple[str, ...] = ()
    """Namespaces to watch; empty means the whole cluster."""
    cache_dir: Path = Path("/var/cache/overseer")
    """Where git mirrors are kept (an emptyDir in the chart)."""
    archive_dir: Path = Path("/var/lib/overseer/archive")
    """Root of the local output archive (``OVERSEER_ARCHIVE_DIR``), see overseer.archive."""
    kubeconfig: str | None = None
    """A kubeconfig file; in-cluster credentials when unset."""
    git_timeout: float = 120.0
    """Seconds a fetch may take before it is abandoned."""
    retry_min: float = 5.0
    """First delay after a temporary (waiting) failure, doubled each time."""
    retry_max: float = 300.0
    """Longest delay between retries after temporary failures."""
    library_image: str = execution_job.LIBRARY_IMAGE
    """The library image: executions' default image, and the supervisor's source."""
    image_pull_policy: execution_job.PullPolicy = "IfNotPresent"
    """Pull policy of the library image in executions' pods."""
    finished_job_ttl: float = 3600.0
    """Seconds a finished execution keeps its Job and pod once its output is archived."""
    execution_ttl: float | None = None
    """Seconds after which a finished execution and its output are deleted; None keeps them."""

    # --- webhooks (overseer.operator.webhook_settings) ---
    webhooks: webhook_settings.WebhookSettings = dataclasses.field(
        default_factory=webhook_settings.WebhookSettings
    )
    """Webhook deliveries: API URL, signing secret, URL policy, timeout."""

    @property
    def retention(self) -> retention_.Retention:
        """What these settings decide about cleaning up after executions."""
        return retention_.Retention(
            finished_job_ttl=timedelta(seconds=self.finished_job_ttl),
            execution_ttl=None
            if self.execution_ttl is None
            else timedelta(seconds=self.execution_ttl),
        )

    schedule_starting_deadline: float | None = 3600.0
    """Seconds a missed scheduled time may still start late (``OVERSEER_SCHEDULE_STARTING_
    DEADLINE``, ``none`` for no limit); see overseer.core.schedule."""

    @property
    def job_settings(self) -> execution_job.JobSettings:
        """What these settings decide about every execution's pod."""
        return execution_job.JobSettings(
            library_image=self.library_image, image_pull_policy=self.image_pull_policy
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        """Read ``OVERSEER_*`` variables; raise :class:`errors.SettingsError` on a bad one."""
        namespaces = tuple(n for n in env.get("OVERSEER_NAMESPACES", "").replace(",", " ").split())
        git_timeout = _seconds(env, "OVERSEER_GIT_TIMEOUT", "120s")
        retry_min = _seconds(env, "OVERSEER_RETRY_MIN", "5s")
        retry_max = _seconds(env, "OVERSEER_RETRY_MAX", "5m")
        finished_job_ttl = _seconds(env, "OVERSEER_FINISHED_JOB_TTL", "1h", zero=True)
        execution_ttl = (
            _seconds(env, "OVERSEER_EXECUTION_TTL", "")
            if env.get("OVERSEER_EXECUTION_TTL", "").strip()
            else None
        )
        if retry_min <= 0 or retry_max < retry_min:
            raise errors.SettingsError("OVERSEER_RETRY_MIN must be > 0 and <= OVERSEER_RETRY_MAX")
        library_image = env.get("OVERSEER_LIBRARY_IMAGE", cls.library_image).strip()
        if not library_image or any(c.isspace() for c in library_image):
            raise errors.SettingsError(
                "OVERSEER_LIBRARY_IMAGE must be an image reference, such as "
                f"{execution_job.LIBRARY_IMAGE}"
            )
        policies = get_args(execution_job.PullPolicy)
        pull_policy = env.get("OVERSEER_IMAGE_PULL_POLICY", cls.image_pull_policy)
        if pull_policy not in policies:
            raise errors.SettingsError(
                f"OVERSEER_IMAGE_PULL_POLICY is {pull_policy!r}; use one of {', '.join(policies)}"
            )
        archive_dir = Path(env.get("OVERSEER_ARCHIVE_DIR") or cls.archive_dir)
        if not archive_dir.is_absolute():
            raise errors.SettingsError(
                f"OVERSEER_ARCHIVE_DIR is {str(archive_dir)!r}; use an absolute path"
            )
        # --- webhooks ---
        try:
            webhooks = webhook_settings.WebhookSettings.from_env(env)
        except ValueError as error:
            raise errors.SettingsError(str(error)) from None
        # --- schedules ---
        deadline_text = env.get("OVERSEER_SCHEDULE_STARTING_DEADLINE", "1h").strip()
        try:
            deadline = (
                None
                if deadline_text.lower() == "none"
                else types.parse_duration(deadline_text).total_seconds()
            )
        except ValueError as error:
            raise errors.SettingsError(
                f"OVERSEER_SCHEDULE_STARTING_DEADLINE: {error}; use a duration like 5m, or none"
            ) from None
        if deadline is not None and deadline <= 0:
            raise errors.SettingsError("OVERSEER_SCHEDULE_STARTING_DEADLINE must be > 0, or none")
        # --- end schedules ---
        return cls(
            namespaces=namespaces,
            cache_dir=Path(env.get("OVERSEER_CACHE_DIR", str(cls.cache_dir))),
            archive_dir=archive_dir,
            kubeconfig=env.get("KUBECONFIG") or None,
            git_timeout=git_timeout,
            retry_min=retry_min,
            retry_max=retry_max,
            library_image=library_image,
            image_pull_policy=cast("execution_job.PullPolicy", pull_policy),
            finished_job_ttl=finished_job_ttl,
            execution_ttl=execution_ttl,
            webhooks=webhooks,
            schedule_starting_deadline=deadline,
        )


def _seconds(env: Mapping[str, str], name: str, default: str, *, zero: bool = False) -> float:
    """The duration in variable NAME, in seconds; ``0`` is allowed (and means "at once")
    only when ``zero``."""
    text = env.get(name, default).strip()
    if zero and text in ("0", "0s"):
        return 0.0
    try:
        return types.parse_duration(text).total_seconds()
    except ValueError as error:
        raise errors.SettingsError(f"{name}: {error}") from None
