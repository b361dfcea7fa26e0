"""Fixtures for the library tests: the package on sys.path, a supervisor to run."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

LIBRARY_IMAGE = Path(__file__).resolve().parents[3] / "library-image"

# The package is installed editable in the project's venv; this keeps the tests working
# when the venv was built before the library joined it.
if str(LIBRARY_IMAGE) not in sys.path:
    sys.path.insert(0, str(LIBRARY_IMAGE))


@pytest.fixture
def as_root() -> None:
    """The test switches users, which needs root.

    CI runs as root (.ci/run), so there, and wherever ``CI`` is set, a test that cannot
    run fails instead of being skipped: a skip would stop checking without anyone
    noticing. A developer's run as another user skips it, saying why.
    """
    if os.geteuid() == 0:
        return
    why = f"switching users needs root; this run is uid {os.geteuid()}"
    if os.environ.get("CI"):
        pytest.fail(f"{why}, and CI must run these tests: run them as root")
    pytest.skip(why)
