#!/usr/bin/env python3
"""List production modules longer than 400 lines in operator/, api/ and library-image/.

A module may be longer when a comment ``# long because <reason>`` sits in its header:
after its docstring and before its first statement (usually its first import). Exit
status 1 when any other is found. ``make lint`` runs it beside ``hack/long-functions.py``.
An optional argument names the tree to check (default: this repository).
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

LIMIT = 400
ROOTS = ("operator", "api", "library-image", "cli")
REASON = re.compile(r"^\s*# long because \S", re.MULTILINE)
"""A reason, not the bare words: something must follow them."""


def header(source: str) -> str:
    """The lines before the module's first statement that is not its docstring."""
    body = ast.parse(source).body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    end = body[0].lineno - 1 if body else len(source.splitlines())
    return "\n".join(source.splitlines()[:end])


def long_modules(root: Path) -> list[str]:
    found = []
    for path in sorted(p for r in ROOTS for p in (root / r).rglob("*.py")):
        source = path.read_text()
        length = len(source.splitlines())
        if length > LIMIT and not REASON.search(header(source)):
            found.append(f"{path.relative_to(root)}: {length} lines")
    return found


if __name__ == "__main__":
    tree = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1]
    report = long_modules(tree)
    if report:
        print(f"modules over {LIMIT} lines (split them, or say '# long because ...' on top):")
    print("\n".join(report) or f"no module over {LIMIT} lines")
    sys.exit(1 if report else 0)
