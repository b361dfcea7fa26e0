"""OverseerExecution: one execution of one job, with its frozen definition and its outcome."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, model_validator

from overseer.crd import base, types
from overseer.crd import conditions as cond
from overseer.crd import definition as defn

EXECUTION_ID_PATTERN = r"^[0-9]+\.[0-9]{6}$"
JOB_LABEL = "overseer.dev/job"
"""Label naming the OverseerJob (resource name) an execution belongs to."""

Phase = Literal["Pending", "Running", "Complete", "Failed", "TimedOut", "Killed"]
PHASES: tuple[Phase, ...] = ("Pending", "Running", "Complete", "Failed", "TimedOut", "Killed")
TERMINAL_PHASES: frozenset[Phase] = frozenset({"Complete", "Failed", "TimedOut", "Killed"})

TriggerType = Literal["api", "schedule", "repeat", "manual"]
DeliveryState = Literal["Pending", "Delivered", "Failed", "GivenUp", "Gone"]
SignalResult = Literal["Sent", "Refused", "NotDelivered", "Failed"]
SIGNAL_PATTERN = r"^SIG[A-Z0-9+]+$"
OutputState = Literal["Archiving", "Complete", "Incomplete"]
FINAL_OUTPUT_STATES: frozenset[OutputState] = frozenset({"Complete", "Incomplete"})

# Reasons of an execution's status (``status.reason``), one word in CamelCase each.
# Ended:
COMPLETED = "Completed"
EXIT_CODE = "ExitCode"
DEADLINE_EXCEEDED = "DeadlineExceeded"
KILLED = "Killed"
SIGNALLED = "Signalled"
EVICTED = "Evicted"
DISRUPTED = "Disrupted"
POD_DELETED = "PodDeleted"
OOM_KILLED = "OOMKilled"
CONTAINER_START_FAILED = "ContainerStartFailed"
PROGRAM_NOT_FOUND = "ProgramNotFound"
PROGRAM_NOT_EXECUTABLE = "ProgramNotExecutable"
SETUP_FAILED = "SetupFailed"
LIBRARY_COPY_FAILED = "LibraryCopyFailed"
JOB_FAILED = "JobFailed"
IMAGE_PULL_FAILED = "ImagePullFailed"
CONTAINER_CONFIG_ERROR = "ContainerConfigError"
# Ended before it started:
INVALID_PARAMETERS = "InvalidParameters"
NOT_RUNNABLE = "DefinitionNotRunnable"
INVALID_SPEC = "InvalidSpec"
BIN_NOT_KEPT = "BinNotKept"
SECRET_PARAMETERS_UNAVAILABLE = "SecretParametersUnavailable"  # noqa: S105 - a reason
"""The Secret of ``spec.secretParameters`` is missing, not the execution's, or lacks a value."""
JOB_NAME_TAKEN = "JobNameTaken"
"""A Job or Secret of the execution's name exists and is not its own (never adopted)."""
CONCURRENCY_LIMIT = "ConcurrencyLimit"
JOB_INACTIVE = "JobInactive"
"""Refused by the ``forbid`` concurrency policy."""
CANCELLED = "Cancelled"
"""Asked to stop while it waited for its concurrency, before it started."""
# On its way:
QUEUED = "Queued"
"""Waiting for a slot (concurrency policy ``queue``)."""
REPLACING = "Replacing"
"""Waiting for the executions it replaces to end (concurrency policy ``replace``)."""
HELD_BACK = frozenset({QUEUED, REPLACING})
"""Reasons of an execution the admission keeps waiting: no Job yet, on purpose."""
CREATING = "Creating"
STARTING = "Starting"
UNSCHEDULABLE = "Unschedulable"
RUNNING = "Running"
RETRYING = "Retrying"
TERMINATING = "Terminating"


class Trigger(base.Model):
    """What started the execution."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.type == 'repeat' ? has(self.repeatOf) : !has(self.repeatOf)",
                    "message": "repeatOf is set exactly when type is repeat",
                }
            ]
        }
    )

    type: TriggerType = Field(description="api, schedule, repeat or manual.")
    repeat_of: Annotated[str, Field(pattern=EXECUTION_ID_PATTERN)] | None = Field(
        default=None, description="Execution id this execution repeats."
    )

    @model_validator(mode="after")
    def _repeat(self) -> Trigger:
        if (self.type == "repeat") != (self.repeat_of is not None):
            msg = "repeatOf is set exactly when the trigger type is repeat"
            raise ValueError(msg)
        return self


class SignalRequest(base.Model):
    """A signal someone asked to send to the job's process group."""

    signal: Annotated[str, Field(pattern=SIGNAL_PATTERN, max_length=16)] = Field(
        description="Signal name such as SIGTERM."
    )
    requested_at: datetime = Field(description="When it was requested.")
    requested_by: Annotated[str, Field(max_length=256)] | None = Field(
        default=None, description="Who requested it through the API."
    )


