"""The web console in a real browser (Debian's Chromium, driven by Playwright) against the
real API process, the real operator and the local cluster, with a repository synced
from real git.

Every step is what a person does: give a token (a wrong one first), open the original's
example job, fill its parameters with shell and markup, run it, read its output; run a
sleeping job, watch its output arrive while it runs, and stop it with a signal; sync the
repository to a new commit with "Sync now".
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from playwright.sync_api import BrowserContext, expect

from tests.e2e.test_original_example import MY_COMMAND, ORIGINAL_EXAMPLE
from tests.support import browser
from tests.support.api_process import TOKENS, ApiProcess
from tests.support.cluster import Kube
from tests.support.gitserver import Upstream
from tests.support.overseer import eventually, repository, wait_for_jobs

pytestmark = pytest.mark.cluster

HOSTILE = "<img src=x onerror=alert(1)>"
SLEEPER = f"{HOSTILE} sleeper"
MORE = yaml.safe_dump(
    [{"name": SLEEPER, "command": ["sh", "-c", f"echo 'started {HOSTILE}'; sleep 300"]}]
)
NAMES = {"A job", SLEEPER}
RUN_TIMEOUT_MS = 90_000
"""An execution's pod on a loaded node: scheduled, started and archived."""


@pytest.fixture
def upstream(tmp_path: Path) -> Upstream:
    """The git repository the jobs come from."""
    return Upstream.create(tmp_path / "git" / "jobs.git")


@pytest.fixture
def console(kube: Kube, api: ApiProcess, upstream: Upstream) -> str:
    """The console's URL, once the API lists the original's example and a sleeping job."""
    upstream.commit(
        {"example_job.yml": ORIGINAL_EXAMPLE, "more.yml": MORE, "bin/my_command": MY_COMMAND},
        "the original's example, and a job that sleeps",
    )
    kube.apply(repository("jobs", upstream.file_url))
    wait_for_jobs(kube, NAMES)
    reader = api.client("reader")
    eventually(
        lambda: {j["name"] for j in reader.get("/jobs").json()["items"]} == NAMES,
        30,
        "the API's cache to list the jobs",
    )
    return f"{api.url}/console/"


@pytest.fixture
def context(tmp_path: Path) -> Iterator[BrowserContext]:
    with browser.chromium(tmp_path / "profile") as found:
        yield found


def test_the_console_runs_the_original_example_and_shows_its_output_as_text(
    console: str, context: BrowserContext
) -> None:
    watched = browser.Watched.open(context)
    page = watched.page
    # Given the console: a wrong token gets the API's own 401 detail
    page.goto(console)
    watched.sign_in("wrong-token")
    expect(page.locator("#signin-problem")).to_contain_text(
        "401 Unauthenticated: the bearer token is not valid"
    )
    # When a token that may execute is given, the jobs are listed
    watched.sign_in(TOKENS["runner"][0])
    expect(page.locator("#jobs tbody tr")).to_have_count(2)
    expect(page.get_by_role("link", name=SLEEPER)).to_have_text(SLEEPER)
    # And the original's example job is run with shell and markup in its parameters
    page.get_by_role("link", name="A job", exact=True).click()
    page.get_by_label("positional_var").fill("$(id); rm -rf /")
    page.get_by_label("some_opt").fill(HOSTILE)
    page.get_by_role("button", name="Run").click()
    # Then its execution completes, and its stdout is shown byte for byte, as text
    expect(page.locator("#phase")).to_have_text("Complete", timeout=RUN_TIMEOUT_MS)
    expected = (
        f"$(id); rm -rf /|--some-opt|{HOSTILE}|\nSOME_ENV_VAR=SOME_VALUE\nuid=65534 gid=65534\n"
    )
    expect(page.locator("#output-stdout")).to_have_text(expected)
    assert page.locator("#output-stdout").text_content() == expected
    expect(page.locator("#output-stderr")).to_have_text("")
    expect(page.locator("#exit-code")).to_have_text("0")
    expect(page.locator("#parameters")).to_contain_text(HOSTILE)
    # And repeated, it runs again with the same parameters
    first = page.locator("h1").text_content()
    page.get_by_role("button", name="Repeat").click()
    expect(page.locator("h1")).not_to_have_text(first or "")
    expect(page.locator("dl.facts")).to_contain_text(f"Repeat of{first}")
    expect(page.locator("#phase")).to_have_text("Complete", timeout=RUN_TIMEOUT_MS)
    expect(page.locator("#output-stdout")).to_have_text(expected)
    assert page.locator("main img").count() == 0
    watched.assert_clean()


def test_the_console_follows_a_running_job_and_stops_it_with_a_signal(
    console: str, context: BrowserContext
) -> None:
    watched = browser.Watched.open(context)
    page = watched.page
    # Given a token that may execute, on the sleeping job's page (its name encoded whole)
    page.goto(console + "#/jobs/%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E%20sleeper")
    watched.sign_in(TOKENS["runner"][0])
    expect(page.locator("#job-title")).to_have_text(SLEEPER)
    # When it is run, its output arrives while it runs (followed, not read at the end)
    page.get_by_role("button", name="Run").click()
    expect(page.locator("#output-stdout")).to_have_text(
        f"started {HOSTILE}\n", timeout=RUN_TIMEOUT_MS
    )
    expect(page.locator("#phase")).to_have_text("Running")
    # And TERM, the signal chosen by default, is sent
    expect(page.get_by_label("Signal")).to_have_value("TERM")
    page.get_by_role("button", name="Send signal").click()
    expect(page.locator("#signal-sent")).to_have_text("SIGTERM requested")
    # Then it ends, killed on request, and the signal's fate is shown
    expect(page.locator("#phase")).to_have_text("Killed", timeout=RUN_TIMEOUT_MS)
    expect(page.locator("#signals")).to_contain_text("SIGTERM")
    expect(page.get_by_role("button", name="Send signal")).to_be_disabled()
    expect(page.locator(".pane").first).to_have_attribute("data-state", "ended")
    assert page.locator("main img").count() == 0
    watched.assert_clean()


def test_the_console_syncs_the_repository_to_a_new_commit(
    console: str, context: BrowserContext, upstream: Upstream
) -> None:
    watched = browser.Watched.open(context)
    page = watched.page
    # Given the repositories, seen with a token that may sync: Ready at the pushed commit
    page.goto(console + "#/repositories")
    watched.sign_in(TOKENS["boss"][0])
    row = page.locator('tr[data-repository="jobs"]')
    expect(row.locator(".badge")).to_have_text("ready")
    expect(row.locator(".commit")).to_have_text(upstream.head[:12])
    # When a new commit is pushed and "Sync now" pressed (the interval is a minute away)
    pushed = upstream.commit({"notes.txt": "a change the console syncs\n"}, "a new commit")
    row.get_by_role("button", name="Sync now").click()
    # Then the row follows the request until the operator handled it: the new commit
    expect(row.locator(".sync-status")).to_have_text(f"synced {pushed[:12]}")
    expect(row.locator(".commit")).to_have_text(pushed[:12])
    expect(row.locator(".badge")).to_have_text("ready")
    watched.assert_clean()
