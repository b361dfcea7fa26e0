"""Check that the in-pod library (library-image/overseer_library) imports only the standard library.

The library image carries Python and nothing from PyPI, so any other import would fail
in a job's pod, not here. Run by ``make lint``; exits 1 and names each offending import.
Usage: ``python hack/check_stdlib_only.py [PACKAGE_DIR]``.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "library-image" / "overseer_library"


def imports_outside_stdlib(package: Path) -> Iterator[str]:
    """``file:line: module`` for each absolute import that is neither stdlib nor the package."""
    allowed = set(sys.stdlib_module_names) | {package.name}
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_bytes(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                if name.partition(".")[0] not in allowed:
                    yield f"{path}:{node.lineno}: {name}"


def main(argv: list[str]) -> int:
    package = Path(argv[1]) if len(argv) > 1 else PACKAGE
    found = list(imports_outside_stdlib(package))
    for line in found:
        print(f"{line} is not in the standard library", file=sys.stderr)
    if found:
        print(f"{package.name} must import only the standard library", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
