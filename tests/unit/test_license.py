"""The license: AGPL-3.0-or-later, as the original Overseer, stated where a user looks."""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SPDX = "AGPL-3.0-or-later"


def test_the_package_metadata_names_the_agpl() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == SPDX
    assert project["license-files"] == ["LICENSE"]


def test_license_is_the_full_text_of_the_gnu_agpl_version_3() -> None:
    text = (ROOT / "LICENSE").read_text(encoding="ascii")
    assert text.startswith("                    GNU AFFERO GENERAL PUBLIC LICENSE\n")
    assert "                       Version 3, 19 November 2007\n" in text
    # every section of the terms, section 13 (network use) the one the AGPL adds
    for section in range(18):
        assert f"\n  {section}. " in text, section
    assert "13. Remote Network Interaction; Use with the GNU General Public License." in text
    assert "END OF TERMS AND CONDITIONS" in text
    # the FSF's text (as shipped by the SPDX license list and by ``lice``), word for word
    words = " ".join(text.split())
    assert hashlib.sha256(words.encode()).hexdigest() == AGPL3_WORDS_SHA256


def test_the_readme_names_the_license() -> None:
    readme = (ROOT / "README.rst").read_text()
    assert "GNU Affero General Public License" in readme
    assert SPDX in readme
    assert "``LICENSE``" in readme


AGPL3_WORDS_SHA256 = "0a7e77a9ebe3fa59cc00696f2180ffc7e0834b7445213b59eb4232c1a1b75746"
"""sha256 of the license's words joined by single spaces (line breaks do not count)."""
