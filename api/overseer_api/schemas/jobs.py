"""What ``/jobs`` and ``/jobs/{name}`` answer."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from overseer_api.schemas import base


class Source(base.Schema):
    """Where the job's definition was read."""

    repository: str = Field(description="The OverseerRepository it comes from.")
    file: str = Field(description="The job file, relative to the repository's path.")
    commit: str = Field(description="The commit the definition was read at.")


class ExecutionRef(base.Schema):
    """An execution, briefly."""

    id: str = Field(description="Execution id, such as 1489895624.840211.")
    phase: str | None = Field(default=None, description="Its phase; none before it starts.")
    url: str = Field(description="Its URL in this API.")


class LatestExecution(ExecutionRef):
    """One of a job's latest executions, with how it ended."""

    exit_code: int | None = Field(default=None, description="The job's exit code, once ended.")
    signal: str | None = Field(default=None, description="The signal that ended its process.")
    reason: str | None = Field(default=None, description="Why it ended so, such as NonZeroExit.")


class Schedule(base.Schema):
    cron: str = Field(description="Cron expression.")
    timezone: str | None = Field(default=None, description="Time zone; UTC when unset.")


class JobSummary(base.Schema):
    """One job in a list."""

    name: str = Field(description="The display name, as written in git.")
    url: str = Field(description="The job's URL in this API.")
    description: str | None = None
    active: bool = Field(description="Whether it can be executed and scheduled.")
    source: Source
    schedule: Schedule | None = None
    next_run: datetime | None = Field(default=None, description="When the schedule runs it next.")
    last_execution: ExecutionRef | None = None


class JobPage(base.Schema):
    """A page of jobs, in display-name order."""

    items: list[JobSummary]
    continue_: str | None = Field(
        default=None,
        alias="continue",
        description="Pass as ?continue= for the next page; null on the last page.",
    )


class Parameter(base.Schema):
    """A parameter the job accepts. A secret parameter's default is never shown."""

    description: str | None = None
    required: bool = False
    default: str | None = Field(default=None, description="Absent for a secret parameter.")
    has_default: bool = Field(description="Whether a default exists (shown or not).")
    allowed: list[str] | None = Field(default=None, description="The only values accepted.")
    secret: bool = False


class ActiveChange(base.Schema):
    """Who last activated or deactivated the job through the API, and when."""

    by: str
    at: datetime


class JobDetail(JobSummary):
    """One job in full."""

    definition: dict[str, Any] = Field(
        description=(
            "The definition as written in git with the repository defaults applied; a "
            "secret parameter's default is left out."
        )
    )
    parameters: dict[str, Parameter] = Field(
        description="What POST /jobs/{name} accepts (declared, or implied by the cmdspec)."
    )
    active_changed: ActiveChange | None = Field(
        default=None, description="The latest activation or deactivation through the API."
    )
    executions: list[LatestExecution] = Field(description="The latest executions, newest first.")
