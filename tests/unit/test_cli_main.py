"""The CLI's command line: usage errors exit 2, help explains, an unreachable API exits 1."""

from __future__ import annotations

import pytest
from tests.support.gitserver import free_port

from overseer_cli import __main__ as cli

COMMANDS = [
    "jobs",
    "executions",
    "repositories",
    "show",
    "run",
    "status",
    "logs",
    "signal",
    "repeat",
    "deactivate",
    "activate",
    "sync",
    "deliveries",
    "deliveries list",
    "deliveries replay",
]


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_explains_itself_with_an_example_and_exit_codes(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main([*command.split(), "--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    assert f"example:\n  overseer {command}" in text
    assert "exit codes:" in text


def test_a_malformed_parameter_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["--url", "http://127.0.0.1:9", "run", "A job", "-p", "novalue"])
    assert exited.value.code == 2
    assert "NAME=VALUE" in capsys.readouterr().err


def test_a_missing_argument_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["status", "A job"])
    assert exited.value.code == 2


def test_an_unreachable_api_says_where_and_what_to_do_and_never_the_token(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code = cli.main(["--url", url, "--token", "s3cret-token", "jobs"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith(f"overseer: cannot reach the Overseer API at {url}")
    assert "port-forward" in err
    assert "s3cret-token" not in err


def test_the_url_and_token_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("OVERSEER_URL", url)
    monkeypatch.setenv("OVERSEER_TOKEN", "env-token")
    assert cli.main(["show", "x"]) == 1
    err = capsys.readouterr().err
    assert url in err
    assert "env-token" not in err


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["sync", "jobs", "--wait", "--revision", "HEAD"], "--revision is a commit id"),
        (["sync", "jobs", "--revision", "9fceb02"], "give --wait too"),
        (["sync", "--wait", "--timeout", "0"], "--timeout"),
        (["executions", "--limit", "0"], "--limit is at least 1"),
        (["executions", "--limit", "ten"], "invalid int value"),
        (["show", "A job", "-o", "table"], "invalid choice"),
        (["deliveries", "replay", "A job", "1.5", "d1", "--status", "Failed"], "not both"),
        (["deliveries", "replay", "A job", "1.5", "--status", "Lost"], "invalid choice"),
        (["deliveries", "A job", "1.5"], "invalid choice"),
    ],
)
def test_wrong_uses_of_the_new_commands_are_usage_errors_before_any_request(
    argv: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # An unreachable URL: a usage error must come first, or the exit would be 1
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(SystemExit) as exited:
        cli.main(["--url", url, *argv])
    assert exited.value.code == 2
    assert said in capsys.readouterr().err
