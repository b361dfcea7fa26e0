"""Events and signals: the control socket, signal forwarding, and their order in the log."""

from __future__ import annotations

import os
import pwd
import signal
import socket
import time
from pathlib import Path

import pytest
from library_harness import clean_env, command, pid_alive, supervise

from overseer_library import protocol, settings


def _story(records: list[protocol.Record]) -> list[tuple[str, object]]:
    """Output and events in log order, adjacent output of one stream joined."""
    story: list[tuple[str, object]] = []
    for record in records:
        if isinstance(record, protocol.Output):
            last = story[-1] if story else ("", b"")
            if last[0] == record.stream and isinstance(last[1], bytes):
                story[-1] = (record.stream, last[1] + record.data)
            else:
                story.append((record.stream, record.data))
        elif isinstance(record, protocol.Event):
            story.append(("event", (record.status, record.data)))
    return story


def test_events_carry_their_data_in_order_with_the_output_around_them() -> None:
    script = """
        printf before
        event deploying '{"pct": 40}'
        printf after >&2
        event note 'plain words, not JSON'
        event count 42
        printf end
    """
    with supervise(["sh", "-c", script]) as run:
        assert run.wait() == 0
    assert _story(run.records) == [
        ("stdout", b"before"),
        ("event", ("deploying", {"pct": 40})),
        ("stderr", b"after"),
        ("event", ("note", "plain words, not JSON")),
        ("event", ("count", 42)),
        ("stdout", b"end"),
    ]


def test_an_event_comes_after_all_output_written_before_it_even_beyond_a_pipe_buffer() -> None:
    script = "head -c 300000 /dev/zero | tr '\\0' a; head -c 70000 /dev/zero >&2; event mid"
    with supervise(["sh", "-c", script]) as run:
        assert run.wait() == 0
    (event,) = run.frames(protocol.Event)
    before = [f for f in run.frames(protocol.Output) if f.seq < event.seq]
    assert sum(len(f.data) for f in before if f.stream == "stdout") == 300000
    assert sum(len(f.data) for f in before if f.stream == "stderr") == 70000


def test_event_refuses_lifecycle_statuses_and_bad_names_with_status_2() -> None:
    script = "event complete; echo rc=$?; event 'bad name'; echo rc=$?; event; echo rc=$?"
    with supervise(["sh", "-c", script]) as run:
        assert run.wait() == 0
    assert run.output("stdout") == b"rc=2\nrc=2\nrc=2\n"
    assert b"reserved for the execution's lifecycle" in run.output("stderr")
    assert b"invalid status 'bad name'" in run.output("stderr")
    assert not run.frames(protocol.Event)


def test_event_outside_a_supervisor_fails_clearly(tmp_path: Path) -> None:
    env = clean_env(OVERSEER_CONTROL_SOCKET=str(tmp_path / "none.sock"))
    result = command("event", "deploying", env=env)
    assert result.returncode == 1
    assert b"cannot reach the Overseer supervisor" in result.stderr


def test_the_supervisor_checks_requests_itself_and_survives_bad_clients() -> None:
    with supervise(["sh", "-c", "echo ready; sleep 2"]) as run:
        run.wait_for_output("stdout", b"ready")
        answers = []
        for request in (
            b"not json\n",
            b'{"op":"event","status":"fail","data":null}\n',
            b'{"op":"signal","signal":0}\n',
            b'{"op":"dance"}\n',
        ):
            with socket.socket(socket.AF_UNIX) as client:
                client.settimeout(10)
                client.connect(str(run.socket))
                client.sendall(request)
                answers.append(client.recv(4096))
        with socket.socket(socket.AF_UNIX) as silent:
            silent.connect(str(run.socket))  # connects and says nothing
            assert run.wait() == 0
    assert all(b'"ok":false' in answer for answer in answers)
    assert b"not JSON" in answers[0]
    assert b"reserved" in answers[1]
    assert b"unknown signal" in answers[2]
    assert not run.frames(protocol.Event)


TRAP_SCRIPT = """
record="$1"
trap 'echo TERM >> "$record"' TERM
trap 'echo HUP >> "$record"' HUP
trap 'echo USR1 >> "$record"; exit 7' USR1
echo ready
while :; do sleep 0.05 & wait $!; done
"""


