"""Browser tests: the built dashboard, served by `agentops up` on the embedded default, driven
through Playwright in Debian's chromium (no browser download).

Every test gets a fresh browser context (its own localStorage), fails on any console error it did
not expect, and leaves a screenshot in E2E_OUTPUT (default test-results/e2e/) for review.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from services.gateway.dashboard import DEFAULT_DIR
from services.runtime.embedded import free_port
from tests.keys import api_keys_env, secret
from tests.system.test_agentops_up import dashboard_key, start, stop, wait_for_line

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = Path(os.environ.get("E2E_OUTPUT", ROOT / "test-results" / "e2e"))
pytestmark = pytest.mark.e2e


def _missing(what: str) -> None:
    """Locally a missing browser or build skips with the fix; in CI it fails: CI installs both."""
    if os.environ.get("CI"):
        pytest.fail(what)
    pytest.skip(what)


def chromium_path() -> str:
    found = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        _missing("chromium is not installed: apt-get install -y chromium")
    return found  # type: ignore[return-value]


@dataclass
class Running:
    base: str
    admin_key: str
    home: Path


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    if not (DEFAULT_DIR / "index.html").is_file():
        _missing("the dashboard is not built: cd frontend && npm ci && npm run build (make test does it)")
    port = free_port()
    home = tmp_path_factory.mktemp("agentops-home")
    proc = start(
        home,
        port,
        API_KEYS=api_keys_env(),
        COMMAND_RATE_PER_MINUTE="6000",
        COMMAND_BURST="500",
    )
    base = f"http://127.0.0.1:{port}"
    try:
        key = dashboard_key(wait_for_line(proc, "Dashboard"), base)
        # keep reading what the services print, or a full pipe would block them mid-test
        threading.Thread(target=lambda: proc.stdout and proc.stdout.read(), daemon=True).start()
        yield Running(base, key, home)
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    # Module scope, not session: Playwright's sync API keeps an event loop running in this thread
    # while it is open, which the asyncio tests that follow cannot share.
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield browser
        browser.close()


@dataclass
class Console:
    errors: list[str] = field(default_factory=list)
    expected: list[re.Pattern[str]] = field(default_factory=list)

    def expect(self, pattern: str) -> None:
        """A console error this test provokes on purpose (a refused request logs one)."""
        self.expected.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p in self.expected)]


@dataclass
class Browsing:
    running: Running
    console: Console
    open: Callable[..., object]


@pytest.fixture
def ui(running: Running, browser: object, request: pytest.FixtureRequest) -> Iterator[Browsing]:
    """`ui.open(user)` signs `user` in through the URL the way `agentops up` prints it."""
    console = Console()
    contexts: list[object] = []
    pages: list[object] = []

    def open_page(user: str | None = "alice", color_scheme: str = "light", path: str = "/") -> object:
        context = browser.new_context(viewport={"width": 1366, "height": 860}, color_scheme=color_scheme)  # type: ignore[attr-defined]
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.on("console", lambda m: console.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: console.errors.append(f"uncaught: {e}"))
        key = running.admin_key if user == "admin" else secret(user) if user else None
        page.goto(running.base + path + (f"#key={key}" if key else ""))
        pages.append(page)
        return page

    yield Browsing(running, console, open_page)
    OUTPUT.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^\w.-]+", "_", request.node.name)
    for i, page in enumerate(pages):
        if not page.is_closed():  # type: ignore[attr-defined]
            page.screenshot(path=str(OUTPUT / f"{name}{'' if i == 0 else f'-{i}'}.png"), full_page=True)  # type: ignore[attr-defined]
    for context in contexts:
        context.close()  # type: ignore[attr-defined]
    assert console.unexpected() == [], "console errors in the dashboard"
