"""What the health routes answer."""

from __future__ import annotations

from typing import Literal

from overseer_api.schemas import base


class Health(base.Schema):
    status: Literal["ok", "ready"]
