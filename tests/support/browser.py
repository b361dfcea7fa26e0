"""A real browser for the console's tests: Debian's Chromium, driven by Playwright.

Playwright's own browser downloads are never used (the machines reach no such host):
``chromium`` comes from Debian (``hack/packages-debian.txt``), launched headless with a
fresh profile and nothing that calls out. Without it the tests skip, saying so.

:class:`Watched` records what must never happen on a console page: a dialog (an
``alert`` from markup injected through data), an uncaught script error, a request the
Content-Security-Policy refused.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
from playwright.sync_api import (
    BrowserContext,
    ConsoleMessage,
    Dialog,
    Error,
    Page,
    expect,
    sync_playwright,
)

CHROMIUM = Path("/usr/bin/chromium")
NETWORK_CHANGED = "net::ERR_NETWORK_CHANGED"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 20_000
"""How long an action or an expectation waits (a loaded machine, a pod starting)."""


@contextmanager
def chromium(profile: Path) -> Iterator[BrowserContext]:
    """Debian's Chromium with a fresh profile in ``profile``; skips the test without it."""
    if not CHROMIUM.exists() or shutil.which("chromium") is None:
        pytest.skip(
            f"{CHROMIUM} is missing: `make deps` installs Debian's chromium "
            "(hack/packages-debian.txt); the console's browser tests need it"
        )
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=ARGS,
            viewport={"width": 1280, "height": 900},
        )
        context.set_default_timeout(TIMEOUT_MS)
        expect.set_options(timeout=TIMEOUT_MS)  # expect() keeps its own (5 s)
        try:
            yield context
        finally:
            context.close()


@dataclasses.dataclass
class Watched:
    """A page, and what it did that it never should."""

    page: Page
    dialogs: list[str] = dataclasses.field(default_factory=list)
    errors: list[str] = dataclasses.field(default_factory=list)
    refused: list[str] = dataclasses.field(default_factory=list)
    failed: list[str] = dataclasses.field(default_factory=list)
    """Requests that got no answer (told, not asserted: a follow is cut on navigation)."""
    said: list[str] = dataclasses.field(default_factory=list)
    """What the page logged, to tell what happened when a step times out."""

    @classmethod
    def open(cls, context: BrowserContext) -> Watched:
        watched = cls(context.new_page())
        watched.page.on("dialog", watched._dialog)
        watched.page.on("pageerror", lambda error: watched.errors.append(str(error)))
        watched.page.on("console", watched._console)
        watched.page.on(
            "requestfailed", lambda r: watched.failed.append(f"{r.method} {r.url}: {r.failure}")
        )
        return watched

    def sign_in(self, token: str) -> None:
        """Give the console a token, once it asks for one.

        Chromium drops the requests in flight when the host's network changes, and on the
        local cluster pods come and go beside the tests (each with its veth interface): a
        module script lost so (``net::ERR_NETWORK_CHANGED``) leaves the page without its
        code, which is no fault of the console's. The page is loaded again then, twice
        at the most; any other failure to ask for a token fails at once.
        """
        field = self.page.get_by_label("Bearer token")
        for attempt in range(3):
            try:
                field.wait_for(state="visible")
                break
            except Error as error:
                if attempt < 2 and any(NETWORK_CHANGED in failure for failure in self.failed):
                    self.failed = [f for f in self.failed if NETWORK_CHANGED not in f]
                    self.page.reload()
                    continue
                raise AssertionError(f"the console never asked for a token: {self}") from error
        field.fill(token)
        self.page.get_by_role("button", name="Use this token").click()

    def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        with suppress(Error):  # the page may be gone already
            dialog.dismiss()

    def _console(self, message: ConsoleMessage) -> None:
        self.said.append(f"{message.type}: {message.text}")
        if "Content Security Policy" in message.text or "Refused to" in message.text:
            self.refused.append(message.text)

    def assert_clean(self) -> None:
        """No dialog, no script error, nothing the CSP had to refuse."""
        assert (self.dialogs, self.errors, self.refused) == ([], [], [])
