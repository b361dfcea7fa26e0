"""cmdspec: a command template filled from an execution's parameters into an exact argv.

``cmdspec: my_command positional_var --some-opt some_opt`` reads: run ``my_command``
with parameter ``positional_var`` as its first argument and parameter ``some_opt`` as
the value of ``--some-opt``. The grammar, token by token (split like a POSIX shell
splits words, quotes and backslashes included; nothing else of the shell applies):

- the first token is the program, always literal;
- a token with any quoting (``'x'``, ``"x"``, ``\\x``) is literal text;
- a bare name (``[A-Za-z_][A-Za-z0-9_]*``) is a positional parameter;
- a bare option followed by a bare name (``--opt name``, ``-o name``) is that option
  with the parameter as its value, two argv items;
- ``--opt=name`` is the option and the value in one argv item;
- a bare option followed by another option or nothing is a literal flag;
- a bare ``--`` ends the options: after it, bare names are positionals and bare
  option-looking tokens are literal;
- any other bare token (``file.txt``, ``|``, ``$HOME``) is an error: quote it.

No shell ever sees a parameter value: :func:`build_argv` returns the argv list.

A value that starts with ``-`` would be read as an option by the program when it is
placed as a positional, so it is refused unless the cmdspec has ``--`` before that
positional: writing ``--`` is how a job's author says the program understands it.
Option values may start with ``-``: they always follow their option.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

from overseer import errors
from overseer.crd import definition as defn

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPTION = re.compile(r"--?[A-Za-z0-9][A-Za-z0-9_.:-]*")
END_OF_OPTIONS = "--"


@dataclasses.dataclass(frozen=True)
class Literal:
    """Literal text, passed as one argv item."""

    value: str


@dataclasses.dataclass(frozen=True)
class Positional:
    """A parameter's value as one argv item."""

    name: str
    after_end_of_options: bool = False


@dataclasses.dataclass(frozen=True)
class Option:
    """An option and a parameter's value: ``--flag value`` or, joined, ``--flag=value``."""

    flag: str
    name: str
    joined: bool = False


Item = Literal | Positional | Option


@dataclasses.dataclass(frozen=True)
class Template:
    """A parsed cmdspec."""

    source: str
    program: str
    items: tuple[Item, ...]

    @property
    def parameter_names(self) -> tuple[str, ...]:
        """Parameters used, in order of first use."""
        seen: dict[str, None] = {}
        for item in self.items:
            if isinstance(item, Positional | Option):
                seen.setdefault(item.name)
        return tuple(seen)


@dataclasses.dataclass(frozen=True)
class _Token:
    text: str
    quoted: bool


def _tokenize(text: str) -> list[_Token]:
    """Split like a POSIX shell splits words; remember which tokens had any quoting."""
    tokens: list[_Token] = []
    current: list[str] = []
    quoted = False
    in_token = False
    i = 0
    while i < len(text):
        char = text[i]
        if char in " \t\n":
            if in_token:
                tokens.append(_Token("".join(current), quoted))
                current, quoted, in_token = [], False, False
            i += 1
            continue
        in_token = True
        if char == "\\":
            if i + 1 >= len(text):
                msg = "the cmdspec ends with a backslash; remove it or escape it as \\\\"
                raise errors.CmdspecError(msg)
            current.append(text[i + 1])
            quoted = True
            i += 2
        elif char in "'\"":
            end, value = _quoted(text, i)
            current.append(value)
            quoted = True
            i = end + 1
        else:
            current.append(char)
            i += 1
    if in_token:
        tokens.append(_Token("".join(current), quoted))
    return tokens


def _quoted(text: str, start: int) -> tuple[int, str]:
    """Read a quoted part starting at ``start``; returns the closing quote's index and text."""
    quote = text[start]
    value: list[str] = []
    i = start + 1
    while i < len(text):
        char = text[i]
        if char == quote:
            return i, "".join(value)
        if quote == '"' and char == "\\" and i + 1 < len(text) and text[i + 1] in '"\\':
            value.append(text[i + 1])
            i += 2
            continue
        value.append(char)
        i += 1
    msg = f"the cmdspec has a {quote} quote that is never closed"
    raise errors.CmdspecError(msg)


def parse_cmdspec(text: str) -> Template:
    """Parse a cmdspec; :class:`errors.CmdspecError` says what to change when it is not valid."""
    tokens = _tokenize(text)
    if not tokens:
        msg = "the cmdspec is empty; write the program, then its parameters"
        raise errors.CmdspecError(msg)
    program = tokens[0]
    if not program.text or (not program.quoted and program.text.startswith("-")):
        msg = f"the cmdspec must start with the program to run, not {program.text!r}"
        raise errors.CmdspecError(msg)
    items: list[Item] = []
    ended = False
    rest = tokens[1:]
    i = 0
    while i < len(rest):
        token = rest[i]
        following = rest[i + 1] if i + 1 < len(rest) else None
        i += 1
        if token.quoted:
            items.append(Literal(token.text))
            ended = ended or token.text == END_OF_OPTIONS
        elif token.text == END_OF_OPTIONS:
            items.append(Literal(token.text))
            ended = True
        elif NAME.fullmatch(token.text):
            items.append(Positional(token.text, after_end_of_options=ended))
        elif token.text.startswith("-") and (ended or token.text == "-"):
            items.append(Literal(token.text))
        elif token.text.startswith("-"):
            item = _option(token.text, following)
            if isinstance(item, Option) and not item.joined:
                i += 1
            items.append(item)
        else:
            msg = (
                f"{token.text!r} is neither a parameter name nor an option; "
                f"to pass it as it is, quote it: '{token.text}'"
            )
            raise errors.CmdspecError(msg)
    return Template(source=text, program=program.text, items=tuple(items))


