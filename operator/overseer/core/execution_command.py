"""The job container's command: the supervisor's arguments and the escaping they need.

Pure. From a definition and the supplied parameters, :func:`plan` resolves and checks
the values (:func:`check_runnable` what else of a definition no pod can run), and
:func:`job_args` builds what follows the supervisor in the container's ``args``: the
argv of a ``cmdspec`` or ``command``, or a script's arguments. No shell ever sees a
parameter.

Everything that reaches ``command``, ``args`` or an env ``value`` goes through
:func:`escape` (every ``$`` doubled): Kubernetes expands ``$(VAR)`` there, and a parameter
such as ``$(HOME)`` must reach the job as written. The one deliberate reference is to a
secret parameter's own variable (:func:`reference`), so a secret placed in the argv is
substituted by the kubelet and never written into the Job.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from overseer import errors
from overseer.core import accounts, cmdspec
from overseer.crd import definition as defn
from overseer_library.commands import param

SCRIPT_ENV = "OVERSEER_SCRIPT"
RESERVED_ENV_PREFIX = "OVERSEER_"
NOOP = ("/bin/true",)
SHELL = "/bin/sh"

MAX_ARG_STRLEN = 32 * 4096
"""Linux's limit on one argument or ``NAME=value`` variable, its NUL included (32 pages)."""
ARG_BUDGET = 1024 * 1024
"""What the job's argv and environment may take (strings, NULs, pointers): half of the
2 MiB Linux allows with the usual 8 MiB stack limit (a quarter of ``RLIMIT_STACK``); the
rest is left to the image's and the container runtime's variables."""
OWN_ALLOWANCE = 4096
"""Overseer's own variables and the supervisor's options, counted as a whole."""
POINTER = 8
"""Each string also costs its pointer in ``argv``/``envp`` (64-bit)."""


def escape(text: str) -> str:
    """``text`` as Kubernetes must be given it so that ``$(VAR)`` expansion leaves it as is."""
    return text.replace("$", "$$")


def param_env_name(name: str) -> str:
    """``OVERSEER_PARAM_<NAME>``: the variable that carries a parameter (``param``'s rule)."""
    return param.env_name(name)


def reference(name: str) -> str:
    """The one kind of unescaped text: a reference the kubelet replaces by the variable."""
    return f"$({param_env_name(name)})"


def _marker(texts: Sequence[str]) -> str:
    """A string found in none of ``texts``: private-use characters, one more than any run."""
    longest = max((len(run) for t in texts for run in re.findall("\ue000+", t)), default=0)
    return "\ue000" * (longest + 1)


@dataclasses.dataclass(frozen=True)
class Plan:
    """The execution's parameters: the values it runs with and those the job accepts."""

    template: cmdspec.Template | None
    values: dict[str, str]
    accepted: dict[str, defn.Parameter]
    hidden: frozenset[str] = frozenset()
    """Parameters supplied secretly (``spec.secretParameters``), secret whatever declared."""

    @property
    def secret(self) -> frozenset[str]:
        """Secret parameters that have a value: declared so, or supplied secretly."""
        return frozenset(n for n in self.values if self.accepted[n].secret or n in self.hidden)


def plan(
    definition: defn.JobDefinition,
    supplied: Mapping[str, str],
    hidden: frozenset[str] = frozenset(),
) -> Plan:
    """Resolve and check the parameters (raises :class:`errors.ParameterError`).

    ``hidden`` names the supplied values that came secretly: treated as secret parameters.
    """
    template = None
    if definition.cmdspec is not None:
        try:
            template = cmdspec.parse_cmdspec(definition.cmdspec)
        except errors.CmdspecError as error:
            raise errors.DefinitionNotRunnableError([("cmdspec", str(error))]) from None
    accepted = dict(cmdspec.effective_parameters(template, definition.parameters))
    values = cmdspec.resolve_parameters(supplied, accepted)
    nul = [errors.Problem(n, "contains a NUL character") for n, v in values.items() if "\0" in v]
    if nul:
        raise errors.ParameterError(nul)
    if template is not None:
        cmdspec.build_argv(template, values, accepted)  # refuses '-' leading positionals
    result = Plan(template, values, accepted, frozenset(hidden))
    check_exec_size(definition, result)
    return result


# --- what no pod can run ----------------------------------------------------------------