SECRET_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"  # noqa: S105 - a name pattern


class SecretParameters(base.Model):
    """Where the values of an execution's secret parameters are: never in the spec itself.

    A Secret in the execution's namespace, owned by the execution (an ownerReference
    with its uid: deleted with it, and never one made for anything else), with one key
    per parameter named in ``names`` holding its value. The API creates it; see
    ``docs/job-definitions.rst``.
    """

    secret_name: Annotated[str, Field(pattern=SECRET_NAME_PATTERN, max_length=253)] = Field(
        description="The Secret, in the execution's namespace, owned by the execution."
    )
    names: Annotated[
        list[Annotated[str, Field(pattern=types.PARAMETER_NAME_PATTERN, max_length=128)]],
        Field(min_length=1, max_length=256),
    ] = Field(description="The parameters whose values the Secret holds, one key each.")


class ExecutionSpec(base.Model):
    """What to run: frozen at creation so a repeat runs exactly the same thing."""

    job: Annotated[str, Field(min_length=1, max_length=63)] = Field(
        description="Resource name of the OverseerJob."
    )
    execution_id: Annotated[str, Field(pattern=EXECUTION_ID_PATTERN)] = Field(
        description=(
            "Creation time in seconds with six-digit microseconds, such as 1489895624.840211."
        )
    )
    parameters: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Parameter values supplied to this execution; secret ones are in"
            " secretParameters instead."
        ),
    )
    secret_parameters: SecretParameters | None = Field(
        default=None,
        description="The Secret holding the values of the secret parameters supplied.",
    )
    trigger: Trigger = Field(description="What started the execution.")
    definition: defn.JobDefinition = Field(description="The job definition it runs.")
    commit: Annotated[str, Field(min_length=1, max_length=64)] = Field(
        description="Commit the definition was read at."
    )
    signals: list[SignalRequest] = Field(
        default_factory=list,
        description=(
            "Signals requested for the running job, oldest first. Append to request one"
            " (JSON patch: add /spec/signals/-)."
        ),
        # Defaulted by the API server too, so that append works on every execution.
        json_schema_extra={"default": []},
    )

    @model_validator(mode="after")
    def _apart(self) -> ExecutionSpec:
        both = set(self.parameters) & set(
            self.secret_parameters.names if self.secret_parameters else ()
        )
        if both:
            msg = (
                f"parameters {', '.join(sorted(both))} are in both parameters and secretParameters"
            )
            raise ValueError(msg)
        return self


class Event(base.StatusModel):
    """One status event: start, complete, fail, time-out or a custom one from the job."""

    id: str | None = Field(
        default=None, description="Unique id of the event (webhook idempotency key)."
    )
    status: Annotated[str, Field(min_length=1, max_length=63)] = Field(description="Event name.")
    time: datetime = Field(description="When it happened.")
    data: Any = Field(default=None, description="Free-form JSON attached to the event.")


class ArchivedStream(base.StatusModel):
    """What the archive holds of one stream."""

    size: Annotated[int, Field(ge=0)] = Field(
        description="Bytes archived when the state was last recorded."
    )


class LostOutput(base.StatusModel):
    """Frames of the pod's log never archived, and where their bytes belong."""

    after_seq: int = Field(description="The last frame (seq) read before the gap.")
    before_seq: int | None = Field(
        default=None,
        description="The first frame read after the gap; unset: the log's end was never read.",
    )
    stdout_offset: int = Field(description="The stdout size where the missing bytes belong.")
    stderr_offset: int = Field(description="The stderr size where the missing bytes belong.")
    reason: str = Field(description="PodDeleted, LogRotated or LogCut.")


class Archive(base.StatusModel):
    """Where the execution's stdout and stderr are kept after the pod is gone, and
    whether they are whole."""

    backend: str = Field(description="Archive backend, such as local or s3.")
    location: str = Field(description="Backend-specific location of the output.")
    state: OutputState | None = Field(
        default=None,
        description=(
            "Archiving: the pod's log is being read, the output may grow. Complete: the"
            " log of the execution's pod was read to its end, the output holds every byte"
            " the job wrote. Incomplete: reading stopped before the end (the pod was"
            " deleted first), the output misses its end."
        ),
    )
    stdout: ArchivedStream | None = Field(default=None, description="The stdout archived.")
    stderr: ArchivedStream | None = Field(default=None, description="The stderr archived.")
    lost: list[LostOutput] | None = Field(
        default=None, description="What is known missing from the output (Incomplete)."
    )


