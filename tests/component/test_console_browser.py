"""The console in a real browser (Debian's Chromium), against the real API app served by
uvicorn on loopback; the caches are fed by the one fake client, the output read from a
real archive directory written with the operator's writer.

What no cluster is needed for: hostile names, descriptions, parameters and output shown
as text; names with spaces, unicode and slashes routed whole; the token asked for, kept
in sessionStorage only, and asked again with the API's own 401 and 403 details; the
API's 422 field errors shown beside the form; the repositories, and "Sync now" followed
until the stand-in's status says the sync was handled. ``tests/e2e/test_console.py`` runs
jobs and syncs real git. And the API's reference at ``/docs`` renders with no other origin
reachable.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from playwright.sync_api import BrowserContext, Route, expect

from overseer import archive_local
from overseer.core import execution_resource, repository_sync
from overseer.core import idempotency as idempotency_
from overseer.crd import execution as execution_
from overseer.crd import repository as repository_
from overseer_api import app as app_
from overseer_api import settings
from overseer_library import protocol
from tests.support import api, browser
from tests.support.gitserver import free_port

READER, ADMIN = "console-reader-0123456789", "console-admin-0123456789"
HOSTILE = "<img src=x onerror=alert(1)>"
HOSTILE_JOB = f"{HOSTILE} job"
SLASHED_JOB = "Sauvegarde é/nuit"
EID = "1795938121.109918"
STDOUT = f"$(id); rm -rf /\n{HOSTILE}\n<script>alert(2)</script>\ttab é\n".encode()
STDERR = b"<b>warning</b> on stderr\n"
COMMIT, NEW_COMMIT = "0123456789abcdef" * 2 + "01234567", "fedcba9876543210" * 2 + "fedcba98"
SYNCED = datetime(2026, 12, 6, 20, 0, tzinfo=UTC)


def jobs() -> list[dict[str, Any]]:
    hostile = api.job_body(
        {
            "name": HOSTILE_JOB,
            "description": f"<b>not bold</b> {HOSTILE}",
            "command": "echo hi",
            "parameters": {
                "what": {"description": HOSTILE, "allowed": ["a", "<s>b</s>"]},
                "note": {"default": HOSTILE},
            },
        }
    )
    slashed = api.job_body({"name": SLASHED_JOB, "command": "true", "schedule": "0 3 * * *"})
    return [hostile, slashed]


def ended_execution(job: dict[str, Any]) -> dict[str, Any]:
    body = execution_resource.build_execution(
        job, EID, trigger=execution_.Trigger(type="api"), parameters={"what": "<s>b</s>"}
    )
    body["metadata"]["resourceVersion"] = "7"
    body["status"] = {
        "phase": "Complete",
        "exitCode": 0,
        "startTime": "2026-12-06T04:00:00Z",
        "completionTime": "2026-12-06T04:00:03Z",
        "archive": {"state": "Complete"},
        "events": [{"status": "Complete", "time": "2026-12-06T04:00:03Z", "data": HOSTILE}],
    }
    return body


def archive_output(store: archive_local.LocalArchive, body: dict[str, Any]) -> None:
    writer = store.open_writer(body["metadata"]["namespace"], body["metadata"]["name"])
    writer.begin("pod-a")
    writer.append(protocol.Output(1, "stdout", STDOUT))
    writer.append(protocol.Output(2, "stderr", STDERR))
    writer.commit(2, complete=True)
    writer.close()


def repository(
    name: str,
    commit: str,
    errors: list[repository_.DefinitionError],
    handled_request: str | None = None,
    previous: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An OverseerRepository with the status the operator's sync writes."""
    status, _ = repository_sync.build_status(
        previous=previous or {},
        generation=1,
        commit=commit,
        job_count=2,
        errors=errors,
        fetch_error=None,
        now=SYNCED if previous is None else datetime.now(UTC),
        handled_request=handled_request,
    )
    return {
        "apiVersion": "overseer.dev/v1alpha1",
        "kind": repository_.KIND.kind,
        "metadata": {"name": name, "namespace": "default", "generation": 1},
        "spec": {"url": f"https://git.example/org/{name}.git", "ref": "main"},
        "status": status,
    }


HOSTILE_ERROR = repository_.DefinitionError(
    file="jobs/bad.yaml", job=HOSTILE_JOB, field="command", line=3, message=HOSTILE
)


