"""The in-pod supervisor: PID 1 of every job container.

``overseer-supervisor [options] -- PROGRAM ARG...`` (or ``--script-env VAR -- ARG...``)
starts the job in its own session with stdout and stderr on two pipes, and writes both,
framed, to its own stdout (see :mod:`overseer_library.protocol`).  It serves the control
socket (``event``, ``overseer-signal``), forwards every catchable signal to the job's
process group, reaps orphans, and exits with the job's code, or 128+n after signal n.
One thread and one selector do all of it; memory stays bounded whatever the job writes.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import fcntl
import os
import select
import selectors
import signal
import socket
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from overseer_library import control, launch, protocol

READ_SIZE: Final = 64 * 1024
MAX_CLIENTS: Final = 32
REAP_INTERVAL: Final = 1.0
PR_SET_CHILD_SUBREAPER: Final = 36
NOT_FORWARDED: Final = frozenset({signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD, signal.SIGPIPE})
LIBRARY_BIN: Final = os.path.join(
    os.path.dirname(os.path.dirname(os.path.realpath(__file__))), "bin"
)

DEFAULT_REPO_BIN: Final = "/overseer/repo-bin"
DEFAULT_TERMINATION_LOG: Final = "/dev/termination-log"

Handler = Callable[[selectors.SelectorKey], None]


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the supervisor needs, read once from its command line and environment."""

    command: tuple[str, ...]
    script_env: str | None = None
    user: str | None = None
    group: str | None = None
    repo_bin: str = DEFAULT_REPO_BIN
    library_bin: str = LIBRARY_BIN
    control_socket: str = control.DEFAULT_SOCKET
    termination_log: str = DEFAULT_TERMINATION_LOG
    drain_timeout: float = 2.0


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
    env = environ.get
    parser.add_argument(
        "--script-env",
        metavar="VAR",
        help="run the script whose text is "
        "in environment variable VAR (with /bin/sh unless it has a #! line); "
        "the arguments after -- become its $1...",
    )
    parser.add_argument("--user", help="run the job as this user (name or uid); needs root")
    parser.add_argument("--group", help="run the job with this group (name or gid); needs root")
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
    parser.add_argument(
        "--drain-timeout",
        metavar="S",
        type=float,
        default=2.0,
        help="after the job exits, how long to wait for processes it left "
        "behind to close its output (default %(default)s)",
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, metavar="-- PROGRAM ARG...")
    return parser


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
    return Settings(
        command=tuple(command),
        script_env=args.script_env,
        user=args.user,
        group=args.group,
        repo_bin=args.repo_bin,
        library_bin=args.library_bin,
        control_socket=args.control_socket,
        termination_log=args.termination_log,
        drain_timeout=args.drain_timeout,
    )


def _available(fd: int) -> int:
    """How many bytes a pipe holds right now."""
    raw = fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0")
    return int(struct.unpack("i", raw)[0])


def _ignore_signal(signum: int, frame: object) -> None:
    """Signals are read from the wakeup pipe; the Python-level handler does nothing."""


def _become_subreaper() -> None:
    """Adopt orphans even when not PID 1 (tests, a shared process namespace)."""
    if os.getpid() == 1:
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