def _option(text: str, following: _Token | None) -> Item:
    flag, equals, value = text.partition("=")
    if not _OPTION.fullmatch(flag):
        msg = f"{text!r} is not an option name; to pass it as it is, quote it: '{text}'"
        raise errors.CmdspecError(msg)
    if equals:
        if not NAME.fullmatch(value):
            msg = (
                f"in {text!r}, {value!r} is not a parameter name; "
                f"to pass the whole token as it is, quote it: '{text}'"
            )
            raise errors.CmdspecError(msg)
        return Option(flag, value, joined=True)
    if following is not None and not following.quoted and NAME.fullmatch(following.text):
        return Option(flag, following.text)
    return Literal(flag)


def implicit_parameters(template: Template) -> dict[str, defn.Parameter]:
    """The original format: every name in the cmdspec is a required parameter."""
    return {name: defn.Parameter(required=True) for name in template.parameter_names}


def undeclared(template: Template, declared: Mapping[str, defn.Parameter]) -> list[str]:
    """Parameter names the cmdspec uses that ``declared`` does not have."""
    return [name for name in template.parameter_names if name not in declared]


def effective_parameters(
    template: Template | None, declared: Mapping[str, defn.Parameter] | None
) -> Mapping[str, defn.Parameter]:
    """The parameters a job accepts: those declared, or those its cmdspec implies."""
    if declared is not None:
        return declared
    if template is not None:
        return implicit_parameters(template)
    return {}


def shown(value: str, spec: defn.Parameter | None) -> str:
    """How a message may name a value: quoted, unless the parameter is secret."""
    return "the value (secret, not shown)" if spec is not None and spec.secret else repr(value)


def resolve_parameters(
    supplied: Mapping[str, str], accepted: Mapping[str, defn.Parameter]
) -> dict[str, str]:
    """The values an execution runs with: supplied ones plus defaults.

    Raises :class:`errors.ParameterError` naming every unknown, missing or not-allowed
    parameter. Parameters that are optional, without default and not supplied are
    absent from the result.
    """
    problems: list[errors.Problem] = []
    known = ", ".join(sorted(accepted)) or "none"
    for name in sorted(set(supplied) - set(accepted)):
        problems.append(errors.Problem(name, f"the job has no such parameter; it accepts: {known}"))
    values: dict[str, str] = {}
    for name, spec in sorted(accepted.items()):
        value = supplied.get(name, spec.default)
        if value is None:
            if spec.required:
                problems.append(errors.Problem(name, "is required; supply a value for it"))
            continue
        if not isinstance(value, str):
            problems.append(errors.Problem(name, "must be text; send the value as a JSON string"))
            continue
        if spec.allowed is not None and value not in spec.allowed:
            choices = ", ".join(repr(a) for a in spec.allowed)
            what = shown(value, spec)
            problems.append(errors.Problem(name, f"{what} is not allowed; use one of {choices}"))
            continue
        values[name] = value
    if problems:
        raise errors.ParameterError(problems)
    return values


def build_argv(
    template: Template,
    parameters: Mapping[str, str],
    declared: Mapping[str, defn.Parameter] | None,
) -> list[str]:
    """The exact argv of an execution: the program, then each item filled in.

    ``declared`` is the job's ``parameters`` (None for a job that declares none: every
    cmdspec name is then a required parameter). Raises :class:`errors.ParameterError`.
    """
    values = resolve_parameters(parameters, effective_parameters(template, declared))
    problems: list[errors.Problem] = []
    argv = [template.program]
    omitted: str | None = None
    for item in template.items:
        if isinstance(item, Literal):
            argv.append(item.value)
            continue
        value = values.get(item.name)
        if value is not None and "\x00" in value:
            problems.append(
                errors.Problem(item.name, "contains a NUL character, which no argument can")
            )
            continue
        if isinstance(item, Option):
            if value is not None:
                argv.extend([f"{item.flag}={value}"] if item.joined else [item.flag, value])
            continue
        if value is None:
            omitted = omitted or item.name
            continue
        if omitted is not None:
            problems.append(
                errors.Problem(
                    omitted,
                    f"has no value, so {item.name} would take its place as an argument; "
                    f"supply {omitted} too",
                )
            )
            omitted = None
        if value.startswith("-") and value != "-" and not item.after_end_of_options:
            spec = (declared or {}).get(item.name)
            problems.append(
                errors.Problem(
                    item.name,
                    f"{shown(value, spec)} starts with '-', so {template.program} would read "
                    "it as an option; the job's cmdspec must put -- before this parameter to "
                    "accept it",
                )
            )
        argv.append(value)
    if problems:
        raise errors.ParameterError(problems)
    return argv