@pytest.fixture
def feed() -> api.WatchFeed:
    """The stand-in for Kubernetes: what the API's cache watches, and what it wrote."""
    return api.WatchFeed()


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """The server's event loop, in a thread: the tests push watch events into it."""
    found = asyncio.new_event_loop()
    thread = threading.Thread(target=found.run_forever, name="console-api", daemon=True)
    thread.start()
    try:
        yield found
    finally:
        found.call_soon_threadsafe(found.stop)
        thread.join(30)
        found.close()


@pytest.fixture
def served(tmp_path: Path, feed: api.WatchFeed, loop: asyncio.AbstractEventLoop) -> Iterator[str]:
    """The API app on a loopback port, served by uvicorn in a thread: its base URL."""
    feed.add("OverseerRepository", repository(api.OWNER.name, COMMIT, [HOSTILE_ERROR]))
    feed.add("OverseerRepository", repository("tools", COMMIT, []))
    hostile, slashed = jobs()
    execution = ended_execution(hostile)
    other = api.job_body({"name": "Elsewhere", "command": "true"}, namespace="team-b")
    for body in (hostile, slashed, other):
        feed.add("OverseerJob", body)
    feed.add("OverseerExecution", execution)
    store = archive_local.LocalArchive(tmp_path / "archive")
    archive_output(store, execution)
    tokens = api.write_tokens(
        tmp_path / "tokens.json", {"ci": (READER, ["read"]), "boss": (ADMIN, ["admin"])}
    )
    config = settings.Settings(namespaces=("team-b",), tokens_file=tokens)
    app = app_.create_app(config, feed, store)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.run_coroutine_threadsafe(server.serve(), loop)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the API was not ready in 30 s"
            time.sleep(0.1)
        yield url
    finally:
        server.should_exit = True
        serving.result(30)


@pytest.fixture
def context(tmp_path: Path) -> Iterator[BrowserContext]:
    with browser.chromium(tmp_path / "profile") as found:
        yield found


def test_the_api_reference_at_docs_renders_with_no_other_origin_reachable(
    served: str, context: BrowserContext
) -> None:
    # Given a browser that reaches this API and nothing else (a cluster without internet)
    page = context.new_page()
    elsewhere: list[str] = []
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    def this_origin_only(route: Route) -> None:
        if route.request.url.startswith(f"{served}/"):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", this_origin_only)
    # When it opens /docs
    page.goto(f"{served}/docs")
    # Then Swagger UI renders the API's operations, from files this API served
    expect(page.locator('.opblock-summary-path[data-path="/jobs/{name}"]').first).to_be_visible(
        timeout=browser.TIMEOUT_MS
    )
    expect(page.locator(".opblock")).not_to_have_count(0)
    assert elsewhere == [], elsewhere
    assert errors == [], errors


def test_a_wrong_token_is_refused_with_the_api_s_detail_and_never_kept_in_the_url(
    served: str, context: BrowserContext
) -> None:
    watched = browser.Watched.open(context)
    page = watched.page
    # Given the console, opened without a token: it asks for one
    page.goto(f"{served}/console/")
    expect(page.get_by_label("Bearer token")).to_be_visible()
    # When a wrong token is given, the API's 401 detail is shown and the token asked again
    watched.sign_in("not-a-token")
    expect(page.locator("#signin-problem")).to_contain_text(
        "401 Unauthenticated: the bearer token is not valid"
    )
    expect(page.get_by_label("Bearer token")).to_have_value("")
    # Then with a good one, the jobs are listed; the token is in sessionStorage only
    watched.sign_in(READER)
    expect(page.locator("#jobs tbody tr")).to_have_count(2)
    assert page.evaluate("sessionStorage.getItem('overseer.console.token')") == READER
    assert page.evaluate("localStorage.length") == 0
    assert READER not in page.url
    watched.assert_clean()


