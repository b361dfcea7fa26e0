"""The web console's files: packaged with the API, and written so no data becomes markup.

The browser tests (``tests/e2e/test_console.py``) show hostile names and output render
as text; these checks keep the ways around that out of the source: no ``innerHTML`` or
its kin, no ``eval``, no inline script or style the Content-Security-Policy would refuse.
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FOLDER = REPO / "api" / "overseer_api" / "console"
SCRIPTS = sorted(FOLDER.glob("*.js"))
MARKUP_SINKS = re.compile(
    r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\s*\(|new Function"
    r"|createContextualFragment|DOMParser|srcdoc|javascript:"
)


def test_every_console_file_is_package_data_of_the_api() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["overseer_api"]
    files = [p.relative_to(FOLDER.parent).as_posix() for p in FOLDER.rglob("*") if p.is_file()]
    assert files
    unpackaged = [f for f in files if not any(fnmatch.fnmatch(f, p) for p in patterns)]
    assert unpackaged == []


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_no_script_turns_text_into_markup(script: Path) -> None:
    found = MARKUP_SINKS.findall(script.read_text())
    assert found == []


def test_the_page_has_no_inline_script_or_style() -> None:
    page = (FOLDER / "index.html").read_text()
    assert re.findall(r"<script(?![^>]*\bsrc=)", page) == []
    assert re.findall(r"<style|\bstyle=|\bon[a-z]+=", page) == []
    for link in re.findall(r'(?:src|href)="([^"#]+)"', page):
        assert (FOLDER / link).is_file(), link
