"""Settings shared by Overseer's processes: ``OVERSEER_*`` variables, read once at start-up.

Each process (the operator, the API) declares its settings as a subclass of
:class:`OverseerSettings`, builds them once in its ``__main__`` with
:meth:`OverseerSettings.from_env` and passes the object down; nothing reads the
environment afterwards (building a settings object with keyword arguments never
does). A field ``foo_bar`` is the variable ``OVERSEER_FOO_BAR`` unless it names
another with ``validation_alias``; its docstring is its documentation, and
:func:`help_text` writes ``--help``'s list of variables from the model, so the list
cannot miss one. A bad value raises :class:`overseer.errors.SettingsError` naming the
variable, never quoting a secret.
"""

from __future__ import annotations

import os
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import pydantic
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict
from pydantic_settings import PydanticBaseSettingsSource as Source
from pydantic_settings.sources.utils import parse_env_vars

from overseer import errors
from overseer.crd import types

ENV_PREFIX = "OVERSEER_"
_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def parse_seconds(value: Any) -> Any:
    """A duration (``"90s"``, ``"1h30m"``, through :func:`types.parse_duration`) in seconds."""
    if isinstance(value, str):
        return types.parse_duration(value.strip()).total_seconds()
    return value


def parse_seconds_or_zero(value: Any) -> Any:
    """As :func:`parse_seconds`, and ``0`` (or ``0s``) for "at once"."""
    if isinstance(value, str) and value.strip() in ("0", "0s"):
        return 0.0
    return parse_seconds(value)


Duration = Annotated[float, pydantic.BeforeValidator(parse_seconds), pydantic.Field(gt=0)]
"""Seconds, written in the environment as a duration: ``30s``, ``5m``, ``1h30m``, ``2d``."""
DurationOrZero = Annotated[
    float, pydantic.BeforeValidator(parse_seconds_or_zero), pydantic.Field(ge=0)
]
"""As :data:`Duration`, where ``0`` is allowed."""


_SIZE_UNITS = {"": 1, "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3}


def parse_bytes(value: Any) -> Any:
    """A size in bytes, written as a number with an optional ``Ki``, ``Mi`` or ``Gi``."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    number = text.rstrip("KMGi")
    unit = text[len(number) :]
    if not number.isdigit() or unit not in _SIZE_UNITS:
        msg = f"{text!r} is not a size; write bytes, or a size such as 64Ki, 1Mi, 2Gi"
        raise ValueError(msg)
    return int(number) * _SIZE_UNITS[unit]


Size = Annotated[int, pydantic.BeforeValidator(parse_bytes), pydantic.Field(ge=1)]
"""Bytes, written in the environment as ``4096``, ``64Ki``, ``1Mi`` or ``2Gi``."""


def format_seconds(seconds: float) -> str:
    """``3600.0`` -> ``"1h"``: a default as a user would write it."""
    for unit, size in _UNITS:
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


class _MappingSource(EnvSettingsSource):
    """pydantic-settings' environment source, reading the mapping it is given."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self.env_vars = parse_env_vars(
            env, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str
        )


