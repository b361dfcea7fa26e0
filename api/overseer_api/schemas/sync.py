"""What ``POST /sync`` answers."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from overseer_api.schemas import base


class SyncRequested(base.Schema):
    repositories: list[str] = Field(description="The repositories asked to sync now.")
    requested_at: datetime = Field(description="When the request was made.")
