"""``param NAME [--default VALUE]``: print one of the job's parameters."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping, Sequence

from overseer_library.commands import _cli

PROG = "param"
ENV_PREFIX = "OVERSEER_PARAM_"
ENV_FILE = "OVERSEER_PARAMS_FILE"
DESCRIPTION = f"""\
Print the value of the job parameter NAME, followed by a newline (-n for none).

Overseer hands parameters to the job twice: as a JSON object in the file named by
${ENV_FILE} (when set), and as environment variables {ENV_PREFIX}<NAME>, NAME
upper-cased with every character other than a letter or a digit turned into '_'. The
file is read first, because it keeps the exact name and type; string values are
printed as they are, other values as JSON."""
EPILOG = f"""\
examples:
  target=$(param target)
  param retries --default 3
  {ENV_PREFIX}SOME_OPT holds the parameter some-opt

exit status: 0 when printed, 1 when NAME is not set and there is no --default, or the
parameters file cannot be read, 2 on misuse."""


class ParamError(Exception):
    """The parameters file cannot be read."""


def env_name(name: str) -> str:
    """The environment variable that carries parameter ``name``."""
    return ENV_PREFIX + re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def _from_file(name: str, path: str) -> bytes | None:
    try:
        with open(path, encoding="utf-8") as file:
            params = json.load(file)
    except (OSError, ValueError) as exc:
        raise ParamError(f"cannot read the parameters file ${ENV_FILE}={path}: {exc}") from exc
    if not isinstance(params, dict):
        raise ParamError(f"the parameters file {path} does not hold a JSON object")
    if name not in params or params[name] is None:
        return None
    value = params[name]
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text.encode("utf-8", "surrogatepass")


def lookup(name: str, environ: Mapping[bytes, bytes]) -> bytes | None:
    """The parameter's value as bytes, or None when it is not set."""
    path = environ.get(ENV_FILE.encode())
    if path:
        value = _from_file(name, os.fsdecode(path))
        if value is not None:
            return value
    return environ.get(env_name(name).encode())


def main(argv: Sequence[str] | None = None) -> int:
    parser = _cli.parser(PROG, DESCRIPTION, EPILOG)
    parser.add_argument("name", metavar="NAME", help="the parameter's name")
    parser.add_argument("--default", metavar="VALUE", help="print VALUE when NAME is not set")
    parser.add_argument("-n", "--no-newline", action="store_true", help="print no newline")
    args = parser.parse_args(argv)
    if not args.name:
        parser.error("NAME must not be empty")
    try:
        value = lookup(args.name, os.environb)
    except ParamError as exc:
        return _cli.fail(PROG, str(exc))
    if value is None:
        if args.default is None:
            return _cli.fail(
                PROG,
                f"parameter {args.name!r} is not set (looked in ${env_name(args.name)} and "
                f"${ENV_FILE}); pass --default VALUE for a fallback",
            )
        value = os.fsencode(args.default)
    sys.stdout.buffer.write(value if args.no_newline else value + b"\n")
    sys.stdout.buffer.flush()
    return 0
