"""The job definition: what a job file in git says about one job.

One model for the parser, the OverseerJob and OverseerExecution specs and the API. It
checks shape and the rules within one job; the cmdspec grammar and its parameters are
checked by :func:`overseer.core.definitions.check_definition`, which the parser runs.
"""

from __future__ import annotations

import copy
import re
import zoneinfo
from typing import Annotated, Any, Literal

from croniter import croniter
from pydantic import BeforeValidator, ConfigDict, Field, field_validator, model_validator

from overseer.crd import base, types

STANDARD_HOOK_STATUSES = ("start", "complete", "fail", "time-out")
"""The statuses every execution can reach; jobs may also emit custom ones."""

ConcurrencyPolicy = Literal["allow", "forbid", "queue", "replace"]

_CRON_MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}


class Parameter(base.Model):
    """A parameter the job accepts when it is executed."""

    description: str | None = Field(default=None, description="What the parameter is for.")
    required: bool = Field(
        default=False, description="Whether every execution must supply a value."
    )
    default: types.Text | None = Field(
        default=None, description="Value used when an execution supplies none."
    )
    allowed: Annotated[list[types.Text], Field(min_length=1)] | None = Field(
        default=None, description="The only values accepted, when given."
    )
    secret: bool = Field(
        default=False,
        description=(
            "Whether the value is kept out of the Job (it reaches the pod from a Secret) and "
            "out of Overseer's messages and Events; it stays in the execution's spec."
        ),
    )

    @model_validator(mode="after")
    def _consistent(self) -> Parameter:
        if self.required and self.default is not None:
            msg = (
                "a required parameter never falls back to its default; drop 'required' or 'default'"
            )
            raise ValueError(msg)
        if self.allowed is not None:
            if len(set(self.allowed)) != len(self.allowed):
                msg = "'allowed' lists a value twice"
                raise ValueError(msg)
            if self.default is not None and self.default not in self.allowed:
                shown = "(secret, not shown)" if self.secret else repr(self.default)
                msg = f"the default {shown} is not one of the allowed values"
                raise ValueError(msg)
        return self


def check_cron(expression: str) -> str:
    """Accept five cron fields (minute hour day month weekday) or a macro like @daily."""
    fields = expression.split()
    if expression.strip() in _CRON_MACROS:
        return expression
    if len(fields) != 5 or not croniter.is_valid(expression):
        msg = (
            f"{expression!r} is not a cron schedule; write five fields "
            "(minute hour day-of-month month day-of-week), like '*/15 * * * *', or @hourly"
        )
        raise ValueError(msg)
    return expression


def check_timezone(name: str) -> str:
    """Accept an IANA time zone name such as Europe/Paris."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        msg = f"{name!r} is not a time zone; use an IANA name like UTC or Europe/Paris"
        raise ValueError(msg) from None
    return name


class Schedule(base.Model):
    """When the job runs by itself. A plain cron string is read as ``{cron: ...}``."""

    cron: str = Field(description="Five cron fields or a macro such as @daily.")
    timezone: str | None = Field(
        default=None, description="IANA time zone the cron fields are read in; UTC when unset."
    )

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        return check_cron(value)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        return None if value is None else check_timezone(value)


def _schedule_from_text(value: Any) -> Any:
    if isinstance(value, str):
        return {"cron": value}
    return value


class Concurrency(base.Model):
    """How many executions may run at once, and what happens to one more.

    ``forbid`` refuses it, ``queue`` starts it when a slot frees up, ``replace`` kills
    the oldest running execution to make room, ``allow`` ignores the limit.
    """

    limit: Annotated[int, Field(ge=1)] = Field(
        default=1, description="Maximum number of executions running at once."
    )
    policy: ConcurrencyPolicy = Field(
        default="forbid", description="What to do with an execution beyond the limit."
    )
    group: types.LabelValue | None = Field(
        default=None,
        description="Jobs sharing a group share the limit; without one the limit is per job.",
    )


class Resources(base.Model):
    """Compute resources of the job's container (the Kubernetes requests/limits shape)."""

    requests: dict[str, types.Quantity] | None = Field(
        default=None, description="Minimum resources, such as cpu: 100m, memory: 128Mi."
    )
    limits: dict[str, types.Quantity] | None = Field(
        default=None, description="Maximum resources, such as memory: 1Gi."
    )


def _url_list(value: Any) -> Any:
    if isinstance(value, str):
        return [value]
    return value


HookUrls = Annotated[list[types.HttpUrl], BeforeValidator(_url_list)]


def _command(value: Any) -> Any:
    if isinstance(value, str):
        if not value.strip():
            msg = "command is empty; write the command line, or remove 'command'"
            raise ValueError(msg)
        return value
    if isinstance(value, list):
        if not value:
            msg = "command is an empty list; list the program and its arguments"
            raise ValueError(msg)
        if not all(isinstance(item, str) for item in value):
            msg = "every item of a command list must be text; put numbers in quotes"
            raise ValueError(msg)
        if not value[0]:
            msg = "the first item of a command list is the program and must not be empty"
            raise ValueError(msg)
        return value
    msg = "command must be text (a shell command line) or a list of texts (the exact argv)"
    raise ValueError(msg)


Command = Annotated[str | list[str], BeforeValidator(_command)]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


AccountName = Annotated[str, Field(pattern=types.ACCOUNT_NAME_PATTERN, max_length=64)]
AccountId = Annotated[int, Field(ge=0, le=2**31 - 1)]


