"""The supervisor keeps the job's stdout and stderr apart, byte-exact, live, in bounded memory."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pytest
from library_harness import PYTHON, pid_alive, supervise

from overseer_library import protocol

WRITE_BYTES = "import os, sys; os.write(int(sys.argv[1]), bytes.fromhex(sys.argv[2]))"


def test_stdout_and_stderr_come_back_apart_and_byte_exact() -> None:
    out = b"\x00binary\xff\xfe\x80 not utf-8\r\n\x00 and no final newline"
    err = b"\xc3\x28 invalid utf-8 on stderr \x00"
    script = f"{WRITE_BYTES}; os.write(2, bytes.fromhex({err.hex()!r}))"
    with supervise([PYTHON, "-c", script, "1", out.hex()]) as run:
        assert run.wait() == 0
    assert run.output("stdout") == out
    assert run.output("stderr") == err
    assert not run.frames(protocol.Unframed)


def test_frames_have_increasing_seqs_from_start_to_exit() -> None:
    with supervise(["sh", "-c", "echo one; echo two >&2; echo three"]) as run:
        assert run.wait() == 0
    frames = [r for r in run.records if not isinstance(r, protocol.Unframed)]
    assert [f.seq for f in frames] == list(range(1, len(frames) + 1))
    assert isinstance(frames[0], protocol.Start)
    assert frames[0].program == "sh"
    assert isinstance(frames[-1], protocol.Exit)
    assert run.output("stdout") == b"one\nthree\n"
    assert run.output("stderr") == b"two\n"


def test_partial_lines_and_output_appear_live_while_the_job_runs() -> None:
    script = "printf 'first, no newline'; sleep 3; printf ' second\\n'"
    with supervise(["sh", "-c", script]) as run:
        started = time.monotonic()
        run.wait_for_output("stdout", b"first, no newline", timeout=2.5)
        assert time.monotonic() - started < 2.5
        assert not run.frames(protocol.Exit)
        assert run.wait() == 0
    assert run.output("stdout") == b"first, no newline second\n"


@pytest.mark.timeout(300)
def test_20_mib_per_stream_stream_through_in_bounded_memory(tmp_path: Path) -> None:
    size = 20 * 1024 * 1024
    out_file, err_file = tmp_path / "out", tmp_path / "err"
    out_file.write_bytes(os.urandom(size))
    err_file.write_bytes(os.urandom(size // 2) * 2)
    # After streaming everything, the job reads the supervisor's peak RSS (VmHWM is reset
    # by exec, unlike wait4's ru_maxrss, which counts the fork of this test process).
    hwm = tmp_path / "hwm"
    script = 'cat "$1" & cat "$2" >&2; wait; grep VmHWM /proc/$PPID/status > "$3"'
    argv = ["sh", "-c", script, "sh", str(out_file), str(err_file), str(hwm)]
    with supervise(argv) as run:
        assert run.wait(timeout=240) == 0
    digest = hashlib.sha256
    assert digest(run.output("stdout")).digest() == digest(out_file.read_bytes()).digest()
    assert digest(run.output("stderr")).digest() == digest(err_file.read_bytes()).digest()
    frames = run.frames(protocol.Output)
    assert max(len(f.data) for f in frames) == protocol.MAX_OUT_CHUNK
    peak_mib = int(hwm.read_text().split()[1]) / 1024
    assert 1 < peak_mib < 40, f"the supervisor grew to {peak_mib:.0f} MiB"


@pytest.mark.parametrize(("script", "status"), [("exit 0", 0), ("exit 3", 3), ("exit 255", 255)])
def test_the_supervisor_exits_with_the_job_code(script: str, status: int) -> None:
    with supervise(["sh", "-c", script]) as run:
        assert run.wait() == status
    (exit_frame,) = run.frames(protocol.Exit)
    assert (exit_frame.code, exit_frame.signal, exit_frame.status) == (status, None, status)


@pytest.mark.parametrize(("signal_name", "number"), [("KILL", 9), ("TERM", 15), ("SEGV", 11)])
def test_a_job_killed_by_signal_n_makes_the_supervisor_exit_128_plus_n(
    signal_name: str, number: int
) -> None:
    with supervise(["sh", "-c", f"kill -{signal_name} $$"]) as run:
        assert run.wait() == 128 + number
    (exit_frame,) = run.frames(protocol.Exit)
    assert (exit_frame.code, exit_frame.signal) == (None, number)


def test_the_termination_log_summarises_the_outcome() -> None:
    with supervise(["sh", "-c", "echo hi; kill -TERM $$"]) as run:
        assert run.wait() == 143
    summary = protocol.decode_summary(run.summary or "")
    assert summary == protocol.Summary(None, 15, run.frames(protocol.Exit)[0].seq)
    assert json.loads(run.summary or "")["status"] == 143


def test_an_unwritable_termination_log_is_reported_not_fatal(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "dir"
    with supervise(["true"], options=["--termination-log", str(missing)]) as run:
        assert run.wait() == 0
    assert any("termination log" in log.message for log in run.frames(protocol.Log))


def test_a_missing_program_exits_127_with_a_reason_and_no_start() -> None:
    with supervise(["no-such-program-anywhere"]) as run:
        assert run.wait() == 127
    assert not run.frames(protocol.Start)
    (log,) = run.frames(protocol.Log)
    assert log.level == "error" and "no-such-program-anywhere" in log.message
    assert run.frames(protocol.Exit)[0].code == 127
    assert protocol.decode_summary(run.summary or "") is not None


def test_a_program_that_cannot_run_exits_126(tmp_path: Path) -> None:
    not_executable = tmp_path / "data.txt"
    not_executable.write_text("just text\n")
    not_executable.chmod(0o644)
    with supervise([str(not_executable)]) as run:
        assert run.wait() == 126
    assert "cannot run" in run.frames(protocol.Log)[0].message


def test_background_processes_holding_the_output_are_cut_off_after_the_drain_time(
    tmp_path: Path,
) -> None:
    pid_file = tmp_path / "pid"
    script = f"sleep 60 & echo $! > {pid_file}; echo main done"
    with supervise(["sh", "-c", script], options=["--drain-timeout", "0.5"]) as run:
        started = time.monotonic()
        assert run.wait() == 0
        assert time.monotonic() - started < 20
    assert run.output("stdout") == b"main done\n"
    assert any("still hold its output open" in log.message for log in run.frames(protocol.Log))
    background = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while pid_alive(background) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(background)


def test_output_written_by_children_after_the_main_process_exits_is_kept() -> None:
    script = "(sleep 0.3; echo late) & echo early"
    with supervise(["sh", "-c", script]) as run:
        assert run.wait() == 0
    assert run.output("stdout") == b"early\nlate\n"
