"""``overseer-signal SIGNAL``: ask the supervisor to signal the job's process group.

The operator runs it with ``kubectl exec POD -- overseer-signal KILL``: PID 1 cannot be
sent SIGKILL from inside its own PID namespace, so the supervisor does it for the job.
"""

from __future__ import annotations

from collections.abc import Sequence

from overseer_library import control
from overseer_library.commands import _cli

PROG = "overseer-signal"
DESCRIPTION = """\
Ask the Overseer supervisor (PID 1 of this container) to send SIGNAL to the job's
whole process group. Used by the Overseer operator through 'kubectl exec'; a job may
use it too.

SIGNAL is a name (TERM, SIGTERM, kill, RTMIN+1) or a number."""
EPILOG = """\
examples:
  overseer-signal TERM
  overseer-signal KILL
  overseer-signal 10

exit status: 0 when sent, 1 when the supervisor cannot be reached or the job has
ended, 2 on misuse (an unknown signal)."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _cli.parser(PROG, DESCRIPTION, EPILOG)
    parser.add_argument("signal", metavar="SIGNAL", help="the signal to send")
    _cli.add_supervisor_timeout(parser, control.DEFAULT_TIMEOUT)
    args = parser.parse_args(argv)
    try:
        number = control.parse_signal(args.signal)
    except ValueError as exc:
        return _cli.fail(PROG, str(exc), _cli.EXIT_USAGE)
    try:
        control.send(
            control.SignalRequest(number), path=control.socket_path(), timeout=args.timeout
        )
    except control.ControlError as exc:
        return _cli.fail(PROG, str(exc))
    return 0
