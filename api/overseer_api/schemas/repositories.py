"""What ``/repositories`` and ``/repositories/{name}`` answer."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from overseer_api.schemas import base


class Condition(base.Schema):
    """One condition of the repository's status, as the operator set it."""

    type: str = Field(description="Ready (jobs in sync with git) or Synced (the fetch worked).")
    status: str = Field(description="True, False or Unknown.")
    reason: str | None = None
    message: str | None = None
    last_transition_time: datetime | None = None
    observed_generation: int | None = None


class DefinitionError(base.Schema):
    """A problem the last sync found in one job file (its jobs were kept as they were)."""

    file: str
    job: str | None = None
    field: str | None = None
    line: int | None = None
    message: str
    reason: str | None = None


class Repository(base.Schema):
    """An OverseerRepository: where its jobs come from and what its last sync did.

    Credentials are never shown: the name of the Secret that holds them is, and a
    user name in an http(s) URL (a token, often) reads ``***``.
    """

    name: str = Field(description="The OverseerRepository's name.")
    url: str = Field(description="The git URL, without credentials.")
    ref: str | None = Field(default=None, description="Branch, tag or commit; none: HEAD.")
    path: str | None = Field(default=None, description="Folder of the job files; none: root.")
    interval: str = Field(description="How often it is polled, such as 1m.")
    suspend: bool = Field(description="Whether syncs are suspended.")
    secret_name: str | None = Field(
        default=None, description="The Secret holding the git credentials (never its content)."
    )
    hook_secret_name: str | None = Field(
        default=None, description="The Secret authenticating push hooks (never its content)."
    )
    commit: str | None = Field(default=None, description="The commit the jobs were synced from.")
    short_commit: str | None = None
    last_sync_time: datetime | None = Field(
        default=None,
        description="When the status last changed (a sync that changes nothing leaves it).",
    )
    ready: bool | None = Field(
        default=None, description="The Ready condition: none before the first sync."
    )
    reason: str | None = Field(default=None, description="The Ready condition's reason.")
    message: str | None = Field(default=None, description="The Ready condition's message.")
    conditions: list[Condition]
    job_count: int | None = None
    errors: list[DefinitionError] = Field(description="Problems the last sync found in files.")
    generation: int | None = Field(default=None, description="metadata.generation of the spec.")
    observed_generation: int | None = Field(
        default=None, description="The generation the last sync acted on."
    )
    sync_requested_at: datetime | None = Field(
        default=None, description="When a sync was last requested (POST /sync, a push hook)."
    )
    sync_requested_by: str | None = Field(default=None, description="Who requested it.")
    sync_handled_at: datetime | None = Field(
        default=None,
        description=(
            "The request the last sync started after (status.lastHandledSyncRequest): the "
            "requested sync is done, or failed as ready and reason say, once it reaches "
            "syncRequestedAt, even when it changed nothing."
        ),
    )
    jobs_url: str = Field(description="Its jobs in this API (GET /jobs?repository=).")


class RepositoryList(base.Schema):
    items: list[Repository] = Field(description="Every repository of the namespace, by name.")
