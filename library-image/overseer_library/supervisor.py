"""The in-pod supervisor: PID 1 of every job container.

``overseer-supervisor [options] -- PROGRAM ARG...`` (or ``--script-env VAR -- ARG...``)
starts the job in its own session with stdout and stderr on two pipes, and writes both,
framed, to its own stdout (see :mod:`overseer_library.protocol`).  It serves the control
socket (``event``, ``overseer-signal``), forwards every catchable signal to the job's
process group, reaps orphans, and exits with the job's code, or 128+n after signal n.
One thread and one selector do all of it; memory stays bounded whatever the job writes.
"""

from __future__ import annotations

import contextlib
import os
import select
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Final

from overseer_library import control, launch, protocol, settings

READ_SIZE: Final = 64 * 1024
MAX_CLIENTS: Final = 32
REAP_INTERVAL: Final = 1.0
NOT_FORWARDED: Final = frozenset({signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD, signal.SIGPIPE})

Handler = Callable[[selectors.SelectorKey], None]


def _ignore_signal(signum: int, frame: object) -> None:
    """Signals are read from the wakeup pipe; the Python-level handler does nothing."""


class Supervisor:
    """Runs one job to its end; :meth:`run` returns the supervisor's exit status."""

    def __init__(self, config: settings.Settings, out_fd: int = 1) -> None:
        self._settings = config
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
        self._kill_at: float | None = None
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
            pending = launch.available(self._pipes[stream])
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
        if signum == signal.SIGTERM and self._kill_at is None:
            self._kill_at = time.monotonic() + self._settings.kill_after
        return None

    def _escalate(self) -> None:
        """TERM was not enough: KILL the job's group (once), so it frees its slot."""
        self._kill_at = float("inf")
        self._log(
            "warning",
            f"the job did not end within {self._settings.kill_after:g}s of SIGTERM "
            "(killAfter): sent SIGKILL to its process group",
        )
        with contextlib.suppress(OSError):
            os.killpg(self._pgid or 0, signal.SIGKILL)

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

    def _listen(self) -> None:
        path = self._settings.control_socket
        directory = os.path.dirname(os.path.abspath(path))
        if launch.make_private_dir(directory):
            self._cleanup.append(lambda: os.rmdir(directory))
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            if os.path.lexists(path):
                os.unlink(path)
            listener.bind(path)
            os.chmod(path, 0o600)
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
        config = self._settings
        launch.become_subreaper()
        self._install_signals()
        self._listen()
        argv = list(config.command)
        remove: tuple[str, ...] = ()
        if config.script_env is not None:
            text = os.environb.get(config.script_env.encode(), b"")
            directory = os.path.dirname(os.path.abspath(config.control_socket))
            script, shebang = launch.write_script(directory, text)
            self._cleanup.append(lambda: os.unlink(script))
            argv = [script, *argv] if shebang else ["/bin/sh", script, *argv]
            remove = (config.script_env,)
        path = launch.build_path(config.repo_bin, config.library_bin, os.environ.get("PATH"))
        env = launch.build_env(
            os.environ,
            path=path,
            control_socket=config.control_socket,
            remove=remove,
        )
        self._start(argv, env)
        self._loop()
        return self._end()

    def _start(self, argv: list[str], env: dict[str, str]) -> None:
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
            if self._kill_at is not None and self._status is None:
                if self._kill_at <= time.monotonic():
                    self._escalate()
                timeout = max(0.0, min(timeout, self._kill_at - time.monotonic()))
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
                if self._settings.termination_log != settings.DEFAULT_TERMINATION_LOG:
                    self._log("warning", f"cannot write the termination log: {exc}")
        return frame.status


def main(argv: Sequence[str] | None = None) -> int:
    config = settings.parse_settings(sys.argv[1:] if argv is None else argv, os.environ)
    return Supervisor(config).run()
