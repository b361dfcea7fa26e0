#!/usr/bin/env python3
"""List functions longer than 60 lines in operator/, api/ and library-image/.

A function may be longer when a comment ``# long because <reason>`` sits on its ``def``
line or the line above it (its first decorator's, when it has some). Exit status 1 when
any other is found. ``make lint`` runs it; ``hack/long-modules.py`` is its sibling for
modules. An optional argument names the tree to check (default: this repository).
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

LIMIT = 60
ROOTS = ("operator", "api", "library-image", "cli")
REASON = re.compile(r"# long because \S")
"""A reason, not the bare words: something must follow them."""


def long_functions(root: Path) -> list[str]:
    found = []
    for path in sorted(p for r in ROOTS for p in (root / r).rglob("*.py")):
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            length = (node.end_lineno or node.lineno) - first + 1
            nearby = lines[max(first - 2, 0) : node.lineno]
            if length > LIMIT and not any(REASON.search(line) for line in nearby):
                found.append(
                    f"{path.relative_to(root)}:{node.lineno}: {node.name} ({length} lines)"
                )
    return found


if __name__ == "__main__":
    tree = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1]
    report = long_functions(tree)
    if report:
        print(f"functions over {LIMIT} lines (split them, or say '# long because ...'):")
    print("\n".join(report) or f"no function over {LIMIT} lines")
    sys.exit(1 if report else 0)
