"""What the commands share: argument parsing that exits 2, and error reporting."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

EXIT_FAILURE = 1
EXIT_USAGE = 2


def parser(prog: str, description: str, epilog: str | None = None) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog=epilog,
        allow_abbrev=False,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def fail(prog: str, message: str, code: int = EXIT_FAILURE) -> int:
    """Print ``prog: message`` to stderr and return ``code`` for ``main`` to exit with."""
    print(f"{prog}: {message}", file=sys.stderr)
    return code


def split_command(args: Sequence[str]) -> list[str]:
    """The command after the options, without the ``--`` that may separate them."""
    command = list(args)
    if command[:1] == ["--"]:
        del command[0]
    return command


def non_negative(text: str) -> float:
    """An argparse type: a number of seconds or a factor that is zero or more."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0: {text!r}")
    return value


def add_supervisor_timeout(parser: argparse.ArgumentParser, default: float) -> None:
    """The --timeout of the commands that talk to the supervisor over its control socket."""
    parser.add_argument(
        "--timeout",
        metavar="S",
        type=non_negative,
        default=default,
        help="how long to wait for the supervisor's answer (default %(default)s)",
    )
