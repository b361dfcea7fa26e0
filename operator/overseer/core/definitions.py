"""Parse job files and ``overseer.yml`` into validated job definitions and precise errors.

A job file (``.yml``, ``.yaml`` or ``.json``) holds a list of jobs; a single mapping is
read as a list of one. ``overseer.yml`` at the root holds ``defaults`` merged into
every job (see :func:`overseer.crd.definition.apply_defaults`).

A file fails as a unit: when any of its jobs is invalid, the result has no jobs and
lists every error, and the sync keeps the jobs that file defined before, as they were.
Partly applying a file would delete the jobs it fails to define and run a job whose
neighbours (that it may depend on) are stale, for a typo.

Errors name the file, the job (when its name is known), the field path (``cmdspec``,
``parameters.day.default``; ``[2].command`` when the job has no usable name) and the
line when the file is YAML.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import pydantic

from overseer import errors as overseer_errors
from overseer.core import accounts, cmdspec, documents, field_errors, names
from overseer.crd import definition as defn
from overseer.crd import repository

JOB_FILE_SUFFIXES = documents.YAML_SUFFIXES + documents.JSON_SUFFIXES
"""What a job file's name ends in, in any case (``jobs/a.YAML`` is one)."""
DEFAULTS_FILE = "overseer.yml"

Error = repository.DefinitionError


@dataclasses.dataclass(frozen=True)
class ParsedJob:
    """One valid job: its definition (defaults applied) and where it was defined."""

    definition: defn.JobDefinition
    resource_name: str
    file: str
    index: int
    line: int | None
    template: cmdspec.Template | None

    @property
    def name(self) -> str:
        return self.definition.name


@dataclasses.dataclass(frozen=True)
class FileResult:
    """What one file defines: its jobs, or (when it failed) no jobs and its errors."""

    file: str
    jobs: tuple[ParsedJob, ...] = ()
    errors: tuple[Error, ...] = ()

    @property
    def failed(self) -> bool:
        return bool(self.errors)


@dataclasses.dataclass(frozen=True)
class DefaultsResult:
    """The defaults of ``overseer.yml`` (None when there are none), or its errors."""

    defaults: defn.Defaults | None = None
    errors: tuple[Error, ...] = ()


@dataclasses.dataclass(frozen=True)
class RepositoryResult:
    """Every job of a repository and every error, with the files that failed."""

    jobs: Mapping[str, ParsedJob]
    """Valid jobs of files that did not fail, by resource name."""
    errors: tuple[Error, ...]
    failed_files: frozenset[str]


def is_job_file(path: str) -> bool:
    """True for a path read as a job file (not ``overseer.yml`` itself); the one test the
    git reader and the parser share."""
    return path.lower().endswith(JOB_FILE_SUFFIXES) and path != DEFAULTS_FILE


def parse_defaults(text: str | bytes, file: str = DEFAULTS_FILE) -> DefaultsResult:
    """Parse ``overseer.yml``: a mapping with an optional ``defaults`` mapping."""
    try:
        document = documents.load(file, text)
    except overseer_errors.LoadError as error:
        return DefaultsResult(errors=(_load_error(file, error),))
    if document.value is None:
        return DefaultsResult()
    try:
        parsed = defn.OverseerFile.model_validate(document.value)
    except pydantic.ValidationError as error:
        errors = field_errors.from_validation_error(
            file, None, location=(), error=error, document=document, model=defn.OverseerFile
        )
        return DefaultsResult(errors=tuple(errors))
    return DefaultsResult(defaults=parsed.defaults)


