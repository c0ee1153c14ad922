"""Browser tests: the portal served on 127.0.0.1, driven by Debian's Chromium through Playwright.

Every page a test visits goes through ``check_accessibility``: axe-core (WCAG 2.0, 2.1 and 2.2, A and
AA) must find nothing, and a full-page screenshot is saved in ``tests/e2e/screenshots/``.
Without Chromium the tests are skipped locally and fail under ``CI=true``.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CHROMIUM = Path("/usr/bin/chromium")
AXE_JS = ROOT / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = HERE / "screenshots"
VIEWPORT = {"width": 390, "height": 844}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa", "best-practice"]
# Milliseconds Playwright waits for an element or a navigation before the test fails.
TIMEOUT_MS = 10_000

_screenshot_numbers = itertools.count(1)


def pytest_collection_modifyitems(config, items):
    # Hooks in a conftest see every collected item, so mark only the tests in this folder.
    for item in items:
        if HERE in Path(item.path).parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def live_server(app) -> Iterator[str]:
    """The session's app, served by werkzeug in a daemon thread. Yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="e2e-live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    message = f"Chromium is not installed at {CHROMIUM}: install Debian's chromium package to run the browser tests"
    if os.environ.get("CI") == "true":
        pytest.fail(message + " (CI=true, so this is a failure, not a skip)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def browser():
    _require_chromium()
    assert AXE_JS.exists(), f"axe-core is missing at {AXE_JS}: run `npm ci`"
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
    finally:
        playwright.stop()


@pytest.fixture(scope="session")
def screenshots_dir() -> Path:
    """Emptied once per run, so the folder shows exactly the pages of the last run."""
    SCREENSHOTS.mkdir(exist_ok=True)
    for old in SCREENSHOTS.glob("*.png"):
        old.unlink()
    return SCREENSHOTS


@pytest.fixture
def new_page(browser, live_server, screenshots_dir):
    """Opens pages in fresh browser contexts (no shared cookies): one per person in a test."""
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    contexts = []

    def open_page(*, javascript: bool = True):
        # javascript=False: a browser with scripts off. axe cannot run there, so check_accessibility cannot either.
        context = browser.new_context(viewport=VIEWPORT, bypass_csp=True, base_url=live_server, locale="en-GB",
                                      timezone_id="Europe/London", java_script_enabled=javascript)
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page):
    return new_page()


def _describe(violation: dict) -> str:
    lines = [f"  {violation['id']} ({violation['impact']}): {violation['help']} <{violation['helpUrl']}>"]
    for node in violation["nodes"]:
        target = " ".join(str(t) for t in node["target"])
        summary = "; ".join(
            line.strip() for line in (node.get("failureSummary") or "").splitlines()[1:] if line.strip()
        )
        lines.append(f"    {target}: {summary}")
    return "\n".join(lines)


def check_accessibility(page, name: str) -> Path:
    """Run axe on the page as it is now, save a full-page screenshot, and fail on any violation."""
    page.wait_for_load_state("load")
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE_JS))
    results = page.evaluate(
        """async (tags) => {
            const r = await axe.run(document, {runOnly: {type: 'tag', values: tags}});
            return {violations: r.violations, passes: r.passes.length};
        }""",
        AXE_TAGS,
    )
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{next(_screenshot_numbers):02d}-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    violations = results["violations"]
    # WCAG 1.4.10 Reflow, which axe cannot judge: nothing may make a phone scroll sideways.
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{page.url} is {overflow}px wider than the {VIEWPORT['width']}px screen ({path.name})"
    assert results["passes"] > 0, f"axe ran no checks on {page.url}: was it injected?"
    assert len(violations) == 0, (
        f"axe found {len(violations)} accessibility violation(s) on {page.url} (screenshot {path.name}):\n"
        + "\n".join(_describe(v) for v in violations)
    )
    return path
