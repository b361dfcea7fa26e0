"""Run the real supervisor and the library commands as subprocesses, and read their frames."""

from __future__ import annotations

import os
import resource
import selectors
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TypeVar

from overseer_library import protocol

LIBRARY_IMAGE = Path(__file__).resolve().parents[3] / "library-image"
BIN = LIBRARY_IMAGE / "bin"
SUPERVISOR = BIN / "overseer-supervisor"
PYTHON = "/usr/bin/python3"  # the interpreter the shims name, as in the image

R = TypeVar("R", bound=protocol.Record)


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without proxies or Overseer variables, plus extra."""
    env = {
        key: value
        for key, value in os.environ.items()
        if "proxy" not in key.lower() and not key.startswith("OVERSEER_")
    }
    env.update(extra)
    return env


@contextmanager
def short_tmp() -> Iterator[Path]:
    """A temporary directory with a short path: Unix socket paths are limited to 107 bytes."""
    path = Path(tempfile.mkdtemp(prefix="ovs-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class Run:
    """One supervisor process; its stdout is decoded into records as it arrives."""

    def __init__(self, proc: subprocess.Popen[bytes], socket: Path, termination_log: Path):
        self.proc = proc
        self.socket = socket
        self.termination_log = termination_log
        self.records: list[protocol.Record] = []
        self.stderr = b""
        self.rusage: resource.struct_rusage | None = None
        self.summary: str | None = None
        self._decoder = protocol.Decoder()
        self._eof = False
        assert proc.stdout is not None and proc.stderr is not None
        self._selector = selectors.DefaultSelector()
        for stream in (proc.stdout, proc.stderr):
            os.set_blocking(stream.fileno(), False)
            self._selector.register(stream, selectors.EVENT_READ)

    def _pump(self, timeout: float) -> None:
        for key, _ in self._selector.select(timeout):
            fileobj = key.fileobj
            assert not isinstance(fileobj, int)
            data = os.read(fileobj.fileno(), 1 << 20)
            if fileobj is self.proc.stderr:
                self.stderr += data
            elif data:
                self.records += self._decoder.feed(data)
            if not data:
                self._selector.unregister(fileobj)
                if fileobj is self.proc.stdout:
                    self._eof = True
                    self.records += self._decoder.close()

    def until(self, predicate: Callable[[Run], bool], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (self._eof and not self._selector.get_map()):
                raise AssertionError(f"condition not met; records so far: {self.records[-5:]}")
            self._pump(min(remaining, 0.5))

    def wait_for_output(self, stream: protocol.Stream, data: bytes, timeout: float = 30.0) -> None:
        self.until(lambda run: data in run.output(stream), timeout)

    def wait(self, timeout: float = 60.0) -> int:
        """Read everything to the end and reap the supervisor; its exit status."""
        self.until(lambda run: run._eof and not run._selector.get_map(), timeout)
        deadline = time.monotonic() + timeout
        while True:
            pid, status, rusage = os.wait4(self.proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                self.proc.kill()
                raise AssertionError("the supervisor did not exit")
            time.sleep(0.01)
        self.rusage = rusage
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        if self.termination_log.exists():
            self.summary = self.termination_log.read_text(encoding="ascii")
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self.proc.stdout.close()
        self.proc.stderr.close()
        return self.proc.returncode

    def frames(self, kind: type[R]) -> list[R]:
        return [r for r in self.records if isinstance(r, kind)]

    def output(self, stream: protocol.Stream) -> bytes:
        return b"".join(f.data for f in self.frames(protocol.Output) if f.stream == stream)

    def events(self) -> list[tuple[str, protocol.JSONValue]]:
        return [(e.status, e.data) for e in self.frames(protocol.Event)]

    def kinds(self) -> list[str]:
        return [type(r).__name__ for r in self.records]


@contextmanager
def supervise(
    command: Sequence[str],
    *,
    options: Sequence[str] = (),
    env: dict[str, str] | None = None,
    repo_bin: Path | None = None,
    shared: bool = False,
    **popen: object,
) -> Iterator[Run]:
    """Start the supervisor on ``command``; kills it if the test leaves it running.

    ``shared`` makes the temporary directory (socket, termination log) world-writable,
    for a supervisor that does not run as root.
    """
    with short_tmp() as tmp:
        if shared:
            tmp.chmod(0o1777)
        socket = tmp / "ctl" / "control.sock"
        termination_log = tmp / "termination-log"
        argv = [
            str(SUPERVISOR),
            "--termination-log",
            str(termination_log),
            "--repo-bin",
            str(repo_bin or tmp / "repo-bin"),
            *options,
            "--",
            *command,
        ]
        environment = clean_env() if env is None else env
        environment.setdefault("OVERSEER_CONTROL_SOCKET", str(socket))
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=environment,
            **popen,  # type: ignore[call-overload]
        )
        run = Run(proc, Path(environment["OVERSEER_CONTROL_SOCKET"]), termination_log)
        try:
            yield run
        finally:
            if proc.returncode is None:
                proc.kill()
                proc.wait()
            for start in run.frames(protocol.Start):
                with suppress(OSError):
                    os.killpg(start.pid, signal.SIGKILL)


def command(name: str, *args: str, env: dict[str, str] | None = None,
            timeout: float = 60.0) -> subprocess.CompletedProcess[bytes]:  # fmt: skip
    """Run one library command through its shim, as a job would."""
    return subprocess.run(
        [str(BIN / name), *args],
        capture_output=True,
        env=clean_env() if env is None else env,
        timeout=timeout,
        check=False,
    )


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