def parse_job_file(
    path: str, text: str | bytes, defaults: defn.Defaults | None = None
) -> FileResult:
    """Parse one job file; every job valid, or no job and all the errors."""
    if not path.lower().endswith(JOB_FILE_SUFFIXES):
        message = f"not a job file; job files end in {', '.join(JOB_FILE_SUFFIXES)}"
        return FileResult(path, errors=(Error(file=path, message=message),))
    try:
        document = documents.load(path, text)
    except overseer_errors.LoadError as error:
        return FileResult(path, errors=(_load_error(path, error),))
    value = document.value
    if value is None:
        return FileResult(path)
    if isinstance(value, dict):
        items: list[Any] = [value]
    elif isinstance(value, list):
        items = value
    else:
        message = "a job file holds a list of jobs (or one job as a mapping)"
        return FileResult(
            path, errors=(Error(file=path, line=document.line_of(()), message=message),)
        )
    jobs: list[ParsedJob] = []
    errors: list[Error] = []
    for index, item in enumerate(items):
        location = (index,) if isinstance(value, list) else ()
        job, job_errors = _parse_job(
            path, index, location=location, item=item, document=document, defaults=defaults
        )
        errors.extend(job_errors)
        if job is not None:
            jobs.append(job)
    if errors:
        return FileResult(path, errors=tuple(_sorted(errors)))
    return FileResult(path, jobs=tuple(jobs))


def _parse_job(
    path: str,
    index: int,
    *,
    location: tuple[int, ...],
    item: Any,
    document: documents.Document,
    defaults: defn.Defaults | None,
) -> tuple[ParsedJob | None, list[Error]]:
    line = document.line_of(location)
    if not isinstance(item, dict):
        field = f"[{index}]" if location else None
        message = "each job is a mapping of fields, with at least a name"
        return None, [Error(file=path, field=field, line=line, message=message)]
    name = item.get("name") if isinstance(item.get("name"), str) else None
    try:
        job = defn.JobDefinition.model_validate(item)
    except pydantic.ValidationError as error:
        return None, field_errors.from_validation_error(
            path,
            name,
            location=location,
            error=error,
            document=document,
            model=defn.JobDefinition,
        )
    job = defn.apply_defaults(job, defaults)
    problems = check_definition(job)
    if problems:
        return None, [
            Error(
                file=path,
                job=name,
                field=field,
                line=document.line_of((*location, field)) if field else line,
                message=message,
            )
            for field, message in problems
        ]
    template = parse_template(job)
    parsed = ParsedJob(
        definition=job,
        resource_name=names.job_resource_name(job.name),
        file=path,
        index=index,
        line=line,
        template=template,
    )
    return parsed, []


def parse_template(job: defn.JobDefinition) -> cmdspec.Template | None:
    """The parsed cmdspec of a checked job, or None when it has none."""
    return cmdspec.parse_cmdspec(job.cmdspec) if job.cmdspec is not None else None


def check_definition(job: defn.JobDefinition) -> list[tuple[str | None, str]]:
    """Rules beyond the model's: the cmdspec grammar and the parameters it uses, and
    user and group names the image's accounts hold, never root
    (:mod:`overseer.core.accounts`).

    Returns ``(field, message)`` pairs; empty when the job is valid.
    """
    problems: list[tuple[str | None, str]] = []
    problems.extend(accounts.resolve(job)[1])
    template = None
    if job.cmdspec is not None:
        try:
            template = cmdspec.parse_cmdspec(job.cmdspec)
        except overseer_errors.CmdspecError as error:
            problems.append(("cmdspec", str(error)))
    if template is not None and job.parameters is not None:
        for name in cmdspec.undeclared(template, job.parameters):
            problems.append(
                (
                    "cmdspec",
                    f"uses the parameter {name!r}, which is not declared; add it under "
                    "parameters (or declare no parameters at all: then every name in the "
                    "cmdspec is a required parameter)",
                )
            )
    if job.schedule is not None and not problems:
        accepted = cmdspec.effective_parameters(template, job.parameters)
        for name, spec in sorted(accepted.items()):
            if spec.required:
                problems.append(
                    (
                        "schedule",
                        f"a scheduled run supplies no parameters, but {name!r} is required; "
                        "make it optional with a default",
                    )
                )
    return problems


FileParser = Callable[[str, "str | bytes", "defn.Defaults | None"], FileResult]
"""Parses one job file; :func:`parse_job_file` or a caching wrapper around it."""


