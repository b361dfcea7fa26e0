"""OverseerJob: one job definition, synced from a repository."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import ConfigDict, Field, model_validator

from overseer.crd import base
from overseer.crd import conditions as cond
from overseer.crd import definition as defn
from overseer.crd import execution as execution_

REPOSITORY_LABEL = "overseer.dev/repository"
"""Label naming the OverseerRepository that defines a job."""


class Source(base.Model):
    """Where the definition was read."""

    repository: Annotated[str, Field(min_length=1, max_length=253)] = Field(
        description="Name of the OverseerRepository."
    )
    file: Annotated[str, Field(min_length=1)] = Field(
        description="Path of the job file, relative to the repository path."
    )
    commit: Annotated[str, Field(min_length=1, max_length=64)] = Field(
        description="Commit the definition was read at."
    )


class JobSpec(base.Model):
    """The job's definition as written in git (with the repository defaults applied)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.displayName == self.definition.name",
                    "message": "displayName must equal definition.name",
                }
            ]
        }
    )

    display_name: Annotated[str, Field(min_length=1, max_length=1024)] = Field(
        description="The job's name as written in git; any text."
    )
    definition: defn.JobDefinition = Field(description="The job definition.")
    source: Source = Field(description="Where the definition was read.")
    active: bool = Field(
        default=True,
        description=(
            "Whether the job can be executed and scheduled; set by the API, "
            "left alone by git syncs."
        ),
    )

    @model_validator(mode="after")
    def _same_name(self) -> JobSpec:
        if self.display_name != self.definition.name:
            msg = "displayName must equal definition.name"
            raise ValueError(msg)
        return self


class JobStatus(base.StatusModel):
    """The job's latest execution and next scheduled run."""

    last_execution: str | None = Field(
        default=None, description="Execution id of the latest execution."
    )
    last_status: execution_.Phase | None = Field(
        default=None, description="Phase of the latest execution."
    )
    last_schedule_time: datetime | None = Field(
        default=None,
        description="The latest scheduled time the scheduler handled (ran, or missed).",
    )
    next_schedule_time: datetime | None = Field(
        default=None, description="When the schedule next runs the job."
    )
    conditions: list[cond.Condition] = cond.conditions_field()
    observed_generation: Annotated[int, Field(ge=0)] | None = Field(
        default=None, description="The metadata.generation the status was computed for."
    )


KIND = base.Kind(
    kind="OverseerJob",
    plural="overseerjobs",
    singular="overseerjob",
    short_names=("osj",),
    spec=JobSpec,
    status=JobStatus,
    description="A job defined in a repository; executing it creates an OverseerExecution.",
    columns=(
        base.PrinterColumn("Display name", ".spec.displayName", description="Name as in git."),
        base.PrinterColumn(
            "Active", ".spec.active", "boolean", "Inactive: not scheduled, executions refused."
        ),
        base.PrinterColumn("Schedule", ".spec.definition.schedule.cron", description="Cron."),
        base.PrinterColumn("Last status", ".status.lastStatus", description="Latest phase."),
        base.PrinterColumn(
            "Next run", ".status.nextScheduleTime", description="Next scheduled time (UTC)."
        ),
        base.AGE_COLUMN,
    ),
)