def check_runnable(
    definition: defn.JobDefinition, library_image: str = accounts.LIBRARY_IMAGE
) -> list[tuple[str, str]]:
    """What stops a valid definition from becoming a pod: ``(field, message)`` pairs.

    User and group names the image's accounts do not hold, and root (uid 0: the
    restricted Pod Security Standard forbids it), see :mod:`overseer.core.accounts`;
    environment names under ``OVERSEER_`` (Overseer's own), NUL in an environment value,
    and two parameters that differ only by case (they would share one
    ``OVERSEER_PARAM_`` variable).
    """
    _, problems = accounts.resolve(definition, library_image)
    for name, value in sorted((definition.env or {}).items()):
        if name.upper().startswith(RESERVED_ENV_PREFIX):
            problems.append(
                (f"env.{name}", f"names starting with {RESERVED_ENV_PREFIX} are Overseer's own")
            )
        if "\x00" in value:
            problems.append((f"env.{name}", "contains a NUL character, which no variable can"))
    owners: dict[str, str] = {}
    for name in sorted(definition.parameters or {}):
        variable = param_env_name(name)
        if variable in owners:
            problems.append(
                (
                    f"parameters.{name}",
                    f"shares the variable {variable} with {owners[variable]!r}; rename one",
                )
            )
        owners.setdefault(variable, name)
    return problems


# --- what execve accepts ----------------------------------------------------------------


class _Piece(NamedTuple):
    """One argv or environment string, and what it comes from: a parameter or a field."""

    owner: str
    parameter: bool
    text: str

    @property
    def size(self) -> int:
        return len(self.text.encode("utf-8", "surrogatepass")) + 1


def _argv_pieces(definition: defn.JobDefinition, plan: Plan) -> list[_Piece]:
    """The job's argv with real values (secret ones too: the kubelet substitutes them)."""
    if plan.template is not None:
        pieces = [_Piece("cmdspec", False, plan.template.program)]
        for item in plan.template.items:
            if isinstance(item, cmdspec.Literal):
                pieces.append(_Piece("cmdspec", False, item.value))
                continue
            value = plan.values.get(item.name)
            if value is None:
                continue
            if isinstance(item, cmdspec.Option) and item.joined:
                pieces.append(_Piece(item.name, True, f"{item.flag}={value}"))
                continue
            if isinstance(item, cmdspec.Option):
                pieces.append(_Piece("cmdspec", False, item.flag))
            pieces.append(_Piece(item.name, True, value))
        return pieces
    if isinstance(definition.command, list):
        return [_Piece("command", False, arg) for arg in definition.command]
    if isinstance(definition.command, str):
        return [_Piece("command", False, text) for text in (SHELL, "-c", definition.command)]
    if definition.script is not None:
        return [_Piece(n, True, plan.values.get(n, "")) for n in sorted(plan.accepted)]
    return [_Piece("command", False, arg) for arg in NOOP]


def _env_pieces(definition: defn.JobDefinition, plan: Plan) -> list[_Piece]:
    pieces = [_Piece(f"env.{n}", False, f"{n}={v}") for n, v in (definition.env or {}).items()]
    pieces.append(_Piece("name", False, f"OVERSEER_JOB={definition.name}"))
    pieces += [_Piece(n, True, f"{param_env_name(n)}={v}") for n, v in plan.values.items()]
    if definition.script is not None:
        pieces.append(_Piece("script", False, f"{SCRIPT_ENV}={definition.script}"))
    return pieces