def parse_repository(
    files: Mapping[str, str | bytes],
    defaults_text: str | bytes | None = None,
    parse_file: FileParser | None = None,
    *,
    too_large: Mapping[str, int] | None = None,
    limit: int = documents.MAX_BYTES,
) -> RepositoryResult:
    """Parse every job file of a repository, with its ``overseer.yml`` when it has one.

    ``too_large`` maps the files left unread (over ``limit`` bytes) to their sizes: each
    fails with an error that says so.

    When ``overseer.yml`` fails, every job file fails with it (their effective
    definitions are unknown). Files defining a job name that another place defines
    too fail as well. ``files`` maps paths (relative to the repository path) to text.
    """
    too_large = too_large or {}
    defaults_result = DefaultsResult()
    if DEFAULTS_FILE in too_large:
        defaults_result = DefaultsResult(errors=(_too_large(DEFAULTS_FILE, too_large, limit),))
    elif defaults_text is not None:
        defaults_result = parse_defaults(defaults_text)
    if defaults_result.errors:
        failed = frozenset(files) | frozenset(too_large) | {DEFAULTS_FILE}
        return RepositoryResult({}, defaults_result.errors, failed)
    parse = parse_file or parse_job_file
    results = [parse(path, text, defaults_result.defaults) for path, text in sorted(files.items())]
    results += [
        FileResult(path, errors=(_too_large(path, too_large, limit),)) for path in too_large
    ]
    duplicates = find_duplicates(results)
    errors = [e for r in results for e in r.errors] + duplicates
    failed = frozenset(r.file for r in results if r.failed) | {e.file for e in duplicates}
    jobs = {job.resource_name: job for r in results if r.file not in failed for job in r.jobs}
    return RepositoryResult(jobs, tuple(_sorted(errors)), failed)


def _too_large(path: str, sizes: Mapping[str, int], limit: int) -> Error:
    mib = 1024 * 1024
    return Error(
        file=path,
        message=(
            f"the file is {sizes[path] / mib:.1f} MiB, over the {limit / mib:g} MiB a file may "
            "hold, and was not read: split it into several files"
        ),
    )


def find_duplicates(results: Iterable[FileResult]) -> list[Error]:
    """An error at each place a job name (or its resource name) is defined more than once."""
    by_name: dict[str, list[ParsedJob]] = {}
    by_resource: dict[str, list[ParsedJob]] = {}
    for result in results:
        for job in result.jobs:
            by_name.setdefault(job.name, []).append(job)
            by_resource.setdefault(job.resource_name, []).append(job)
    errors: list[Error] = []
    for name, places in by_name.items():
        if len(places) > 1:
            errors.extend(_duplicate_errors(places, f"the job name {name!r} is defined"))
    for resource_name, places in by_resource.items():
        if len({job.name for job in places}) > 1:
            clashing = sorted({job.name for job in places})
            what = f"the names {clashing!r} share the resource name {resource_name!r}"
            errors.extend(_duplicate_errors(places, what))
    return _sorted(errors)


def _duplicate_errors(places: Sequence[ParsedJob], what: str) -> list[Error]:
    errors = []
    for job in places:
        others = ", ".join(_where(other) for other in places if other is not job)
        errors.append(
            Error(
                file=job.file,
                job=job.name,
                field="name",
                line=job.line,
                message=f"{what} again in {others}; rename one of them",
            )
        )
    return errors


def _where(job: ParsedJob) -> str:
    return f"{job.file} (line {job.line})" if job.line else f"{job.file} (job #{job.index + 1})"


def _sorted(errors: Iterable[Error]) -> list[Error]:
    return sorted(
        errors, key=lambda e: (e.file, e.line or 0, e.job or "", e.field or "", e.message)
    )


def _load_error(file: str, error: overseer_errors.LoadError) -> Error:
    message = error.message
    if error.column:
        message += f" (at column {error.column})"
    return Error(file=file, line=error.line, message=message)
