"""Every reStructuredText document of the project parses without a warning."""

from __future__ import annotations

import io
from pathlib import Path

import docutils.core
import pytest

REPO = Path(__file__).resolve().parents[2]
DOCUMENTS = sorted(
    p.relative_to(REPO)
    for p in [REPO / "README.rst", *REPO.glob("docs/*.rst"), *REPO.glob("*/README.rst")]
    if p.exists()
)


@pytest.mark.parametrize("document", DOCUMENTS, ids=str)
def test_document_parses_cleanly(document: Path) -> None:
    warnings = io.StringIO()
    docutils.core.publish_doctree(
        (REPO / document).read_text(),
        source_path=str(REPO / document),
        settings_overrides={"report_level": 2, "halt_level": 5, "warning_stream": warnings},
    )
    assert warnings.getvalue() == ""