class Delivery(base.StatusModel):
    """One webhook delivery of one event to one URL."""

    event_id: str = Field(description="Id of the event delivered.")
    url: str = Field(description="URL the event is posted to.")
    status: DeliveryState = Field(
        description=(
            "Pending (owed), Delivered, Failed (refused or rejected: not retried), GivenUp"
            " (still failing at the retry horizon) or Gone (the receiver answered 410: nothing"
            " more goes to this URL for this execution)."
        )
    )
    attempts: Annotated[int, Field(ge=0)] = Field(
        default=0, description="Attempts so far (since the last replay)."
    )
    last_error: str | None = Field(default=None, description="Error of the latest failed attempt.")
    next_attempt_at: datetime | None = Field(default=None, description="When to try again.")
    delivered_at: datetime | None = Field(default=None, description="When it was delivered.")
    retry_since: datetime | None = Field(
        default=None,
        description="When this run of attempts began (the first, or the replay); the retry"
        " horizon counts from it.",
    )
    replays: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="Times the delivery was replayed (reset to owed) on request."
    )


class SignalDelivery(base.StatusModel):
    """What became of one request in ``spec.signals`` (see ``overseer.core.signals``)."""

    index: Annotated[int, Field(ge=0)] = Field(
        description="Position of the request in spec.signals."
    )
    signal: str = Field(description="The signal as requested.")
    requested_at: datetime = Field(description="requestedAt of the request.")
    result: SignalResult = Field(
        description=(
            "Sent (the supervisor signalled the job's process group), Refused (not a signal"
            " Overseer sends), NotDelivered (the job had ended) or Failed (could not be sent)."
        )
    )
    sent_signal: str | None = Field(default=None, description="Canonical name sent, e.g. SIGTERM.")
    time: datetime = Field(description="When the result was recorded.")
    message: str | None = Field(default=None, description="Details, for people.")


class ExecutionStatus(base.StatusModel):
    """How the execution went."""

    phase: Phase | None = Field(default=None, description="Current phase.")
    events: list[Event] = Field(default_factory=list, description="Status events, in order.")
    events_dropped: Annotated[int, Field(ge=0)] | None = Field(
        default=None,
        description=(
            "Custom events the job sent past the operator's bounds (count, size): not kept,"
            " not delivered."
        ),
    )
    exit_code: int | None = Field(default=None, description="Exit code of the job's process.")
    signal: str | None = Field(default=None, description="Signal that ended the job's process.")
    start_time: datetime | None = Field(default=None, description="When the process started.")
    completion_time: datetime | None = Field(default=None, description="When it ended.")
    duration: str | None = Field(
        default=None, description="Time from start to completion, such as 1m12s (derived)."
    )
    pod_name: str | None = Field(default=None, description="Pod the job ran in.")
    job_name: str | None = Field(default=None, description="batch/v1 Job that ran it.")
    archive: Archive | None = Field(default=None, description="Where the output is kept.")
    reason: str | None = Field(default=None, description="Why it is in its phase, one word.")
    message: str | None = Field(default=None, description="Details about the phase.")
    deliveries: list[Delivery] = Field(default_factory=list, description="Webhook deliveries.")
    signal_deliveries: list[SignalDelivery] = Field(
        default_factory=list,
        description="What became of each request in spec.signals, in order: never sent twice.",
    )
    conditions: list[cond.Condition] = cond.conditions_field()
    observed_generation: Annotated[int, Field(ge=0)] | None = Field(
        default=None, description="The metadata.generation the status was computed for."
    )

    @model_validator(mode="after")
    def _duration(self) -> ExecutionStatus:
        if self.start_time is not None and self.completion_time is not None:
            self.duration = format_duration(
                (self.completion_time - self.start_time).total_seconds()
            )
        return self


def format_duration(seconds: float) -> str:
    """``72.4`` -> ``"1m12s"``; under a minute keeps one decimal: ``"4.2s"``."""
    seconds = max(seconds, 0.0)
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    first = next(i for i, (n, _) in enumerate(parts) if n)
    return "".join(f"{n}{unit}" for n, unit in parts[first:])


KIND = base.Kind(
    kind="OverseerExecution",
    plural="overseerexecutions",
    singular="overseerexecution",
    short_names=("osx",),
    spec=ExecutionSpec,
    status=ExecutionStatus,
    description="One execution of an OverseerJob: what ran, how it went, where its output is.",
    columns=(
        base.PrinterColumn("Job", ".spec.job", description="OverseerJob resource name."),
        base.PrinterColumn("Status", ".status.phase", description="Phase."),
        base.PrinterColumn("Exit code", ".status.exitCode", "integer", "Exit code."),
        base.PrinterColumn("Start", ".status.startTime", "date", "When it started."),
        base.PrinterColumn("Duration", ".status.duration", description="Start to completion."),
        base.AGE_COLUMN,
    ),
)
