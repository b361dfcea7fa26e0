"""Check that the library image's /etc/passwd and /etc/group are what Overseer resolves
user and group names with (overseer.core.accounts); exit 1 naming the differences.

    python hack/check-accounts.py ROOTFS/etc/passwd ROOTFS/etc/group
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))
from overseer.core import accounts


def main(passwd: str, group: str) -> int:
    users = {
        f[0]: (int(f[2]), int(f[3]))
        for f in (line.split(":") for line in Path(passwd).read_text().splitlines() if line)
    }
    groups = {
        f[0]: int(f[2])
        for f in (line.split(":") for line in Path(group).read_text().splitlines() if line)
    }
    wrong = [
        f"{what}: image {dict(sorted(found.items()))}, table {dict(sorted(table.items()))}"
        for what, found, table in (
            ("users", users, dict(accounts.LIBRARY_USERS)),
            ("groups", groups, dict(accounts.LIBRARY_GROUPS)),
        )
        if found != table
    ]
    for line in wrong:
        print(f"overseer.core.accounts differs from the library image's {line}", file=sys.stderr)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
