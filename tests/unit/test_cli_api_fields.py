"""The fields the CLI reads are the ones the API's schemas answer with.

The CLI imports nothing of the API (an import-linter contract), so nothing but this
test notices when a field it reads is renamed or dropped on the API's side.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from overseer_api.schemas import executions, jobs, repositories, sync


def fields(model: type[BaseModel]) -> set[str]:
    schema: dict[str, Any] = model.model_json_schema(by_alias=True)
    return set(schema["properties"])


@pytest.mark.parametrize(
    ("model", "read"),
    [
        # overseer executions: render.execution_row, paging.collect
        (executions.ExecutionSummary, {"id", "job", "phase", "trigger", "startTime"}),
        (executions.ExecutionSummary, {"completionTime", "exitCode", "signal"}),
        (executions.Trigger, {"type"}),
        (executions.ExecutionPage, {"items", "continue"}),
        # overseer deliveries: render.delivery_row, commands.replay
        (executions.ExecutionDetail, {"deliveries", "exitCode"}),
        (executions.Delivery, {"id", "status", "attempts", "replays", "url", "lastError"}),
        (executions.DeliveryReplayed, {"delivery"}),
        # overseer sync: syncing.sync, revisions.progress
        (sync.SyncRequested, {"repositories", "requestedAt"}),
        (repositories.RepositoryList, {"items"}),
        (repositories.Repository, {"name", "commit", "syncHandledAt", "lastSyncTime"}),
        (repositories.Repository, {"ready", "reason", "message", "jobCount", "errors"}),
        (repositories.DefinitionError, {"file", "line", "job", "message"}),
        # overseer repositories: render.repository_row
        (repositories.Repository, {"url", "ref", "shortCommit"}),
        # overseer jobs: core.job_row
        (jobs.JobPage, {"items", "continue"}),
    ],
)
def test_each_field_the_cli_reads_is_in_the_api_answer(
    model: type[BaseModel], read: set[str]
) -> None:
    assert read <= fields(model), read - fields(model)
