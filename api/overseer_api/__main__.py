"""``python -m overseer_api``: serve the API; ``python -m overseer_api openapi``: print its OpenAPI.

``--help`` lists every setting (generated from :class:`overseer_api.settings.Settings`);
settings come from ``OVERSEER_API_*`` variables only. ``openapi`` needs no cluster.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import uvicorn

from overseer import archive_factory, archive_local, errors, kube, kube_resources
from overseer import settings as shared
from overseer_api import app, settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m overseer_api",
        description="Overseer's REST API. Without a command, serve it.",
        epilog=shared.help_text(settings.Settings),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "command",
        nargs="?",
        choices=["serve", "openapi"],
        default="serve",
        help="serve (the default), or openapi: print the OpenAPI document (no cluster needed)",
    )
    return parser


class _NoCluster:
    """Stands in for Kubernetes where none is needed (printing the OpenAPI document)."""

    async def read_secret(self, namespace: str, name: str) -> dict[str, bytes]:
        raise errors.KubeError("no cluster")

    async def create(self, body: Mapping[str, Any]) -> dict[str, Any] | None:
        raise errors.KubeError("no cluster")

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        raise errors.KubeError("no cluster")

    async def patch_merge(
        self, kind: str, namespace: str, name: str, patch: Mapping[str, Any]
    ) -> dict[str, Any]:
        raise errors.KubeError("no cluster")

    async def patch_json(
        self, kind: str, namespace: str, name: str, operations: Any
    ) -> dict[str, Any]:
        raise errors.KubeError("no cluster")

    def list(
        self, kind: str, namespace: str, labels: Mapping[str, str] | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        raise errors.KubeError("no cluster")

    def watch(self, kind: str, namespace: str) -> Any:
        raise errors.KubeError("no cluster")

    async def patch_status_unchanged(
        self, kind: str, namespace: str, name: str, version: str, status: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        raise errors.KubeError("no cluster")

    async def replace(self, body: dict[str, Any]) -> dict[str, Any] | None:
        raise errors.KubeError("no cluster")

    async def delete_unchanged(
        self, kind: str, namespace: str, name: str, resource_version: str
    ) -> bool:
        raise errors.KubeError("no cluster")

    async def review(self, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
        raise errors.KubeError("no cluster")


def openapi() -> dict[str, Any]:
    """The OpenAPI document, built without a cluster."""
    config = settings.Settings(auth="token", tokens_file=None)
    local = archive_local.LocalArchive(config.archive_dir)
    return app.create_app(config, _NoCluster(), local).openapi()


def serve(config: settings.Settings) -> None:
    async def run() -> None:
        client = kube.Kube.connect(
            config.kubeconfig, field_manager=kube_resources.API_FIELD_MANAGER
        )
        output = archive_factory.build(config)  # the operator's archive, read only
        try:
            api = app.create_app(config, client, output)
            server = uvicorn.Server(
                uvicorn.Config(
                    api,
                    host=config.host,
                    port=config.port,
                    log_level=config.log_level,
                    proxy_headers=True,
                    server_header=False,
                )
            )
            await server.serve()
        finally:
            await output.close()
            await client.close()

    asyncio.run(run())


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    if arguments.command == "openapi":
        json.dump(openapi(), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    try:
        config = settings.Settings.from_env()
    except errors.SettingsError as error:
        print(error.message, file=sys.stderr)
        return 2
    logging.basicConfig(
        level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        serve(config)
    except errors.SettingsError as error:
        print(error.message, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