def test_signals_sent_to_the_supervisor_reach_a_trap_in_the_job(tmp_path: Path) -> None:
    record = tmp_path / "record"
    with supervise(["bash", "-c", TRAP_SCRIPT, "job", str(record)]) as run:
        run.wait_for_output("stdout", b"ready")
        for name, signum in (("TERM", signal.SIGTERM), ("HUP", signal.SIGHUP)):
            os.kill(run.proc.pid, signum)
            deadline = time.monotonic() + 20
            while name not in (record.read_text() if record.exists() else ""):
                assert time.monotonic() < deadline, f"{name} did not reach the job"
                time.sleep(0.02)
        os.kill(run.proc.pid, signal.SIGUSR1)
        assert run.wait() == 7
    assert record.read_text() == "TERM\nHUP\nUSR1\n"
    forwarded = [(f.signal, f.source) for f in run.frames(protocol.Signal)]
    assert forwarded == [(15, "received"), (1, "received"), (10, "received")]


def test_overseer_signal_kill_kills_the_whole_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    script = f"trap '' TERM INT; sleep 120 & echo $! > {pid_file}; echo ready; wait"
    with supervise(["sh", "-c", script]) as run:
        run.wait_for_output("stdout", b"ready")
        background = int(pid_file.read_text())
        assert pid_alive(background)
        env = clean_env(OVERSEER_CONTROL_SOCKET=str(run.socket))
        result = command("overseer-signal", "KILL", env=env)
        assert result.returncode == 0, result.stderr
        assert run.wait() == 137
    assert [(f.signal, f.source) for f in run.frames(protocol.Signal)] == [(9, "requested")]
    assert run.frames(protocol.Exit)[0].signal == 9
    deadline = time.monotonic() + 5
    while pid_alive(background) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(background)


def test_overseer_signal_takes_names_and_numbers_and_refuses_unknown_ones(tmp_path: Path) -> None:
    record = tmp_path / "record"
    with supervise(["bash", "-c", TRAP_SCRIPT, "job", str(record)]) as run:
        run.wait_for_output("stdout", b"ready")
        env = clean_env(OVERSEER_CONTROL_SOCKET=str(run.socket))
        unknown = command("overseer-signal", "SIGFOO", env=env)
        assert unknown.returncode == 2
        assert b"unknown signal 'SIGFOO'" in unknown.stderr
        assert command("overseer-signal", "sighup", env=env).returncode == 0
        assert command("overseer-signal", str(int(signal.SIGUSR1)), env=env).returncode == 0
        assert run.wait() == 7
    assert record.read_text() == "HUP\nUSR1\n"
    assert [f.source for f in run.frames(protocol.Signal)] == ["requested", "requested"]


def test_the_control_socket_lives_in_a_private_directory_and_is_removed_at_the_end() -> None:
    script = 'stat -c "%a %U" "$(dirname "$OVERSEER_CONTROL_SOCKET")" "$OVERSEER_CONTROL_SOCKET"'
    with supervise(["sh", "-c", script]) as run:
        assert run.wait() == 0
        assert not run.socket.parent.exists()
    me = pwd.getpwuid(os.geteuid()).pw_name.encode()
    assert run.output("stdout") == b"700 " + me + b"\n600 " + me + b"\n"


@pytest.mark.parametrize("how", ["received", "requested"])
def test_a_job_ignoring_term_is_killed_after_kill_after(how: str) -> None:
    # Given a job that ignores TERM, supervised with a short killAfter
    script = "trap 'echo ignored TERM' TERM; echo ready; while :; do sleep 0.1; done"
    with supervise(["sh", "-c", script], options=["--kill-after", "0.5"]) as run:
        run.wait_for_output("stdout", b"ready")
        # When TERM reaches it (sent to the supervisor, or asked for with overseer-signal)
        started = time.monotonic()
        if how == "received":
            os.kill(run.proc.pid, signal.SIGTERM)
        else:
            env = clean_env(OVERSEER_CONTROL_SOCKET=str(run.socket))
            assert command("overseer-signal", "TERM", env=env).returncode == 0
        # Then, killAfter later, its group gets KILL: it ends by SIGKILL, saying why
        assert run.wait() == 137
        assert 0.5 <= time.monotonic() - started < 10
    assert [f.signal for f in run.frames(protocol.Signal)] == [15]
    assert run.frames(protocol.Exit)[0].signal == 9
    [warning] = [f for f in run.frames(protocol.Log) if "killAfter" in f.message]
    assert warning.level == "warning" and "0.5s" in warning.message


def test_kill_after_comes_from_the_environment_and_must_not_be_negative() -> None:
    parsed = settings.parse_settings(["--", "true"], {"OVERSEER_KILL_AFTER": "7.5"})
    assert parsed.kill_after == 7.5
    assert settings.parse_settings(["--", "true"], {}).kill_after == 30.0
    with pytest.raises(SystemExit):
        settings.parse_settings(["--kill-after", "-1", "--", "true"], {})
