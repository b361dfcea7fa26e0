"""``retry [options] -- COMMAND...``: run a command until it succeeds, with backoff."""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence

from overseer_library.commands import _cli

PROG = "retry"
DESCRIPTION = """\
Run COMMAND; while it fails (exits non-zero), wait and run it again, up to --attempts
times in all. The wait starts at --delay seconds and is multiplied by --backoff after
each failure, up to --max-delay. With --jitter each wait is a random time between half
of it and all of it, so that many jobs retrying together spread out."""
EPILOG = """\
examples:
  retry -- curl -fsS https://example.com/health
  retry --attempts 5 --delay 2 --backoff 3 --max-delay 30 --jitter -- ./deploy.sh prod

exit status: 0 once COMMAND succeeds; otherwise COMMAND's last status (128+n when
signal n killed it); 127 when COMMAND is not found and 126 when it cannot run (neither
is retried); 2 on misuse."""


def delays(
    delay: float, backoff: float, max_delay: float, jitter: random.Random | None = None
) -> Iterator[float]:
    """The waits between attempts: delay, delay*backoff, ... capped at max_delay."""
    wait = min(delay, max_delay)
    while True:
        yield jitter.uniform(wait / 2, wait) if jitter is not None else wait
        wait = min(wait * backoff, max_delay)


def _attempts(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = _cli.parser(PROG, DESCRIPTION, EPILOG)
    number = _cli.non_negative
    parser.add_argument(
        "--attempts",
        metavar="N",
        type=_attempts,
        default=3,
        help="how many times to run COMMAND at most (default %(default)s)",
    )
    parser.add_argument(
        "--delay",
        metavar="S",
        type=number,
        default=1.0,
        help="seconds to wait after the first failure (default %(default)s)",
    )
    parser.add_argument(
        "--backoff",
        metavar="F",
        type=number,
        default=2.0,
        help="factor applied to the wait after each failure (default %(default)s)",
    )
    parser.add_argument(
        "--max-delay",
        metavar="S",
        type=number,
        default=60.0,
        help="longest wait between attempts (default %(default)s)",
    )
    parser.add_argument(
        "--jitter",
        action="store_true",
        help="wait a random time between half the delay and all of it",
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND...")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    command = _cli.split_command(args.command)
    if not command:
        parser.error("give the command to run after '--'")
    waits = delays(
        args.delay,
        args.backoff,
        args.max_delay,
        random.Random() if args.jitter else None,  # noqa: S311 (spreading waits, not secrets)
    )
    return _run(command, args.attempts, waits)


def _run(command: list[str], attempts: int, waits: Iterator[float]) -> int:
    """Run ``command`` up to ``attempts`` times, sleeping the next of ``waits`` between."""
    status = 0
    for attempt in range(1, attempts + 1):
        try:
            returncode = subprocess.call(command)
        except FileNotFoundError:
            return _cli.fail(PROG, f"command not found: {command[0]}", 127)
        except OSError as exc:
            return _cli.fail(PROG, f"cannot run {command[0]}: {exc.strerror or exc}", 126)
        if returncode == 0:
            return 0
        status = returncode if returncode > 0 else 128 - returncode
        if attempt < attempts:
            wait = next(waits)
            print(
                f"{PROG}: attempt {attempt} of {attempts} failed with status {status}; "
                f"trying again in {wait:.3g}s",
                file=sys.stderr,
                flush=True,
            )
            time.sleep(wait)
    _cli.fail(PROG, f"giving up after {attempts} attempts; last status {status}")
    return status