def test_hostile_names_parameters_and_output_render_as_text(
    served: str, context: BrowserContext
) -> None:
    watched = browser.Watched.open(context)
    page = watched.page
    page.goto(f"{served}/console/")
    watched.sign_in(READER)
    # The list shows the hostile name and description as text, and filters by name
    link = page.get_by_role("link", name=HOSTILE_JOB)
    expect(link).to_have_text(HOSTILE_JOB)
    expect(page.locator("#jobs")).to_contain_text(f"<b>not bold</b> {HOSTILE}")
    page.get_by_label("Filter jobs by name").fill("é/n")
    expect(page.locator("#jobs tbody tr")).to_have_count(1)
    expect(page.locator("#jobs tbody")).to_contain_text("0 3 * * *")
    page.get_by_label("Filter jobs by name").fill("")
    expect(page.locator("#jobs tbody tr")).to_have_count(2)
    # The job's page: its name URL-encoded whole in the hash, its parameters as text
    link.click()
    expect(page.locator("#job-title")).to_have_text(HOSTILE_JOB)
    assert page.url.endswith("#/jobs/%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E%20job")
    expect(page.locator("#run-form")).to_contain_text(HOSTILE)
    expect(page.get_by_label("what")).to_contain_text("<s>b</s>")
    expect(page.get_by_label("note")).to_have_attribute("placeholder", f"default: {HOSTILE}")
    # Its execution: stdout byte for byte, as text, stderr apart
    page.get_by_role("link", name=EID).click()
    expect(page.locator("#output-stdout")).to_have_text(STDOUT.decode())
    expect(page.locator("#output-stderr")).to_have_text(STDERR.decode())
    assert page.locator("#output-stdout").text_content() == STDOUT.decode()
    expect(page.locator("#exit-code")).to_have_text("0")
    expect(page.locator(".badge.phase-Complete").first).to_be_visible()
    expect(page.locator("#events")).to_contain_text(HOSTILE)
    expect(page.locator("#parameters")).to_contain_text("<s>b</s>")
    # Download saves the whole stream, byte for byte (fetched with the token, not a URL)
    with page.expect_download() as download:
        page.locator(".pane").first.get_by_role("button", name="Download").click()
    assert Path(download.value.path()).read_bytes() == STDOUT
    assert download.value.suggested_filename == f"_img_src_x_onerror_alert_1_job-{EID}.stdout"
    # Nothing became markup: no image, no script ran, nothing for the CSP to refuse
    assert page.locator("main img, main script, main b, main s").count() == 0
    watched.assert_clean()


def test_a_name_with_a_slash_routes_whole_and_a_read_token_cannot_deactivate(
    served: str, context: BrowserContext
) -> None:
    watched = browser.Watched.open(context)
    page = watched.page
    page.goto(f"{served}/console/#/jobs/{re.sub('/', '%2F', 'Sauvegarde%20%C3%A9/nuit')}")
    watched.sign_in(READER)
    expect(page.locator("#job-title")).to_have_text(SLASHED_JOB)
    # A read token may not deactivate: the API's 403 detail is shown, the token asked again
    page.get_by_role("button", name="Deactivate").click()
    expect(page.locator("#signin-problem")).to_contain_text("lacks the 'admin' scope")
    expect(page.locator("main .problem")).to_contain_text("403")
    watched.sign_in(ADMIN)
    expect(page.locator("main .problem")).to_have_count(0)  # the view, shown again
    page.get_by_role("button", name="Deactivate").click()
    expect(page.locator(".activation button")).to_have_text("Activate")
    expect(page.get_by_role("button", name="Run")).to_be_disabled()
    watched.assert_clean()


def test_the_api_s_field_errors_are_shown_beside_the_form(
    served: str, context: BrowserContext
) -> None:
    watched = browser.Watched.open(context)
    page = watched.page
    page.goto(f"{served}/console/#/executions")
    watched.sign_in(ADMIN)
    expect(page.locator("main table tbody tr")).to_have_count(1)
    page.get_by_role("link", name=HOSTILE_JOB).click()
    expect(page.get_by_label("what")).to_be_visible()
    page.evaluate(
        "document.getElementById('parameter-what').append(new Option('c', 'c', true, true))"
    )
    page.get_by_role("button", name="Run").click()
    problem = page.locator("#run-form .problem")
    expect(problem).to_contain_text("422")
    expect(problem.locator("li")).to_contain_text("what")
    watched.assert_clean()


