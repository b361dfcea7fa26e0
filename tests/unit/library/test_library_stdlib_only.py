"""The library runs in a pod with no PyPI packages: it imports only the standard library."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[3]


def checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check", ROOT / "hack/check_stdlib_only.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_library_imports_only_the_standard_library() -> None:
    assert list(checker().imports_outside_stdlib(ROOT / "library-image/overseer_library")) == []


def test_a_third_party_or_operator_import_is_named(tmp_path: Path) -> None:
    package = tmp_path / "overseer_library"
    (package / "commands").mkdir(parents=True)
    (package / "__init__.py").write_text("import json\nfrom overseer_library import protocol\n")
    (package / "commands" / "x.py").write_text(
        "from . import y\nimport os.path, yaml\nfrom overseer.core import names\n"
    )
    found = list(checker().imports_outside_stdlib(package))
    assert [line.split(": ", 1)[1] for line in found] == ["yaml", "overseer.core"]
    assert checker().main(["check", str(package)]) == 1
