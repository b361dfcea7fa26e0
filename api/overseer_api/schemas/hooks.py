"""What ``POST /hooks/git/{repository}`` answers."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class HookReceipt(BaseModel):
    """An authenticated delivery, and whether it requested a sync."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    repository: str = Field(description="The OverseerRepository the hook is for.")
    namespace: str = Field(description="Its namespace.")
    provider: str = Field(description="github, gitea or gitlab, from the delivery's headers.")
    event: str = Field(description="The host's event name (push, ping, Push Hook...).")
    sync_requested: bool = Field(
        description="True when this delivery requested a sync: a push to the tracked ref."
    )
    delivery: str | None = Field(
        default=None, description="The host's delivery id (X-GitHub-Delivery...), if sent."
    )
    duplicate: bool = Field(
        default=False,
        description=(
            "True (with 200) for a delivery id already received: nothing is requested again."
        ),
    )
    ignored: str | None = Field(
        default=None,
        description="Why a push requested nothing: a ref the repository does not sync.",
    )