def test_another_namespace_is_reached_through_the_namespace_field(
    served: str, context: BrowserContext
) -> None:
    watched = browser.Watched.open(context)
    page = watched.page
    page.goto(f"{served}/console/")
    watched.sign_in(READER)
    expect(page.locator("#jobs tbody tr")).to_have_count(2)
    # The namespace field switches to /namespaces/team-b/..., in the address too
    page.get_by_label("Namespace").fill("team-b")
    page.get_by_label("Namespace").press("Enter")
    expect(page.locator("#jobs tbody tr")).to_have_count(1)
    assert page.url.endswith("#/namespaces/team-b/jobs")
    page.get_by_role("link", name="Elsewhere").click()
    expect(page.locator("#job-title")).to_have_text("Elsewhere")
    assert page.url.endswith("#/namespaces/team-b/jobs/Elsewhere")
    # A namespace the API does not serve: its 404 detail, which names those it serves
    page.get_by_label("Namespace").fill("nowhere")
    page.get_by_label("Namespace").press("Enter")
    expect(page.locator("main .problem")).to_contain_text("404")
    expect(page.locator("main .problem")).to_contain_text("'nowhere' is not served")
    watched.assert_clean()


def test_repositories_are_listed_as_text_and_sync_now_is_followed_to_its_commit(
    served: str, context: BrowserContext, feed: api.WatchFeed, loop: asyncio.AbstractEventLoop
) -> None:
    watched = browser.Watched.open(context)
    page = watched.page
    page.goto(f"{served}/console/#/jobs/{HOSTILE_JOB}")
    watched.sign_in(ADMIN)
    # From a job, its source repository: its errors, the hostile message as text
    page.locator("#job-repository").click()
    assert page.url.endswith(f"#/repositories/{api.OWNER.name}")
    broken = page.locator(f'tr[data-repository="{api.OWNER.name}"]')
    expect(broken.locator(".badge.phase-Failed")).to_have_text("not ready")
    expect(broken.locator(".why")).to_contain_text("InvalidDefinitions: 1 error(s) in jobs/")
    errors = page.locator(".repository-errors li")
    expect(errors).to_have_text(f"jobs/bad.yaml:3 job {HOSTILE_JOB} command: {HOSTILE}")
    # The list, from the nav: name, URL, ref, short commit, Ready, jobs, last sync
    page.locator("#nav-repositories").click()
    tools = page.locator('tr[data-repository="tools"]')
    expect(tools).to_contain_text("https://git.example/org/tools.git")
    expect(tools.locator("td").nth(2)).to_have_text("main")
    expect(tools.locator(".commit")).to_have_text(COMMIT[:12])
    expect(tools.locator(".badge.phase-Complete")).to_have_text("ready")
    expect(tools.locator(".job-count")).to_have_text("2")
    expect(tools).to_contain_text("2026-12-06 20:00:00 UTC")
    expect(page.locator("#repositories tbody tr")).to_have_count(3)  # two, and one's errors
    # Sync now: the POST carries an Idempotency-Key, the stand-in is asked for a sync
    with page.expect_request(lambda r: r.method == "POST") as sent:
        tools.get_by_role("button", name="Sync now").click()
    key = sent.value.headers["idempotency-key"]
    assert sent.value.url.endswith("/sync?repository=tools")
    expect(tools.locator(".sync-status")).to_have_text("sync requested…")
    claims = {b["metadata"]["name"] for b in feed.created}
    assert idempotency_.claim_name("default", "token:boss", key) in claims
    # The stand-in's status changes (a sync handled the request): the row shows its commit
    handle_sync(feed, loop, "tools", NEW_COMMIT, [])
    expect(tools.locator(".commit")).to_have_text(NEW_COMMIT[:12])
    expect(tools.locator(".sync-status")).to_have_text(f"synced {NEW_COMMIT[:12]}")
    assert page.locator("main img, main script").count() == 0
    watched.assert_clean()


def handle_sync(
    feed: api.WatchFeed,
    loop: asyncio.AbstractEventLoop,
    name: str,
    commit: str,
    errors: list[repository_.DefinitionError],
) -> None:
    """What the operator does on a requested sync: echo the request in a new status."""
    asked = [p for kind, n, p in feed.patches if (kind, n) == ("OverseerRepository", name)]
    annotation = asked[-1]["metadata"]["annotations"]["overseer.dev/requested-sync"]
    previous = repository(name, COMMIT, errors)["status"]
    synced = repository(name, commit, errors, handled_request=annotation, previous=previous)
    push = feed.push("OverseerRepository", "MODIFIED", synced)
    asyncio.run_coroutine_threadsafe(push, loop).result(10)


