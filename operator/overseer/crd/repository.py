"""OverseerRepository: a git repository (and folder in it) that job definitions come from."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from overseer.crd import base, types
from overseer.crd import conditions as cond

SHORT_COMMIT_LENGTH = 12

_SCP_LIKE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:.+$")
_URL = re.compile(r"^(https?|ssh|git|file)://\S+$")


class SecretReference(base.Model):
    """A Secret in the repository's namespace.

    For HTTPS it holds ``token`` (and optionally ``username``); for SSH it holds
    the private key and known_hosts (docs/repositories.rst lists the key names).
    A credentials Secret must carry the label ``overseer.dev/git-credentials: "true"``.
    """

    name: Annotated[str, Field(min_length=1, max_length=253)] = Field(
        description="Name of the Secret."
    )


class RepositorySpec(base.Model):
    """Where the job definitions are and how often to look at them."""

    url: Annotated[str, Field(min_length=1, max_length=2048)] = Field(
        description="Git URL: https://, ssh://, git://, git@host:path or file://; no password."
    )
    ref: Annotated[str, Field(min_length=1, max_length=256)] | None = Field(
        default=None, description="Branch, tag or commit; the remote's HEAD when unset."
    )
    path: Annotated[str, Field(min_length=1, max_length=1024)] | None = Field(
        default=None,
        description="Folder inside the repository holding the job files; the root when unset.",
    )
    interval: types.Duration = Field(
        default="1m", description="How often to poll, such as 30s or 5m."
    )
    secret_ref: SecretReference | None = Field(
        default=None,
        description=(
            "Credentials for a private repository: a Secret of the namespace labelled "
            'overseer.dev/git-credentials: "true" (docs/repositories.rst).'
        ),
    )
    allow_insecure_http: bool = Field(
        default=False,
        description=(
            "Send the token of secretRef to an http:// URL, unencrypted (a server inside "
            "the cluster, say). Unset: a token is sent over https:// only."
        ),
    )
    suspend: bool = Field(default=False, description="Stop syncing while true.")
    hook_secret_ref: SecretReference | None = Field(
        default=None,
        description=(
            "Secret whose `token` key authenticates push hooks (POST /hooks/git/{repository}): "
            "the GitHub or Gitea webhook secret, or the GitLab secret token. Unset: the API "
            "refuses push hooks for this repository."
        ),
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not (_URL.match(value) or _SCP_LIKE.match(value)):
            msg = (
                f"{value!r} is not a git URL; use https://host/org/repo.git, "
                "ssh://git@host/org/repo.git, git@host:org/repo.git or file:///path"
            )
            raise ValueError(msg)
        if _URL.match(value) and urlsplit(value).password is not None:
            msg = "the URL holds a password; put the credentials in the Secret of secretRef"
            raise ValueError(msg)
        return value

    @field_validator("path")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = [p for p in value.split("/") if p not in {"", "."}]
        if value.startswith("/") or ".." in parts:
            msg = f"path {value!r} must stay inside the repository: a relative folder without '..'"
            raise ValueError(msg)
        return value


class DefinitionError(base.StatusModel):
    """A problem found in one file during the last sync; the file's jobs were kept as they were."""

    file: str = Field(description="Path of the file, relative to the repository path.")
    job: str | None = Field(default=None, description="Name of the job, when known.")
    field: str | None = Field(default=None, description="Dotted path of the field, when known.")
    line: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="Line in the file, when known."
    )
    message: str = Field(description="What is wrong and what to do about it.")
    reason: Annotated[str, Field(pattern=r"^[A-Z][A-Za-z0-9]*$", max_length=64)] | None = Field(
        default=None,
        description=(
            "A CamelCase word for problems a program may act on, such as DuplicateJobName."
        ),
    )


MAX_HANDLED_SYNC_REQUEST = 64
"""The longest requested-sync annotation a status echoes (the API writes 17 characters)."""


class RepositoryStatus(base.StatusModel):
    """What the last sync found."""

    conditions: list[cond.Condition] = cond.conditions_field(
        "Ready (jobs are in sync with git) and Synced (the last fetch worked)."
    )
    commit: str | None = Field(default=None, description="Commit the jobs were last synced from.")
    short_commit: str | None = Field(
        default=None, description="First characters of the commit, for display."
    )
    last_sync_time: datetime | None = Field(default=None, description="When the last sync ended.")
    job_count: Annotated[int, Field(ge=0)] | None = Field(
        default=None, description="Number of jobs defined by the repository."
    )
    errors: list[DefinitionError] = Field(
        default_factory=list, description="Problems in job files found by the last sync."
    )
    observed_generation: Annotated[int, Field(ge=0)] | None = Field(
        default=None, description="The metadata.generation the last sync acted on."
    )
    last_handled_sync_request: Annotated[str, Field(max_length=MAX_HANDLED_SYNC_REQUEST)] | None = (
        Field(
            default=None,
            description=(
                "The overseer.dev/requested-sync annotation the last sync started after: a "
                "requested sync is done (or failed, as the conditions say) once it equals the "
                "annotation, even when it changed nothing. An annotation over 64 characters "
                "is not echoed."
            ),
        )
    )
    inactive_jobs: list[str] = Field(
        default_factory=list,
        description=(
            "Names of this repository's deactivated jobs (spec.active false), kept while "
            "a job is out of git so that it comes back deactivated."
        ),
    )

    @model_validator(mode="after")
    def _short_commit(self) -> RepositoryStatus:
        if self.commit is not None:
            self.short_commit = self.commit[:SHORT_COMMIT_LENGTH]
        return self


KIND = base.Kind(
    kind="OverseerRepository",
    plural="overseerrepositories",
    singular="overseerrepository",
    short_names=("osr",),
    spec=RepositorySpec,
    status=RepositoryStatus,
    description="A git repository whose job files define OverseerJobs.",
    columns=(
        base.PrinterColumn("URL", ".spec.url", description="Git URL."),
        base.PrinterColumn("Ref", ".spec.ref", description="Branch, tag or commit."),
        base.PrinterColumn("Commit", ".status.shortCommit", description="Synced commit."),
        base.PrinterColumn("Jobs", ".status.jobCount", "integer", "Number of jobs."),
        base.PrinterColumn(
            "Ready", '.status.conditions[?(@.type=="Ready")].status', description="Ready condition."
        ),
        base.AGE_COLUMN,
    ),
)
