"""``GET /metrics``: Prometheus text, open like the health routes (no secrets in it)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from overseer_api import deps

router = APIRouter(tags=["health"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text."}},
)
async def metrics(state: deps.StateDep) -> Response:
    """Requests by route and status, latency histograms, cache sizes, executions by phase."""
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
