"""Reading how a pods/exec ended, and the credentials it is opened with."""

from __future__ import annotations

import json
from pathlib import Path

import httpx2
from lightkube.config import client_adapter
from lightkube.config.models import User

from overseer import kube_exec


def test_success_is_exit_code_zero() -> None:
    assert kube_exec.parse_exec_status(b'{"metadata":{},"status":"Success"}') == (0, "")


def test_a_non_zero_exit_code_is_read_from_its_cause() -> None:
    status = {
        "status": "Failure",
        "message": "command terminated with non-zero exit code: exit status 3",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": "3"}]},
    }
    code, message = kube_exec.parse_exec_status(json.dumps(status).encode())
    assert (code, message) == (3, status["message"])


def test_a_command_that_could_not_run_has_no_exit_code() -> None:
    status = {"status": "Failure", "message": 'exec: "nope": executable file not found'}
    assert kube_exec.parse_exec_status(json.dumps(status).encode()) == (None, status["message"])
    assert kube_exec.parse_exec_status(b"")[0] is None
    assert kube_exec.parse_exec_status(b"not json") == (None, "not json")


async def test_the_service_account_token_file_is_read_for_each_exec(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("first\n")
    auth = client_adapter.user_auth(User(token="first", token_file=str(token)))
    assert await kube_exec.auth_headers(auth, "https://k/api") == {"Authorization": "Bearer first"}
    token.write_text("rotated\n")
    auth = client_adapter.user_auth(User(token="first", token_file=str(token)))
    assert await kube_exec.auth_headers(auth, "https://k/api") == {
        "Authorization": "Bearer rotated"
    }


async def test_client_certificates_add_no_header() -> None:
    assert await kube_exec.auth_headers(None, "https://k/api") == {}
    basic = httpx2.BasicAuth("u", "p")
    assert (await kube_exec.auth_headers(basic, "https://k/api"))["Authorization"].startswith(
        "Basic "
    )
