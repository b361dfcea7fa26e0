"""``wait-for (--url URL | --tcp HOST:PORT | --file PATH)``: wait until something is ready."""

from __future__ import annotations

import os
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from email.message import Message
from typing import IO

from overseer_library.commands import _cli

PROG = "wait-for"
ATTEMPT_TIMEOUT = 10.0
DESCRIPTION = """\
Wait until an HTTP(S) URL answers with a 2xx or 3xx status (redirects are not
followed), a TCP port accepts a connection, or a file exists. Checks every --interval
seconds and gives up after --timeout seconds (0: check once)."""
EPILOG = """\
examples:
  wait-for --url http://db-admin:8080/ready --timeout 120
  wait-for --tcp postgres:5432
  wait-for --tcp [::1]:6379 --interval 0.5
  wait-for --file /shared/done

exit status: 0 when ready, 1 on time-out, 2 on misuse."""

Check = Callable[[float], str | None]
"""Given a time limit for one attempt, None when ready, else why not."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(  # noqa: PLR0917 (the base class fixes the signature)
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: Message,
        newurl: str,
    ) -> urllib.request.Request | None:
        return None


def parse_url(text: str) -> str:
    """Check that ``text`` is an http(s) URL with a host; raises ValueError."""
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an http:// or https:// URL: {text!r}")
    return text


def parse_host_port(text: str) -> tuple[str, int]:
    """``host:port`` or ``[v6 address]:port``; raises ValueError."""
    host, sep, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"not HOST:PORT: {text!r}")
    return host, int(port)


def check_url(url: str, insecure: bool = False) -> Check:
    context = ssl.create_default_context()
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    opener = urllib.request.build_opener(
        _NoRedirect(), urllib.request.HTTPSHandler(context=context)
    )

    def check(limit: float) -> str | None:
        try:
            with opener.open(url, timeout=limit) as response:
                status = int(response.status)
        except urllib.error.HTTPError as exc:
            status = exc.code
            exc.close()
        except (urllib.error.URLError, OSError, ValueError) as exc:
            return f"{url}: {getattr(exc, 'reason', exc)}"
        return None if 200 <= status < 400 else f"{url} answered HTTP {status}"

    return check


def check_tcp(host: str, port: int) -> Check:
    def check(limit: float) -> str | None:
        try:
            with socket.create_connection((host, port), timeout=limit):
                return None
        except OSError as exc:
            return f"{host}:{port}: {exc.strerror or exc}"

    return check


def check_file(path: str) -> Check:
    def check(limit: float) -> str | None:
        return None if os.path.exists(path) else f"{path} does not exist"

    return check


def wait(check: Check, timeout: float, interval: float) -> str | None:
    """Run ``check`` until it passes or ``timeout`` runs out; the last reason, or None."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        reason = check(max(0.1, min(ATTEMPT_TIMEOUT, remaining)))
        if reason is None:
            return None
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return reason
        time.sleep(min(interval, remaining))


def main(argv: Sequence[str] | None = None) -> int:
    parser = _cli.parser(PROG, DESCRIPTION, EPILOG)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--url", help="wait until this http(s) URL answers 2xx or 3xx")
    target.add_argument("--tcp", metavar="HOST:PORT", help="wait until this port accepts")
    target.add_argument("--file", metavar="PATH", help="wait until this path exists")
    parser.add_argument(
        "--timeout",
        metavar="S",
        type=_cli.non_negative,
        default=60.0,
        help="give up after this many seconds (default %(default)s)",
    )
    parser.add_argument(
        "--interval",
        metavar="S",
        type=_cli.non_negative,
        default=1.0,
        help="seconds between checks (default %(default)s)",
    )
    parser.add_argument("--insecure", action="store_true", help="for https, accept any certificate")
    args = parser.parse_args(argv)
    try:
        if args.url is not None:
            check = check_url(parse_url(args.url), args.insecure)
        elif args.tcp is not None:
            check = check_tcp(*parse_host_port(args.tcp))
        else:
            check = check_file(args.file)
    except ValueError as exc:
        parser.error(str(exc))
    reason = wait(check, args.timeout, args.interval)
    if reason is not None:
        return _cli.fail(PROG, f"not ready after {args.timeout:g}s: {reason}")
    return 0
