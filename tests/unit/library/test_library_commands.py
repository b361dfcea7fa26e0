"""The library commands through their shims: help, misuse, retry, wait-for, param."""

from __future__ import annotations

import http.server
import json
import random
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from library_harness import BIN, PYTHON, clean_env, command

from overseer_library.commands import param, retry, wait_for

COMMANDS = ["overseer-supervisor", "event", "overseer-signal", "retry", "wait-for", "param"]


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_explains_itself(name: str) -> None:
    result = command(name, "--help")
    assert result.returncode == 0
    text = result.stdout.decode()
    assert text.startswith(f"usage: {name}")
    assert len(text.splitlines()) > 8


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["event"], b"the following arguments are required: STATUS"),
        (["event", "a", "b", "c"], b"unrecognized arguments"),
        (["overseer-signal"], b"the following arguments are required: SIGNAL"),
        (["retry", "--attempts", "0", "--", "true"], b"must be at least 1"),
        (["retry", "--delay", "-1", "--", "true"], b"must be a finite number >= 0"),
        (["retry"], b"give the command to run"),
        (["wait-for"], b"one of the arguments --url --tcp --file is required"),
        (["wait-for", "--tcp", "nohost"], b"not HOST:PORT"),
        (["wait-for", "--url", "ftp://x/"], b"not an http:// or https:// URL"),
        (["wait-for", "--file", "a", "--tcp", "b:1"], b"not allowed with argument"),
        (["param"], b"the following arguments are required: NAME"),
        (["param", ""], b"NAME must not be empty"),
    ],
)
def test_misuse_exits_2_with_a_message(args: list[str], message: bytes) -> None:
    result = command(*args)
    assert result.returncode == 2
    assert message in result.stderr


# -- retry ------------------------------------------------------------------------------------


