"""``python -m overseer.operator``: run the Overseer operator."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

import kopf

from overseer import errors
from overseer import settings as shared_settings
from overseer.core import git_source
from overseer.operator import (
    handlers,  # noqa: F401  (registers the handlers)
    kopf_fixes,
    lifecycle,
)
from overseer.operator.settings import Settings

DESCRIPTION = """\
Run the Overseer operator: sync OverseerRepositories from git into OverseerJobs,
run each OverseerExecution as a Kubernetes Job, and post its status events to its hooks.
Only the operator that holds the Lease of its namespaces acts (leader election; the
others stand by); every one serves /healthz and /metrics on OVERSEER_METRICS_PORT.

"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m overseer.operator",
        description=DESCRIPTION + shared_settings.help_text(Settings),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="log debug messages")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except errors.SettingsError as error:
        print(f"overseer-operator: {error}", file=sys.stderr)
        return 2
    kopf.configure(verbose=args.verbose)
    logging.getLogger("overseer").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    # One line per HTTP request drowns what the operator says about syncs.
    for noisy in ("httpx", "httpx2", "httpcore", "httpcore2", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    if settings.git_allow_file_urls:
        logging.getLogger("overseer").warning(
            "%s=true: repositories may read this host's folders through file:// URLs "
            "(tests and development only)",
            git_source.FILE_URLS_SETTING,
        )
    kopf_fixes.apply()  # kopf's start is quadratic in the objects without it
    try:
        return asyncio.run(lifecycle.run(settings))
    except errors.SettingsError as error:
        print(f"overseer-operator: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
