"""The job container's command: the supervisor's arguments and the escaping they need.

Pure. From a definition and the supplied parameters, :func:`plan` resolves and checks
the values, and :func:`job_args` builds what follows the supervisor in the container's
``args``: the argv of a ``cmdspec`` or ``command``, or a script's arguments. No shell
ever sees a parameter.

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

from overseer import errors
from overseer.core import cmdspec
from overseer.crd import definition as defn
from overseer_library.commands import param

SCRIPT_ENV = "OVERSEER_SCRIPT"
NOOP = ("/bin/true",)
SHELL = "/bin/sh"


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

    @property
    def secret(self) -> frozenset[str]:
        """Secret parameters that have a value."""
        return frozenset(n for n in self.values if self.accepted[n].secret)


def plan(definition: defn.JobDefinition, supplied: Mapping[str, str]) -> Plan:
    """Resolve and check the parameters (raises :class:`errors.ParameterError`)."""
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
    return Plan(template, values, accepted)


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