def check_exec_size(definition: defn.JobDefinition, plan: Plan) -> None:
    """Refuse what the kernel would refuse with E2BIG when the container starts.

    Each argument and ``NAME=value`` variable must stay under :data:`MAX_ARG_STRLEN`
    and all of them under :data:`ARG_BUDGET`. A parameter's value travels twice for a
    ``cmdspec`` (argument and ``OVERSEER_PARAM_`` variable). Raises
    :class:`errors.DefinitionNotRunnableError` for the definition's own text (naming the
    field) and :class:`errors.ParameterError` naming the parameter; a value is never
    quoted, since it may be a secret.
    """
    pieces = [*_argv_pieces(definition, plan), *_env_pieces(definition, plan)]
    longest: dict[tuple[bool, str], int] = {}
    for piece in pieces:
        key = (piece.parameter, piece.owner)
        longest[key] = max(longest.get(key, 0), piece.size)
    single = [(key, size) for key, size in longest.items() if size > MAX_ARG_STRLEN]
    fields = [
        (
            owner,
            f"is {size - 1} bytes as one argument or variable, over Linux's limit of "
            f"{MAX_ARG_STRLEN} (MAX_ARG_STRLEN), so no container could start with it",
        )
        for (is_parameter, owner), size in sorted(single)
        if not is_parameter
    ]
    if fields:
        raise errors.DefinitionNotRunnableError(fields)
    if single:
        raise errors.ParameterError(
            [_too_long_problem(owner, plan) for (_, owner), _ in sorted(single)]
        )
    total = OWN_ALLOWANCE + sum(piece.size + POINTER for piece in pieces)
    if total <= ARG_BUDGET:
        return
    shares: dict[tuple[bool, str], int] = {}
    for piece in pieces:
        shares[piece.parameter, piece.owner] = shares.get((piece.parameter, piece.owner), 0)
        shares[piece.parameter, piece.owner] += piece.size + POINTER
    # The definition alone over the budget is its fault; otherwise the largest value's.
    alone = OWN_ALLOWANCE + sum(size for (is_param, _), size in shares.items() if not is_param)
    blamed = [
        (size, owner)
        for (is_param, owner), size in shares.items()
        if is_param != (alone > ARG_BUDGET)
    ]
    share, owner = max(blamed)
    message = (
        f"the job's arguments and environment would take {total} bytes in total, over the "
        f"{ARG_BUDGET} Overseer allows below Linux's limit (E2BIG at container start); "
        f"this is the largest part ({share} bytes): pass large data in a file or at a URL"
    )
    if alone > ARG_BUDGET:
        raise errors.DefinitionNotRunnableError([(owner, message)])
    raise errors.ParameterError([errors.Problem(owner, message)])


def _too_long_problem(name: str, plan: Plan) -> errors.Problem:
    size = len(plan.values[name].encode("utf-8", "surrogatepass"))
    room = MAX_ARG_STRLEN - 1 - len(f"{param_env_name(name)}=")
    return errors.Problem(
        name,
        f"is {size} bytes; Linux refuses one argument or variable over {MAX_ARG_STRLEN} "
        f"bytes (MAX_ARG_STRLEN), and this value travels as {param_env_name(name)}: "
        f"keep it under {room + 1} bytes, or pass large data in a file or at a URL",
    )


def _cmdspec_args(template: cmdspec.Template, plan: Plan) -> list[str]:
    """The escaped argv; each secret value is a ``$(OVERSEER_PARAM_X)`` reference.

    The argv is built again with a placeholder for each secret value (the real values
    were checked by :func:`plan`), then each placeholder becomes the reference.
    """
    if not plan.secret:
        return [escape(arg) for arg in cmdspec.build_argv(template, plan.values, plan.accepted)]
    literals = [template.program]
    literals += [item.value for item in template.items if isinstance(item, cmdspec.Literal)]
    mark = _marker([*literals, *plan.values.values()])
    placeholders = {
        n: f"{mark}{n}{mark}" if n in plan.secret else v for n, v in plan.values.items()
    }
    relaxed = {
        n: defn.Parameter() if n in plan.secret else spec for n, spec in plan.accepted.items()
    }
    args = []
    for arg in cmdspec.build_argv(template, placeholders, relaxed):
        pieces = arg.split(mark)
        args.append(
            "".join(escape(p) if i % 2 == 0 else reference(p) for i, p in enumerate(pieces))
        )
    return args


def job_args(definition: defn.JobDefinition, plan: Plan) -> list[str]:
    """The supervisor's arguments, escaped: options, ``--``, then the job's argv."""
    if plan.template is not None:
        return ["--", *_cmdspec_args(plan.template, plan)]
    if isinstance(definition.command, list):
        return ["--", *(escape(arg) for arg in definition.command)]
    if isinstance(definition.command, str):
        return ["--", SHELL, "-c", escape(definition.command)]
    if definition.script is not None:
        # $1, $2 ...: every accepted parameter by name (Kubernetes stores maps sorted, so
        # the written order cannot be kept); '' for one without a value, so none shifts.
        positional = [
            reference(n) if n in plan.secret else escape(plan.values.get(n, ""))
            for n in sorted(plan.accepted)
        ]
        return ["--script-env", SCRIPT_ENV, "--", *positional]
    return ["--", *NOOP]
