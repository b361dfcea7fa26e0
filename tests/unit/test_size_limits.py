"""``make lint``'s size limits: functions over 60 lines and modules over 400 need a reason."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def check(script: str, tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "hack" / script), str(tree)],
        capture_output=True,
        text=True,
        check=False,
    )


def module(tree: Path, relative: str, text: str) -> Path:
    path = tree / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def function(name: str, lines: int, above: str = "") -> str:
    body = "".join(f"    x{i} = {i}\n" for i in range(lines - 2))
    return f"{above}def {name}() -> None:\n    '''Doc.'''\n{body}"


def test_a_function_over_60_lines_fails_until_a_reason_is_written_beside_it(
    tmp_path: Path,
) -> None:
    module(tmp_path, "operator/overseer/a.py", function("short", 60) + function("long", 61))
    found = check("long-functions.py", tmp_path)
    assert found.returncode == 1
    assert "operator/overseer/a.py:61: long (61 lines)" in found.stdout
    assert "short" not in found.stdout

    module(tmp_path, "operator/overseer/a.py", function("long", 61, "# long because\n"))
    assert check("long-functions.py", tmp_path).returncode == 1, "the words alone are no reason"

    reason = "# long because one table reads best whole\n"
    module(tmp_path, "api/overseer_api/b.py", function("long", 70, reason))
    module(tmp_path, "operator/overseer/a.py", function("long", 61, reason))
    passed = check("long-functions.py", tmp_path)
    assert passed.returncode == 0, passed.stdout
    assert "no function over 60 lines" in passed.stdout


def test_a_module_over_400_lines_fails_until_its_header_gives_a_reason(tmp_path: Path) -> None:
    filler = "".join(f"X{i} = {i}\n" for i in range(400))
    at_limit = '"""Doc."""\n' + "".join(filler.splitlines(keepends=True)[:399])
    module(tmp_path, "library-image/overseer_library/fine.py", at_limit)
    long = module(tmp_path, "operator/overseer/long.py", '"""Doc."""\n' + filler)
    found = check("long-modules.py", tmp_path)
    assert found.returncode == 1
    assert "operator/overseer/long.py: 401 lines" in found.stdout
    assert "fine.py" not in found.stdout

    # A reason further down, below the first statement, is not the module's header.
    long.write_text('"""Doc."""\n' + filler + "# long because it is\n")
    assert check("long-modules.py", tmp_path).returncode == 1

    long.write_text('"""Doc."""\n\n# long because one table reads best whole\n' + filler)
    passed = check("long-modules.py", tmp_path)
    assert passed.returncode == 0, passed.stdout
    assert "no module over 400 lines" in passed.stdout
