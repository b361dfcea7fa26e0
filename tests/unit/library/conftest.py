"""Fixtures for the library tests: the package on sys.path, a supervisor to run."""

from __future__ import annotations

import sys
from pathlib import Path

LIBRARY_IMAGE = Path(__file__).resolve().parents[3] / "library-image"

# The package is installed editable in the project's venv; this keeps the tests working
# when the venv was built before the library joined it.
if str(LIBRARY_IMAGE) not in sys.path:
    sys.path.insert(0, str(LIBRARY_IMAGE))