class ImageAccounts(base.Model):
    """User and group names of the job's image, for ``user`` and ``group`` names.

    Kubernetes runs pods with numeric ids and never reads the image's account files;
    the library image's are known to Overseer, another image's are given here.
    """

    users: dict[AccountName, AccountId] | None = Field(
        default=None, description="User name to uid, as in the image's /etc/passwd."
    )
    groups: dict[AccountName, AccountId] | None = Field(
        default=None, description="Group name to gid, as in the image's /etc/group."
    )


class Settings(base.Model):
    """Fields a job shares with the repository-wide defaults in ``overseer.yml``."""

    env: dict[types.EnvName, types.Text] | None = Field(
        default=None, description="Environment variables of the job's process."
    )
    timeout: types.Timeout | None = None
    kill_after: types.Timeout | None = Field(
        default=None,
        description=(
            "After SIGTERM (a requested TERM, a time-out, the replace policy), how long the "
            "job may take to end before its process group gets SIGKILL; 30s when unset."
        ),
    )
    concurrency: Concurrency | None = Field(
        default=None, description="Limit on executions running at once; unlimited when unset."
    )
    hooks: dict[types.HookStatus, HookUrls] | None = Field(
        default=None,
        description=(
            "Status (start, complete, fail, time-out or a custom event) to the URLs "
            "that receive a webhook for it."
        ),
    )
    image: Annotated[str, Field(min_length=1, max_length=1024, pattern=r"^\S+$")] | None = Field(
        default=None, description="Container image to run the job in; the library image if unset."
    )
    image_accounts: ImageAccounts | None = Field(
        default=None,
        description=(
            "Names of the image's users and groups (name to id), for user and group names "
            "in an image other than the library image."
        ),
    )
    resources: Resources | None = None
    retries: Annotated[int, Field(ge=0, le=100)] | None = Field(
        default=None, description="How many times a failed execution is retried."
    )


DEFAULT_KILL_AFTER = 30.0
"""Seconds between SIGTERM and SIGKILL when a job sets no ``killAfter``."""


def kill_after_seconds(settings: Settings) -> float:
    """The job's ``killAfter`` in seconds, or the default."""
    if settings.kill_after is None:
        return DEFAULT_KILL_AFTER
    return types.timeout_seconds(settings.kill_after)


class Defaults(Settings):
    """Defaults for every job of a repository (the ``defaults`` of ``overseer.yml``)."""


class JobDefinition(Settings):
    """One job as defined in a job file.

    At most one of ``cmdspec``, ``command`` and ``script`` is set; with none the job
    does nothing but still records an execution and its events.
    """

    # Kubernetes checks what it can see: ``command`` (text or list) is untyped in the CRD
    # and invisible to CEL, so the rules involving it are checked by this model only.
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!(has(self.cmdspec) && has(self.script))",
                    "message": "cmdspec and script are mutually exclusive",
                },
            ]
        }
    )

    name: Annotated[str, Field(min_length=1, max_length=1024)] = Field(
        description="The job's name: any text; the API addresses it URL-encoded."
    )
    description: str | None = Field(default=None, description="What the job does.")
    cmdspec: str | None = Field(
        default=None,
        description=(
            "Command template: a program, then parameter names as positional arguments "
            "and '--option parameter' pairs; quoted tokens are literal."
        ),
    )
    command: Command | None = Field(
        default=None,
        description="A shell command line (text) or the exact argv (a list of texts).",
    )
    script: Annotated[str, Field(min_length=1)] | None = Field(
        default=None, description="A script; runs with its #! line, or /bin/sh without one."
    )
    user: types.Account | None = None
    group: types.Account | None = None
    parameters: dict[types.ParameterName, Parameter] | None = Field(
        default=None, description="Parameters accepted when the job is executed."
    )
    schedule: Annotated[Schedule, BeforeValidator(_schedule_from_text)] | None = Field(
        default=None, description="When the job runs by itself."
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if value != value.strip():
            msg = "the name starts or ends with blank space; remove it"
            raise ValueError(msg)
        if _CONTROL.search(value):
            msg = "the name contains a control character (such as a newline or a tab)"
            raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _one_command(self) -> JobDefinition:
        given = [f for f in ("cmdspec", "command", "script") if getattr(self, f) is not None]
        if len(given) > 1:
            msg = (
                f"{' and '.join(given)} are mutually exclusive; a job runs one command: keep "
                "cmdspec (a template filled from parameters), command, or script"
            )
            raise ValueError(msg)
        return self

    @property
    def runs(self) -> Literal["cmdspec", "command", "script", "nothing"]:
        """Which way the job runs."""
        if self.cmdspec is not None:
            return "cmdspec"
        if self.command is not None:
            return "command"
        if self.script is not None:
            return "script"
        return "nothing"


class OverseerFile(base.Model):
    """The ``overseer.yml`` file at the root of a repository."""

    defaults: Defaults | None = Field(default=None, description="Defaults for every job.")


def apply_defaults(job: JobDefinition, defaults: Defaults | None) -> JobDefinition:
    """The job with the repository defaults filled in.

    A field the job sets wins; ``env`` merges per variable and ``hooks`` per status,
    the job's entry winning.
    """
    if defaults is None:
        return job
    update: dict[str, Any] = {}
    for name in Settings.model_fields:
        default_value = getattr(defaults, name)
        if default_value is None:
            continue
        own = getattr(job, name)
        if own is None:
            # A copy: jobs must not share (and so never mutate) the defaults' objects.
            update[name] = copy.deepcopy(default_value)
        elif name in {"env", "hooks"}:
            update[name] = copy.deepcopy({**default_value, **own})
    if not update:
        return job
    # Each value was validated in its own model and a merge of two valid maps is valid.
    return job.model_copy(update=update)
