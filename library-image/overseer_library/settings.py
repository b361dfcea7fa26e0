"""The supervisor's settings, read once from its command line and environment."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from overseer_library import control

DEFAULT_REPO_BIN: Final = "/overseer/repo-bin"
DEFAULT_TERMINATION_LOG: Final = "/dev/termination-log"
DEFAULT_KILL_AFTER: Final = 30.0
ENV_KILL_AFTER: Final = "OVERSEER_KILL_AFTER"
LIBRARY_BIN: Final = os.path.join(
    os.path.dirname(os.path.dirname(os.path.realpath(__file__))), "bin"
)
"""The shims' folder: ``bin/`` next to the package, in the image as in this repository."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the supervisor needs, read once from its command line and environment."""

    command: tuple[str, ...]
    script_env: str | None = None
    repo_bin: str = DEFAULT_REPO_BIN
    library_bin: str = LIBRARY_BIN
    control_socket: str = control.DEFAULT_SOCKET
    termination_log: str = DEFAULT_TERMINATION_LOG
    drain_timeout: float = 2.0
    kill_after: float = DEFAULT_KILL_AFTER


def _parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="overseer-supervisor",
        allow_abbrev=False,
        description=(
            "Run one Overseer job as the container's first process. The job's stdout and "
            "stderr, the events it sends with 'event' and the signals it gets are written, "
            "framed, to this process's stdout for the Overseer operator to decode."
        ),
        epilog=(
            "PATH for the job is the repository's bin directory, then the library's, then "
            "the image's. The job finds the control socket in $OVERSEER_CONTROL_SOCKET. "
            "The exit status is the job's, or 128+n when signal n killed it; 127 when the "
            "program is not found, 126 when it cannot run, 125 when set-up fails."
        ),
    )
    parser.add_argument(
        "--script-env",
        metavar="VAR",
        help="run the script whose text is "
        "in environment variable VAR (with /bin/sh unless it has a #! line); "
        "the arguments after -- become its $1...",
    )
    _add_locations(parser, environ)
    parser.add_argument(
        "--drain-timeout",
        metavar="S",
        type=float,
        default=2.0,
        help="after the job exits, how long to wait for processes it left "
        "behind to close its output (default %(default)s)",
    )
    parser.add_argument(
        "--kill-after",
        metavar="S",
        type=float,
        default=environ.get(ENV_KILL_AFTER) or DEFAULT_KILL_AFTER,
        help="after the job is sent SIGTERM (received or requested), how long it may take "
        f"to end before its group gets SIGKILL (default ${ENV_KILL_AFTER} or %(default)s)",
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, metavar="-- PROGRAM ARG...")
    return parser


def _add_locations(parser: argparse.ArgumentParser, environ: Mapping[str, str]) -> None:
    """The paths the supervisor uses, each defaulting to its environment variable."""
    env = environ.get
    parser.add_argument(
        "--repo-bin",
        metavar="DIR",
        default=env("OVERSEER_REPO_BIN", DEFAULT_REPO_BIN),
        help="the repository's bin/ (first in PATH; default $OVERSEER_REPO_BIN or %(default)s)",
    )
    parser.add_argument(
        "--library-bin",
        metavar="DIR",
        default=env("OVERSEER_LIBRARY_BIN", LIBRARY_BIN),
        help="the library commands (second in PATH; default "
        "$OVERSEER_LIBRARY_BIN or the shims' own folder, %(default)s)",
    )
    parser.add_argument(
        "--control-socket",
        metavar="PATH",
        default=control.socket_path(environ),
        help="the control socket, in a directory the supervisor "
        "creates for itself (default $OVERSEER_CONTROL_SOCKET or "
        "%(default)s)",
    )
    parser.add_argument(
        "--termination-log",
        metavar="PATH",
        default=env("OVERSEER_TERMINATION_LOG", DEFAULT_TERMINATION_LOG),
        help="where "
        "to write the one-line JSON summary if writable; '' for nowhere "
        "(default %(default)s)",
    )


def parse_settings(argv: Sequence[str], environ: Mapping[str, str]) -> Settings:
    """Read the command line; exits with status 2 and a message on misuse."""
    parser = _parser(environ)
    args = parser.parse_args(argv)
    command = list(args.command)
    if command[:1] == ["--"]:
        del command[0]
    if args.script_env is None and not command:
        parser.error("give the job's program after '--', or --script-env VAR")
    if args.script_env is not None and args.script_env not in environ:
        parser.error(f"--script-env: environment variable {args.script_env} is not set")
    if args.drain_timeout < 0:
        parser.error("--drain-timeout must not be negative")
    if args.kill_after < 0:
        parser.error("--kill-after must not be negative")
    return Settings(
        command=tuple(command),
        script_env=args.script_env,
        repo_bin=args.repo_bin,
        library_bin=args.library_bin,
        control_socket=args.control_socket,
        termination_log=args.termination_log,
        drain_timeout=args.drain_timeout,
        kill_after=args.kill_after,
    )
