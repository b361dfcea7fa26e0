"""``event STATUS [DATA]``: send a custom status event for this execution to Overseer."""

from __future__ import annotations

import json
from collections.abc import Sequence

from overseer_library import control, protocol
from overseer_library.commands import _cli

PROG = "event"
DESCRIPTION = """\
Send a custom status event for this execution to Overseer.

The event goes to the supervisor over its control socket, which writes it after the
output this job wrote before calling 'event' (flush your own buffers first), and
answers once it is recorded. Overseer adds it to the execution's events and calls the
webhooks configured for STATUS.

STATUS is 1 to 63 letters, digits, '_', '.' or '-', starting with a letter; the
lifecycle statuses start, complete, fail and time-out are Overseer's own. DATA is
JSON (up to 8 KiB); text that is not JSON is sent as a JSON string."""
EPILOG = """\
examples:
  event deploying
  event deploying '{"pct": 40}'
  event warning 'disk almost full'      (sent as the string "disk almost full")

exit status: 0 when recorded, 1 when the supervisor cannot be reached or refuses,
2 on misuse."""


def parse_data(text: str | None) -> protocol.JSONValue:
    """DATA as JSON when it parses (NaN and Infinity do not), else as a string."""
    if text is None:
        return None

    def refuse(name: str) -> None:
        raise ValueError(name)

    try:
        value: protocol.JSONValue = json.loads(text, parse_constant=refuse)
    except ValueError:
        return text
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = _cli.parser(PROG, DESCRIPTION, EPILOG)
    parser.add_argument("status", metavar="STATUS", help="the event's status")
    parser.add_argument("data", metavar="DATA", nargs="?", help="JSON data, or plain text")
    _cli.add_supervisor_timeout(parser, control.DEFAULT_TIMEOUT)
    args = parser.parse_args(argv)
    data = parse_data(args.data)
    problem = protocol.check_status(args.status) or protocol.check_event_data(data)
    if problem:
        return _cli.fail(PROG, problem, _cli.EXIT_USAGE)
    request = control.EventRequest(args.status, data)
    try:
        control.send(request, path=control.socket_path(), timeout=args.timeout)
    except control.ControlError as exc:
        return _cli.fail(PROG, str(exc))
    return 0