def test_retry_runs_until_success_backing_off(tmp_path: Path) -> None:
    counter = tmp_path / "count"
    script = (
        f"n=$(cat {counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {counter}; [ $n -ge 3 ]"
    )
    started = time.monotonic()
    result = command(
        "retry", "--attempts", "5", "--delay", "0.2", "--backoff", "2", "--", "sh", "-c", script
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0
    assert counter.read_text() == "3\n"
    assert elapsed >= 0.2 + 0.4
    assert result.stderr.count(b"failed with status 1") == 2
    assert b"trying again in 0.4s" in result.stderr


def test_retry_gives_up_with_the_last_status(tmp_path: Path) -> None:
    counter = tmp_path / "count"
    script = f"echo x >> {counter}; exit 7"
    result = command("retry", "--attempts", "3", "--delay", "0", "--", "sh", "-c", script)
    assert result.returncode == 7
    assert counter.read_text() == "x\nx\nx\n"
    assert b"giving up after 3 attempts; last status 7" in result.stderr


def test_retry_reports_death_by_signal_as_128_plus_n() -> None:
    result = command("retry", "--attempts", "2", "--delay", "0", "sh", "-c", "kill -TERM $$")
    assert result.returncode == 143


def test_retry_does_not_retry_a_command_that_is_not_there() -> None:
    result = command("retry", "--attempts", "5", "--delay", "10", "--", "no-such-command-x")
    assert result.returncode == 127
    assert b"command not found: no-such-command-x" in result.stderr


def test_retry_passes_arguments_untouched() -> None:
    args = ["a b", "$(id)", "--attempts", "-x"]
    result = command("retry", "--", PYTHON, "-c", "import sys; print(sys.argv[1:])", *args)
    assert result.returncode == 0
    assert result.stdout.decode().strip() == repr(args)


def test_retry_delays_grow_by_the_factor_up_to_the_cap_and_jitter_stays_in_range() -> None:
    waits = retry.delays(1.0, 3.0, 20.0)
    assert [next(waits) for _ in range(5)] == [1.0, 3.0, 9.0, 20.0, 20.0]
    jittered = retry.delays(8.0, 1.0, 60.0, random.Random(5))
    values = [next(jittered) for _ in range(200)]
    assert all(4.0 <= v <= 8.0 for v in values)
    assert len(set(values)) > 100


# -- wait-for ---------------------------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    ready = threading.Event()

    def do_GET(self) -> None:
        if self.path == "/ok":
            self.send_response(204)
        elif self.path == "/later":
            self.send_response(200 if self.ready.is_set() else 503)
        elif self.path == "/moved":
            self.send_response(302)
            self.send_header("Location", "/missing")
        else:
            self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    _Handler.ready.clear()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_wait_for_url_succeeds_on_2xx_and_on_an_unfollowed_redirect(http_url: str) -> None:
    assert command("wait-for", "--url", f"{http_url}/ok", "--timeout", "5").returncode == 0
    assert command("wait-for", "--url", f"{http_url}/moved", "--timeout", "5").returncode == 0


def test_wait_for_url_times_out_on_errors_with_the_reason(http_url: str) -> None:
    started = time.monotonic()
    result = command("wait-for", "--url", f"{http_url}/nope", "--timeout", "1", "--interval", "0.2")
    assert result.returncode == 1
    assert time.monotonic() - started >= 1
    assert b"not ready after 1s" in result.stderr
    assert b"answered HTTP 404" in result.stderr


def test_wait_for_url_waits_until_the_server_is_ready(http_url: str) -> None:
    timer = threading.Timer(0.8, _Handler.ready.set)
    timer.start()
    started = time.monotonic()
    result = command(
        "wait-for", "--url", f"{http_url}/later", "--timeout", "20", "--interval", "0.1"
    )
    timer.join()
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started >= 0.8


def test_wait_for_tcp_succeeds_when_a_port_accepts_and_times_out_when_none_does() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert command("wait-for", "--tcp", f"127.0.0.1:{port}", "--timeout", "5").returncode == 0
    result = command(
        "wait-for", "--tcp", f"127.0.0.1:{port}", "--timeout", "0.5", "--interval", "0.1"
    )
    assert result.returncode == 1
    assert f"127.0.0.1:{port}".encode() in result.stderr


def test_wait_for_tcp_accepts_bracketed_ipv6() -> None:
    assert wait_for.parse_host_port("[::1]:6379") == ("::1", 6379)
    assert wait_for.parse_host_port("db.example:5432") == ("db.example", 5432)
    for bad in ("db", "db:", ":80", "db:99999", "db:http"):
        with pytest.raises(ValueError, match="not HOST:PORT"):
            wait_for.parse_host_port(bad)


def test_wait_for_file_waits_until_it_exists(tmp_path: Path) -> None:
    target = tmp_path / "done"
    timer = threading.Timer(0.5, target.touch)
    timer.start()
    result = command("wait-for", "--file", str(target), "--timeout", "20", "--interval", "0.1")
    timer.join()
    assert result.returncode == 0
    missing = command("wait-for", "--file", str(tmp_path / "never"), "--timeout", "0")
    assert missing.returncode == 1
    assert b"does not exist" in missing.stderr


# -- param ------------------------------------------------------------------------------------


def test_param_reads_the_environment_variable_with_the_normalised_name() -> None:
    env = clean_env(OVERSEER_PARAM_SOME_OPT="$(rm -rf /) a b\nline2")
    result = command("param", "some-opt", env=env)
    assert result.returncode == 0
    assert result.stdout == b"$(rm -rf /) a b\nline2\n"
    assert command("param", "-n", "some-opt", env=env).stdout == b"$(rm -rf /) a b\nline2"
    assert param.env_name("positional_var") == "OVERSEER_PARAM_POSITIONAL_VAR"
    assert param.env_name("a.b c") == "OVERSEER_PARAM_A_B_C"


def test_param_prefers_the_json_file_which_keeps_exact_names_and_types(tmp_path: Path) -> None:
    params = tmp_path / "params.json"
    params.write_text(json.dumps({"some-opt": "from file", "n": 3, "list": [1, "x"], "u": None}))
    env = clean_env(
        OVERSEER_PARAMS_FILE=str(params),
        OVERSEER_PARAM_SOME_OPT="from env",
        OVERSEER_PARAM_ONLY_ENV="env only",
    )
    assert command("param", "some-opt", env=env).stdout == b"from file\n"
    assert command("param", "n", env=env).stdout == b"3\n"
    assert command("param", "list", env=env).stdout == b'[1, "x"]\n'
    assert command("param", "only-env", env=env).stdout == b"env only\n"
    unset = command("param", "u", env=env)
    assert unset.returncode == 1


def test_param_falls_back_to_the_default_or_fails_clearly() -> None:
    env = clean_env()
    assert command("param", "missing", "--default", "fallback", env=env).stdout == b"fallback\n"
    assert command("param", "missing", "--default=-x", env=env).stdout == b"-x\n"
    result = command("param", "missing", env=env)
    assert result.returncode == 1
    assert result.stdout == b""
    assert b"parameter 'missing' is not set" in result.stderr
    assert b"OVERSEER_PARAM_MISSING" in result.stderr


def test_param_reports_an_unreadable_parameters_file(tmp_path: Path) -> None:
    broken = tmp_path / "params.json"
    broken.write_text("{not json")
    result = command("param", "x", env=clean_env(OVERSEER_PARAMS_FILE=str(broken)))
    assert result.returncode == 1
    assert b"cannot read the parameters file" in result.stderr
    listed = tmp_path / "list.json"
    listed.write_text("[1]")
    result = command("param", "x", env=clean_env(OVERSEER_PARAMS_FILE=str(listed)))
    assert result.returncode == 1
    assert b"does not hold a JSON object" in result.stderr


def test_param_passes_100_kib_values_through_exactly(tmp_path: Path) -> None:
    value = "".join(random.Random(2).choice("ab $;'\"\n\\") for _ in range(100 * 1024))
    params = tmp_path / "params.json"
    params.write_text(json.dumps({"big": value}))
    result = command("param", "-n", "big", env=clean_env(OVERSEER_PARAMS_FILE=str(params)))
    assert result.stdout == value.encode()


def test_the_shims_run_from_a_symlink_elsewhere(tmp_path: Path) -> None:
    link = tmp_path / "param"
    link.symlink_to(BIN / "param")
    env = clean_env(OVERSEER_PARAM_X="via link", PYTHONPATH="/nonexistent", PYTHONSAFEPATH="")
    result = subprocess.run([str(link), "x"], capture_output=True, env=env, check=False)
    assert result.stdout == b"via link\n"
