"""What the execution routes accept and answer."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from overseer_api.schemas import base


class Created(base.Schema):
    """An execution just created (201, with its URL in ``Location``)."""

    id: str = Field(description="Execution id, such as 1489895624.840211.")
    job: str = Field(description="The job's display name.")
    url: str = Field(description="The execution's URL in this API.")
    phase: str | None = Field(
        default=None, description="Its phase; none until the operator sees it."
    )


class SignalAccepted(base.Schema):
    """A signal request recorded (202): the operator delivers it."""

    id: str = Field(description="Execution id.")
    signal: str = Field(description="The canonical name requested, such as SIGHUP.")
    index: int = Field(description="Its position in the execution's signal requests.")
    url: str = Field(description="The execution's URL: its signals show what became of it.")


class Trigger(base.Schema):
    type: str = Field(description="api, schedule, repeat or manual.")
    by: str | None = Field(default=None, description="Who created it through the API.")
    repeat_of: str | None = Field(default=None, description="Id of the execution repeated.")


class Event(base.Schema):
    status: str
    time: datetime
    data: Any = None


class SignalRequest(base.Schema):
    """One signal request and what became of it."""

    signal: str
    requested_at: datetime
    requested_by: str | None = None
    result: str | None = Field(
        default=None, description="Sent, Refused, NotDelivered or Failed; none while pending."
    )
    sent_signal: str | None = None
    time: datetime | None = Field(default=None, description="When the result was recorded.")
    message: str | None = None


class Delivery(base.Schema):
    """One webhook delivery of one event."""

    id: str = Field(description="Its id: POST .../deliveries/{id} sends it again.")
    event_id: str
    url: str
    status: str
    attempts: int = 0
    last_error: str | None = None
    delivered_at: datetime | None = None
    next_attempt_at: datetime | None = None
    replays: int | None = Field(default=None, description="Times it was sent again on request.")


class DeliveryReplayed(base.Schema):
    """A delivery owed again (202): the operator sends it at once."""

    delivery: Delivery
    url: str = Field(description="The execution, whose deliveries say when it is delivered.")


class Output(base.Schema):
    """Where the output is read, and what the archive holds of it."""

    stdout_url: str
    stderr_url: str
    state: str | None = Field(
        default=None, description="Archiving, Complete or Incomplete; none before any output."
    )
    stdout_bytes: int | None = None
    stderr_bytes: int | None = None


class ExecutionSummary(base.Schema):
    """One execution in a list."""

    id: str
    job: str = Field(description="The job's display name.")
    url: str
    phase: str | None = None
    trigger: Trigger
    start_time: datetime | None = None
    completion_time: datetime | None = None
    exit_code: int | None = Field(default=None, description="The job's exit code, once ended.")
    signal: str | None = Field(default=None, description="The signal that ended its process.")
    reason: str | None = Field(
        default=None, description="Why it ended so, such as NonZeroExit or TimedOut."
    )


class ExecutionPage(base.Schema):
    items: list[ExecutionSummary]
    continue_: str | None = Field(
        default=None,
        alias="continue",
        description="Pass as ?continue= for the next page; null on the last page.",
    )


class ExecutionDetail(ExecutionSummary):
    """One execution in full."""

    parameters: dict[str, str] = Field(description="As supplied; a secret one as ***.")
    commit: str
    definition: dict[str, Any] = Field(
        description="The frozen definition it runs (a secret parameter's default left out)."
    )
    events: list[Event]
    message: str | None = None
    duration: str | None = None
    signals: list[SignalRequest]
    deliveries: list[Delivery]
    output: Output