class OverseerSettings(BaseSettings):
    """Base of each process's settings: ``OVERSEER_*`` names, frozen, documented."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        case_sensitive=False,
        env_ignore_empty=True,  # an empty variable (a chart value left blank) is unset
        frozen=True,
        extra="forbid",
        populate_by_name=True,
        use_attribute_docstrings=True,
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: Source,
        env_settings: Source,
        dotenv_settings: Source,
        file_secret_settings: Source,
    ) -> tuple[Source, ...]:
        # Only from_env reads the environment: Settings(field=...) is exactly that.
        return (init_settings,)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Self:
        """Read the settings from ``env`` (the process's environment when None).

        Raises :class:`errors.SettingsError` naming every bad variable.
        """
        try:
            return cls(**_MappingSource(cls, os.environ if env is None else env)())
        except pydantic.ValidationError as error:
            raise errors.SettingsError(_describe(cls, error)) from None

    @classmethod
    def env_name(cls, field: str) -> str:
        """The variable a field is read from."""
        alias = cls.model_fields[field].validation_alias
        prefix = cls.model_config.get("env_prefix") or ENV_PREFIX  # the API's is its own
        return alias if isinstance(alias, str) else f"{prefix}{field.upper()}"


def _describe(model: type[OverseerSettings], error: pydantic.ValidationError) -> str:
    """One line per problem, each naming its variable; never the value (it may be a secret)."""
    lines = []
    for problem in error.errors(include_input=False, include_url=False):
        cause = problem.get("ctx", {}).get("error")
        message = str(cause) if cause is not None else problem["msg"]
        field = problem["loc"][0] if problem["loc"] else None
        if isinstance(field, str) and field in model.model_fields:
            message = f"{model.env_name(field)}: {message}"
        lines.append(message)
    return "; ".join(lines)


def _is_duration(metadata: Iterable[Any], annotation: Any) -> bool:
    """Whether a field's type is a :data:`Duration`, at any depth (``Duration | None``)."""
    durations = (parse_seconds, parse_seconds_or_zero)
    if any(getattr(m, "func", None) in durations for m in metadata):
        return True
    return any(
        _is_duration(getattr(arg, "__metadata__", ()), arg) for arg in typing.get_args(annotation)
    )


def _default_text(info: FieldInfo) -> str:
    default = info.get_default(call_default_factory=True)
    if isinstance(default, bool):
        return str(default).lower()
    if default is None or default in ("", ()):
        return "unset"
    if isinstance(default, pydantic.SecretStr):
        return "unset" if not default.get_secret_value() else "***"
    if _is_duration(info.metadata, info.annotation) and isinstance(default, int | float):
        return format_seconds(default)
    if isinstance(default, tuple):
        return ",".join(str(item) for item in default)
    return str(default)


def help_text(model: type[OverseerSettings]) -> str:
    """The ``--help`` list of a settings model: each variable, its default and its doc."""
    lines = ["Configuration comes from the environment:"]
    for name, info in model.model_fields.items():
        lines.append(f"  {model.env_name(name)}  (default: {_default_text(info)})")
        doc = " ".join((info.description or "").split())
        lines.append(f"      {doc}")
    return "\n".join(lines) + "\n"


class ArchiveSettings(OverseerSettings):
    """Where executions' output is archived: the same fields for the operator (the writer)
    and the API (a reader), each under its own prefix (``OVERSEER_``, ``OVERSEER_API_``)."""

    archive_backend: Literal["local", "s3"] = "local"
    """local: a directory (host processes, development); s3: S3-compatible object storage."""
    archive_dir: Path = Path("/var/lib/overseer/archive")
    """Root of the local output archive (an absolute path); local backend."""
    archive_s3_endpoint: str | None = None
    """The S3 endpoint URL (http(s)://host:port); unset: AWS S3 of the region."""
    archive_s3_bucket: str = ""
    """The bucket holding the output (created beforehand); s3 backend."""
    archive_s3_prefix: str = ""
    """A key prefix for every object (such as overseer/); unset: the bucket's top."""
    archive_s3_region: str = "us-east-1"
    """The bucket's region (any value for most S3-compatible stores)."""
    archive_s3_path_style: bool = False
    """Address the bucket in the path (endpoint/bucket/key), as MinIO and versitygw want."""
    archive_s3_access_key_id: pydantic.SecretStr | None = None
    """The access key id; unset (and no file): the client's default chain (IRSA, workload
    identity, AWS_* variables, instance profile)."""
    archive_s3_access_key_id_file: Path | None = None
    """A file holding the access key id (a Secret's key mounted as a file)."""
    archive_s3_secret_access_key: pydantic.SecretStr | None = None
    """The secret access key (with the access key id)."""
    archive_s3_secret_access_key_file: Path | None = None
    """A file holding the secret access key."""
    archive_s3_chunk_size: Annotated[int, pydantic.Field(le=32 * 1024**2)] = 4 * 1024**2
    """Most bytes of one stream buffered before they are written as one object (at most
    32Mi); also the most the follower reads ahead of a slow store, per stream."""
    archive_s3_flush_interval: Duration = 1.0
    """Longest time output waits in memory before it is written to the store."""

    @pydantic.field_validator("archive_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        if not value.is_absolute():
            msg = f"{str(value)!r} is relative; use an absolute path"
            raise ValueError(msg)
        return value

    @pydantic.field_validator("archive_s3_chunk_size", mode="before")
    @classmethod
    def _size(cls, value: Any) -> Any:
        return parse_bytes(value)

    @pydantic.model_validator(mode="after")
    def _s3_complete(self) -> Self:
        if self.archive_backend != "s3":
            return self
        if not self.archive_s3_bucket:
            msg = f"{self.env_name('archive_s3_bucket')} is needed with the s3 archive backend"
            raise ValueError(msg)
        has_id = self.archive_s3_access_key_id or self.archive_s3_access_key_id_file
        has_secret = self.archive_s3_secret_access_key or self.archive_s3_secret_access_key_file
        if bool(has_id) != bool(has_secret):
            msg = "give both the S3 access key id and its secret, or neither (default chain)"
            raise ValueError(msg)
        return self

    def archive_credentials(self) -> tuple[str, str] | None:
        """The access key id and secret (read from their files now), or None: the default
        chain. Raises :class:`errors.SettingsError` when a file cannot be read."""
        key_id = _secret(self.archive_s3_access_key_id, self.archive_s3_access_key_id_file)
        secret = _secret(self.archive_s3_secret_access_key, self.archive_s3_secret_access_key_file)
        return None if key_id is None or secret is None else (key_id, secret)


def _secret(value: pydantic.SecretStr | None, file: Path | None) -> str | None:
    if value is not None:
        return value.get_secret_value().strip() or None
    if file is None:
        return None
    try:
        return file.read_text().strip() or None
    except OSError as error:
        raise errors.SettingsError(f"reading {file}: {error.strerror}") from None
