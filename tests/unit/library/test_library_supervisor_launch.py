"""What the job gets: PATH, argv, script mode, identity and environment."""

from __future__ import annotations

import json
from pathlib import Path

from library_harness import BIN, PYTHON, clean_env, supervise

from overseer_library import launch, protocol

ARGV_JSON = "import json, sys; sys.stdout.write(json.dumps(sys.argv[1:]))"
TRICKY = [
    "a b",
    ";id",
    "$(id)",
    "`id`",
    "--flag",
    "-",
    "line one\nline two\n",
    "",
    "*",
    "'\"\\",
    "\u00e9t\u00e9",
    "x" * (100 * 1024),
]


def _executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o755)
    return path


def test_parameters_arrive_exactly_in_argv() -> None:
    with supervise([PYTHON, "-c", ARGV_JSON, *TRICKY]) as run:
        assert run.wait() == 0
    assert json.loads(run.output("stdout")) == TRICKY


def test_path_is_repo_bin_then_library_then_image(tmp_path: Path) -> None:
    repo_bin = tmp_path / "repo-bin"
    image_dir = tmp_path / "image-bin"
    repo_bin.mkdir()
    image_dir.mkdir()
    # the same names in several places: the first in PATH wins
    _executable(repo_bin / "param", "#!/bin/sh\necho repo param\n")
    _executable(image_dir / "event", "#!/bin/sh\necho image event\n")
    _executable(image_dir / "only-in-image", "#!/bin/sh\necho image tool\n")
    env = clean_env(PATH=f"{image_dir}:/usr/bin:/bin:{BIN}")
    script = 'echo "$PATH"; param; command -v event; only-in-image'
    with supervise(["sh", "-c", script], env=env, repo_bin=repo_bin) as run:
        assert run.wait() == 0
    lines = run.output("stdout").decode().splitlines()
    # the library's folder is not repeated where the image's PATH had it
    assert lines[0] == f"{repo_bin}:{BIN}:{image_dir}:/usr/bin:/bin"
    assert lines[1:] == ["repo param", str(BIN / "event"), "image tool"]


def test_the_repo_bin_comes_from_the_environment_too(tmp_path: Path) -> None:
    repo_bin = tmp_path / "from-env"
    repo_bin.mkdir()
    _executable(repo_bin / "my_command", '#!/bin/sh\nprintf "%s|" "$@"\n')
    env = clean_env(OVERSEER_REPO_BIN=str(repo_bin))
    with supervise(["sh", "-c", 'exec my_command "$@"', "sh", "a b", "$(id)"], env=env) as run:
        # supervise() passes --repo-bin explicitly; the option wins over the variable
        assert run.wait() == 127
    run_env = clean_env(OVERSEER_REPO_BIN=str(repo_bin))
    with supervise(["my_command", "a b", "$(id)"], env=run_env, repo_bin=repo_bin) as run:
        assert run.wait() == 0
    assert run.output("stdout") == b"a b|$(id)|"


def test_a_script_without_shebang_runs_with_sh_and_gets_parameters_as_arguments() -> None:
    script = 'printf "%s\\n" "$0"; stat -c %a "$0"; echo "${JOB_SCRIPT-unset}"; printf "%s|" "$@"'
    env = clean_env(JOB_SCRIPT=script)
    params = ["a b", ";id", "$(id)", "--flag", "two\nlines"]
    with supervise(params, options=["--script-env", "JOB_SCRIPT"], env=env) as run:
        assert run.wait() == 0
        script_path = run.socket.parent / "job-script"
        assert not script_path.exists()  # removed at the end
    lines = run.output("stdout").split(b"\n", 3)
    assert lines[0] == str(script_path).encode()
    assert lines[1] == b"700"
    assert lines[2] == b"unset"  # the script's text is not left in its environment
    assert lines[3] == b"a b|;id|$(id)|--flag|two\nlines|"
    assert run.frames(protocol.Start)[0].program == "/bin/sh"


def test_a_script_with_a_shebang_runs_with_its_interpreter() -> None:
    env = clean_env(JOB_SCRIPT=f"#!{PYTHON}\n{ARGV_JSON}\n")
    with supervise(TRICKY, options=["--script-env", "JOB_SCRIPT"], env=env) as run:
        assert run.wait() == 0
    assert json.loads(run.output("stdout")) == TRICKY


def test_a_missing_script_variable_is_a_usage_error() -> None:
    with supervise([], options=["--script-env", "NOT_THERE"]) as run:
        assert run.wait() == 2
    assert b"NOT_THERE is not set" in run.stderr


def test_no_command_is_a_usage_error() -> None:
    with supervise([]) as run:
        assert run.wait() == 2
    assert b"give the job's program" in run.stderr


def test_a_shared_directory_is_refused_for_the_control_socket(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    env = clean_env(OVERSEER_CONTROL_SOCKET=str(shared / "control.sock"))
    with supervise(["true"], env=env) as run:
        assert run.wait() == 125
    assert "not a private directory" in run.frames(protocol.Log)[0].message
    assert shared.stat().st_mode & 0o7777 == 0o1777  # left as it was
    assert not run.frames(protocol.Start)


def test_build_path_orders_and_deduplicates() -> None:
    assert launch.build_path("/r", "/l", "/usr/bin:/l:/bin::/r") == "/r:/l:/usr/bin:/bin"
    assert launch.build_path("/r", "/l", None) == "/r:/l:" + launch.DEFAULT_IMAGE_PATH