class Supervisor:
    """Runs one job to its end; :meth:`run` returns the supervisor's exit status."""

    def __init__(self, settings: Settings, out_fd: int = 1) -> None:
        self._settings = settings
        self._out_fd = out_fd
        self._out_broken = False
        self._seq = 0
        self._selector = selectors.DefaultSelector()
        self._pipes: dict[protocol.Stream, int] = {}
        self._clients: dict[int, bytearray] = {}
        self._listener: socket.socket | None = None
        self._wake_fd: int | None = None
        self._pgid: int | None = None
        self._child: subprocess.Popen[bytes] | None = None
        self._status: int | None = None
        self._deadline = 0.0
        self._cleanup: list[Callable[[], None]] = []

    # -- frames ---------------------------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view and not self._out_broken:
            try:
                view = view[os.write(self._out_fd, view) :]
            except BlockingIOError:
                select.select([], [self._out_fd], [])
            except BrokenPipeError:
                self._out_broken = True

    def _emit(self, frame: protocol.Frame) -> int:
        self._write(protocol.encode(frame))
        return frame.seq

    def _log(self, level: protocol.Level, message: str) -> None:
        self._emit(protocol.Log(self._next_seq(), level, message, time.time()))

    def _emit_output(self, stream: protocol.Stream, data: bytes) -> None:
        step = protocol.MAX_OUT_CHUNK
        lines = [
            protocol.encode(protocol.Output(self._next_seq(), stream, data[i : i + step]))
            for i in range(0, len(data), step)
        ]
        self._write(b"".join(lines))

    # -- the job's output -------------------------------------------------------------------

    def _read(self, stream: protocol.Stream, size: int = READ_SIZE) -> int:
        """Read once from a pipe and emit it; returns the byte count, -1 at end of file."""
        fd = self._pipes[stream]
        try:
            data = os.read(fd, size)
        except BlockingIOError:
            return 0
        if not data:
            self._selector.unregister(fd)
            os.close(fd)
            del self._pipes[stream]
            return -1
        self._emit_output(stream, data)
        return len(data)

    def _drain_available(self) -> None:
        """Emit what the pipes hold now: everything written before this moment."""
        for stream in list(self._pipes):
            pending = _available(self._pipes[stream])
            while pending > 0:
                count = self._read(stream, min(pending, READ_SIZE))
                if count <= 0:
                    break
                pending -= count

    def _on_pipe(self, key: selectors.SelectorKey) -> None:
        stream: protocol.Stream = "stdout" if key.fd == self._pipes.get("stdout") else "stderr"
        self._read(stream)

    # -- signals and children -------------------------------------------------------------

    def _install_signals(self) -> None:
        read_fd, write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._wake_fd = read_fd
        signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        for signum in signal.valid_signals():
            if signum in NOT_FORWARDED - {signal.SIGCHLD}:
                continue
            with contextlib.suppress(OSError, ValueError):
                signal.signal(signum, _ignore_signal)
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        self._selector.register(read_fd, selectors.EVENT_READ, self._on_wake)

    def _on_wake(self, key: selectors.SelectorKey) -> None:
        try:
            numbers = os.read(key.fd, 256)
        except BlockingIOError:
            return
        for signum in numbers:
            if signum == signal.SIGCHLD:
                self._reap()
            else:
                self._signal_job(signum, "received")

    def _signal_job(self, signum: int, source: protocol.SignalSource) -> str | None:
        """Send a signal to the job's process group; returns an error message or None."""
        if self._pgid is None:
            return "the job has not started"
        try:
            os.killpg(self._pgid, signum)
        except ProcessLookupError:
            return "the job has ended: no process is left in its group"
        except OSError as exc:
            return f"cannot signal the job: {exc.strerror}"
        self._emit(protocol.Signal(self._next_seq(), signum, source, time.time()))
        return None

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if self._child is not None and pid == self._child.pid and self._status is None:
                self._status = status
                self._child.returncode = os.waitstatus_to_exitcode(status)
                self._deadline = time.monotonic() + self._settings.drain_timeout

    # -- the control socket ---------------------------------------------------------------

    def _listen(self, identity: launch.Identity | None) -> None:
        path = self._settings.control_socket
        directory = os.path.dirname(os.path.abspath(path))
        if launch.make_private_dir(directory, identity):
            self._cleanup.append(lambda: os.rmdir(directory))
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            if os.path.lexists(path):
                os.unlink(path)
            listener.bind(path)
            os.chmod(path, 0o600)
            launch.hand_over(path, identity)
            listener.listen(MAX_CLIENTS)
        except OSError as exc:
            listener.close()
            raise launch.LaunchError(f"cannot listen on the control socket {path}: {exc}") from exc
        listener.setblocking(False)
        self._listener = listener
        self._cleanup.append(lambda: os.unlink(path))
        self._selector.register(listener, selectors.EVENT_READ, self._on_accept)

    def _on_accept(self, key: selectors.SelectorKey) -> None:
        assert self._listener is not None
        try:
            conn, _ = self._listener.accept()
        except BlockingIOError:
            return
        if len(self._clients) >= MAX_CLIENTS:
            conn.close()
            return
        conn.setblocking(False)
        self._clients[conn.fileno()] = bytearray()
        self._selector.register(conn, selectors.EVENT_READ, self._on_client)

    def _on_client(self, key: selectors.SelectorKey) -> None:
        conn = key.fileobj
        assert isinstance(conn, socket.socket)
        buffer = self._clients[key.fd]
        try:
            chunk = conn.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        buffer += chunk
        reply: bytes | None = None
        if b"\n" in buffer:
            reply = self._answer(bytes(buffer.split(b"\n", 1)[0]))
        elif len(buffer) > control.MAX_MESSAGE:
            reply = control.encode_reply(error="request too long")
        elif chunk:
            return
        if reply is not None:
            with contextlib.suppress(OSError):
                conn.settimeout(1.0)
                conn.sendall(reply)
        self._drop_client(conn)

    def _drop_client(self, conn: socket.socket) -> None:
        del self._clients[conn.fileno()]
        self._selector.unregister(conn)
        conn.close()

    def _answer(self, line: bytes) -> bytes:
        try:
            request = control.decode_request(line)
        except ValueError as exc:
            return control.encode_reply(error=str(exc))
        if isinstance(request, control.EventRequest):
            self._drain_available()
            frame = protocol.Event(self._next_seq(), request.status, request.data, time.time())
            return control.encode_reply(seq=self._emit(frame))
        error = self._signal_job(request.signal, "requested")
        return control.encode_reply(seq=self._seq, error=error)

    # -- the run ----------------------------------------------------------------------------

    def run(self) -> int:
        try:
            code = self._run()
        except launch.LaunchError as exc:
            self._log("error", str(exc))
            code = exc.exit_code
            self._finish(protocol.Exit(self._next_seq(), code, None, time.time()))
        finally:
            for step in reversed(self._cleanup):
                with contextlib.suppress(OSError):
                    step()
        return code

    def _run(self) -> int:
        settings = self._settings
        identity = launch.resolve_identity(settings.user, settings.group)
        identity = launch.check_switch(identity, os.geteuid(), os.getuid(), os.getgid())
        _become_subreaper()
        self._install_signals()
        self._listen(identity)
        argv = list(settings.command)
        remove: tuple[str, ...] = ()
        if settings.script_env is not None:
            text = os.environb.get(settings.script_env.encode(), b"")
            directory = os.path.dirname(os.path.abspath(settings.control_socket))
            script, shebang = launch.write_script(directory, text, identity)
            self._cleanup.append(lambda: os.unlink(script))
            argv = [script, *argv] if shebang else ["/bin/sh", script, *argv]
            remove = (settings.script_env,)
        path = launch.build_path(settings.repo_bin, settings.library_bin, os.environ.get("PATH"))
        env = launch.build_env(
            os.environ,
            path=path,
            control_socket=settings.control_socket,
            identity=identity,
            remove=remove,
        )
        self._start(argv, env, identity)
        self._loop()
        return self._end()

    def _start(self, argv: list[str], env: dict[str, str], who: launch.Identity | None) -> None:
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        try:
            self._child = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out_w,
                stderr=err_w,
                env=env,
                start_new_session=True,
                user=who.uid if who else None,
                group=who.gid if who else None,
                extra_groups=list(who.groups) if who else None,
            )
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise launch.LaunchError(
                f"program not found: {argv[0]} (PATH={env['PATH']})", launch.EXIT_NOT_FOUND
            ) from exc
        except OSError as exc:
            raise launch.LaunchError(
                f"cannot run {argv[0]}: {exc.strerror or exc}", launch.EXIT_NOT_EXECUTABLE
            ) from exc
        finally:
            os.close(out_w)
            os.close(err_w)
        self._pgid = self._child.pid
        self._emit(protocol.Start(self._next_seq(), self._child.pid, argv[0], time.time()))
        self._pipes = {"stdout": out_r, "stderr": err_r}
        for fd in self._pipes.values():
            os.set_blocking(fd, False)
            self._selector.register(fd, selectors.EVENT_READ, self._on_pipe)
        self._reap()

    def _loop(self) -> None:
        while True:
            # SIGCHLD tells when the job exits; polling once a second covers a lost wake-up.
            timeout = REAP_INTERVAL
            if self._status is not None:
                timeout = min(timeout, self._deadline - time.monotonic())
                if not self._pipes or timeout <= 0:
                    return
            ready = self._selector.select(timeout)
            if not ready:
                self._reap()
            for key, _events in ready:
                handler: Handler = key.data
                if key.fd in self._selector.get_map():
                    handler(key)

    def _end(self) -> int:
        assert self._status is not None
        self._drain_available()
        if self._pipes:
            self._log(
                "warning",
                "processes the job left behind still hold its output open after "
                f"{self._settings.drain_timeout:g}s; stopped reading and killed its group",
            )
            for fd in self._pipes.values():
                self._selector.unregister(fd)
                os.close(fd)
            self._pipes.clear()
        if self._pgid is not None:
            with contextlib.suppress(OSError):
                os.killpg(self._pgid, signal.SIGKILL)
        self._reap()
        code = os.waitstatus_to_exitcode(self._status)
        frame = protocol.Exit(
            self._next_seq(), code if code >= 0 else None, -code if code < 0 else None, time.time()
        )
        return self._finish(frame)

    def _finish(self, frame: protocol.Exit) -> int:
        self._emit(frame)
        summary = protocol.Summary(frame.code, frame.signal, frame.seq)
        if self._settings.termination_log:
            try:
                with open(self._settings.termination_log, "w", encoding="ascii") as log:
                    log.write(protocol.encode_summary(summary))
            except OSError as exc:
                if self._settings.termination_log != DEFAULT_TERMINATION_LOG:
                    self._log("warning", f"cannot write the termination log: {exc}")
        return frame.status


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_settings(sys.argv[1:] if argv is None else argv, os.environ)
    return Supervisor(settings).run()
