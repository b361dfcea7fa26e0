"""Schemathesis over /openapi.json: no 5xx, and no answer that breaks the documented schema.

The app runs in process (ASGI) on a typed stand-in of Kube holding a few jobs and
executions, with the caches filled as a first LIST would; requests carry an admin
token (every route reachable) and bounded examples keep the run short.

The client is the one fake (``tests.support.fake_kube``, planned as ``api.WatchFeed``).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import hypothesis
import schemathesis
from schemathesis import checks

from overseer import archive_local
from overseer.core import execution_resource
from overseer.crd import execution as execution_
from overseer_api import app as app_
from overseer_api import cache, settings
from tests.support import api

TOKEN = "schemathesis-admin-token"
DIRECTORY = Path(tempfile.mkdtemp(prefix="overseer-schemathesis-"))


def _app() -> Any:
    feed = api.WatchFeed()
    job = api.job_body(
        {
            "name": "A job",
            "cmdspec": "echo positional_var --some-opt some_opt",
            "parameters": {"positional_var": {"default": "a"}, "secret": {"secret": True}},
        }
    )
    other = api.job_body({"name": "Off", "command": "true"}, active=False)
    execution = execution_resource.build_execution(
        job, "1489895624.840211", trigger=execution_.Trigger(type="api")
    )
    execution["metadata"]["resourceVersion"] = "7"
    tokens = api.write_tokens(DIRECTORY / "tokens.json", {"admin": (TOKEN, ["admin"])})
    app = app_.create_app(
        settings.Settings(tokens_file=tokens),
        feed,
        archive_local.LocalArchive(DIRECTORY / "archive"),
    )
    store: cache.Cache = app.state.overseer.cache
    store.apply(cache.JOB, "default", "LIST", {"items": [job, other]})
    store.apply(cache.EXECUTION, "default", "LIST", {"items": [execution]})
    feed.add("OverseerRepository", {"metadata": {"name": "jobs", "namespace": "default"}})
    return app


schema = schemathesis.openapi.from_asgi("/openapi.json", _app())


@schema.parametrize()
@hypothesis.settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
    derandomize=True,
)
def test_no_server_error_and_every_answer_fits_the_schema(case: schemathesis.Case[Any]) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Bearer {TOKEN}"},
        checks=[
            checks.not_a_server_error,
            checks.status_code_conformance,
            checks.content_type_conformance,
            checks.response_schema_conformance,
            checks.response_headers_conformance,
        ],
    )
