"""``python -m overseer.operator``: run the Overseer operator."""

from __future__ import annotations

import argparse
import logging
import sys

import kopf

from overseer import errors
from overseer.operator import handlers  # noqa: F401  (registers the handlers)
from overseer.operator.settings import Settings

DESCRIPTION = """\
Run the Overseer operator: sync OverseerRepositories from git into OverseerJobs,
run each OverseerExecution as a Kubernetes Job, and post its status events to its hooks.

Configuration comes from the environment:
  KUBECONFIG              kubeconfig to use (in-cluster credentials when unset)
  OVERSEER_NAMESPACES     namespaces to watch, comma separated (all when unset)
  OVERSEER_CACHE_DIR      where git mirrors are kept (default /var/cache/overseer)
  OVERSEER_GIT_TIMEOUT    longest a fetch may take (default 120s)
  OVERSEER_RETRY_MIN/MAX  backoff after temporary failures (default 5s, 5m)
  OVERSEER_LIBRARY_IMAGE  image job pods run in (default localhost/overseer/library:dev)
  OVERSEER_IMAGE_PULL_POLICY  pull policy of job pods' images (default IfNotPresent)
  OVERSEER_API_URL        the API's base URL in webhook payloads (default http://localhost:8000)
  OVERSEER_WEBHOOK_SECRET signing secret of webhook deliveries (nothing is sent without one)
  OVERSEER_WEBHOOK_ALLOW_PRIVATE, OVERSEER_WEBHOOK_ALLOWED_NETWORKS, OVERSEER_SERVICE_CIDR,
  OVERSEER_WEBHOOK_TIMEOUT  webhook URL policy and timeout (docs/webhooks.rst)
  OVERSEER_SCHEDULE_STARTING_DEADLINE  how late a missed schedule may still run
                          (default 1h; none: however late)
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m overseer.operator",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="log debug messages")
    parser.add_argument(
        "--liveness",
        metavar="URL",
        default=None,
        help="serve kopf's liveness probe, e.g. http://0.0.0.0:8080/healthz",
    )
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
    kopf.run(
        standalone=True,
        clusterwide=not settings.namespaces,
        namespaces=list(settings.namespaces),
        liveness_endpoint=args.liveness,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
