"""The API's settings: ``OVERSEER_API_*`` variables, read once in ``__main__``, passed down.

Declared on the shared :class:`overseer.settings.OverseerSettings` (pydantic-settings,
durations as :data:`overseer.settings.Duration`, ``--help`` generated from the model).
The prefix is the API's own, not the operator's ``OVERSEER_``: the two are separate
processes (separate containers in the chart, or two host processes in one shell for
development and tests), and a variable meant for one must never change the other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from overseer import settings as shared
from overseer.core import names

ENV_PREFIX = "OVERSEER_API_"

AuthMode = Literal["token", "kubernetes"]


class Settings(shared.ArchiveSettings):
    """Everything the API needs to know about its environment; immutable once built."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX)

    namespace: str = Field(
        default="default",
        description="The default namespace: what the original's paths (/jobs...) serve.",
    )
    namespaces: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description=(
            "Other namespaces served under /namespaces/{namespace}/..., comma- or "
            "space-separated (those the operator watches)."
        ),
    )
    kubeconfig: str | None = Field(
        default=None,
        description="A kubeconfig file; in-cluster credentials (or KUBECONFIG) when unset.",
    )
    auth: AuthMode = Field(
        default="token",
        description=(
            "token: bearer tokens with scopes, kept hashed in a Secret (or a file); "
            "kubernetes: the caller's Kubernetes token (TokenReview, SubjectAccessReview)."
        ),
    )
    tokens_secret: str = Field(
        default="overseer-api-tokens",
        description="Secret in the default namespace holding the hashed tokens (token mode).",
    )
    tokens_file: Path | None = Field(
        default=None,
        description=(
            "A JSON file holding the hashed tokens instead of the Secret (host processes,"
            " development); same format as the Secret's data."
        ),
    )
    tokens_refresh: shared.Duration = Field(
        default=30.0, description="How often the tokens are read again (a duration)."
    )
    host: str = Field(
        default="0.0.0.0",  # noqa: S104 - it serves in a pod, behind its Service
        description="Address to listen on.",
    )
    port: int = Field(default=8000, ge=1, le=65535, description="Port to listen on.")
    public_url: str | None = Field(
        default=None,
        description=(
            "The API's URL as clients reach it, for Location headers and output URLs; "
            "the request's own URL when unset."
        ),
    )
    retry_after: int = Field(
        default=5,
        ge=1,
        description="Seconds a 503 (cluster unreachable, caches not ready) asks clients to wait.",
    )
    output_wait: float = Field(
        default=30.0,
        ge=0,
        description=(
            "Seconds the output routes wait, once an execution has ended, for its archive"
            " to hold every byte before answering with what there is (and"
            " Overseer-Output-Incomplete: true)."
        ),
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Log level."
    )
    auth_cache_ttl: shared.Duration = Field(
        default=10.0,
        description=(
            "kubernetes mode: how long a TokenReview or SubjectAccessReview answer is kept "
            "(a duration such as 10s); a revoked token or RoleBinding takes effect within it."
        ),
    )
    auth_cache_size: int = Field(
        default=4096, ge=1, description="kubernetes mode: answers kept at most, per kind."
    )
    idempotency_ttl: shared.Duration = Field(
        default=86400.0,
        ge=86400.0,
        description=(
            "How long an Idempotency-Key is remembered (a duration, at least 24h): the same "
            "POST with the same key within it returns the first one's result."
        ),
    )
    idempotency_wait: shared.Duration = Field(
        default=10.0,
        description=(
            "How long a POST waits for another one with the same Idempotency-Key to finish "
            "before answering 409."
        ),
    )
    git_hooks: bool = Field(
        default=True,
        description=(
            "Serve POST /hooks/git/{repository} (reads the Secret a repository names in "
            "spec.hookSecretRef); false answers 404."
        ),
    )

    @field_validator("namespaces", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part for part in value.replace(",", " ").split() if part)
        return value

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        if not names.is_dns_label(value):
            msg = f"{value!r} is not a namespace name (a DNS-1123 label)"
            raise ValueError(msg)
        return value

    @field_validator("namespaces")
    @classmethod
    def _namespaces(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [n for n in value if not names.is_dns_label(n)]
        if bad:
            msg = f"{', '.join(map(repr, bad))}: not namespace names (DNS-1123 labels)"
            raise ValueError(msg)
        return value

    @property
    def served_namespaces(self) -> tuple[str, ...]:
        """The default namespace first, then the others, each once."""
        return tuple(dict.fromkeys((self.namespace, *self.namespaces)))