def test_a_requested_sync_that_still_finds_errors_says_it_failed_and_why(
    served: str, context: BrowserContext, feed: api.WatchFeed, loop: asyncio.AbstractEventLoop
) -> None:
    watched = browser.Watched.open(context)
    page = watched.page
    page.goto(f"{served}/console/#/repositories/{api.OWNER.name}")
    watched.sign_in(ADMIN)
    row = page.locator(f'tr[data-repository="{api.OWNER.name}"]')
    row.get_by_role("button", name="Sync now").click()
    expect(row.locator(".sync-status")).to_have_text("sync requested…")
    handle_sync(feed, loop, api.OWNER.name, NEW_COMMIT, [HOSTILE_ERROR])
    expect(row.locator(".sync-status")).to_have_text("sync failed")
    expect(row.locator(".commit")).to_have_text(NEW_COMMIT[:12])
    expect(row.locator(".badge.phase-Failed")).to_have_text("not ready")
    expect(row.locator(".why")).to_contain_text("InvalidDefinitions")
    expect(page.locator(".repository-errors li")).to_have_count(1)
    assert page.locator("main img, main script").count() == 0
    watched.assert_clean()


def test_a_sync_is_followed_only_while_its_view_is_open(
    served: str, context: BrowserContext
) -> None:
    watched = browser.Watched.open(context)
    page = watched.page
    polls: list[float] = []
    page.on(
        "request",
        lambda r: polls.append(time.monotonic()) if r.url.endswith("/repositories/tools") else None,
    )
    page.goto(f"{served}/console/#/repositories")
    watched.sign_in(ADMIN)
    row = page.locator('tr[data-repository="tools"]')
    row.get_by_role("button", name="Sync now").click()
    expect(row.locator(".sync-status")).to_have_text("sync requested…")
    # The stand-in never handles it: the view asks again and again
    deadline = time.monotonic() + 10
    while len(polls) < 2:
        assert time.monotonic() < deadline, "the view did not follow the sync request"
        page.wait_for_timeout(100)
    # Once another view is open, it stops
    page.locator("#nav-jobs").click()
    expect(page.locator("#jobs tbody tr")).to_have_count(2)
    left = time.monotonic()
    page.wait_for_timeout(3500)
    assert [t for t in polls if t > left] == []
    watched.assert_clean()


def test_a_read_token_is_refused_sync_now_with_the_api_s_detail(
    served: str, context: BrowserContext, feed: api.WatchFeed
) -> None:
    watched = browser.Watched.open(context)
    page = watched.page
    page.goto(f"{served}/console/#/repositories")
    watched.sign_in(READER)
    page.locator('tr[data-repository="tools"]').get_by_role("button", name="Sync now").click()
    expect(page.locator("#signin-problem")).to_contain_text("lacks the 'admin' scope")
    expect(page.locator("main .problem")).to_contain_text("403")
    assert feed.patches == []
    watched.assert_clean()


def test_lists_page_with_more_and_a_filter_starts_them_over(
    served: str, context: BrowserContext, feed: api.WatchFeed, loop: asyncio.AbstractEventLoop
) -> None:
    # Given 55 more jobs than the two: more than one page of 50
    for number in range(55):
        body = api.job_body({"name": f"Bulk {number:02d}", "command": "true"})
        asyncio.run_coroutine_threadsafe(feed.push("OverseerJob", "ADDED", body), loop).result(10)
    watched = browser.Watched.open(context)
    page = watched.page
    page.goto(f"{served}/console/")
    watched.sign_in(READER)
    # Then the first page, and "More" appends the rest once
    rows = page.locator("#jobs tbody tr")
    expect(rows).to_have_count(50)
    expect(page.locator(".count")).to_have_text("50+ jobs")
    page.get_by_role("button", name="More").click()
    expect(rows).to_have_count(57)
    expect(page.locator(".count")).to_have_text("57 jobs")
    expect(page.get_by_role("button", name="More")).to_be_hidden()
    # And the executions' phase filter starts the list over, saying when nothing matches
    page.goto(f"{served}/console/#/executions")
    listed = page.locator("section.executions tbody tr")
    expect(listed).to_have_count(1)
    page.get_by_label("Phase").select_option("Running")
    expect(listed).to_have_text(["No executions."])
    page.get_by_label("Phase").select_option("Complete")
    expect(listed.locator(".execution-id")).to_have_text([EID])
    watched.assert_clean()
