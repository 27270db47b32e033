"""Real-browser fixtures: Debian's Chromium driven by Playwright, visiting the test app served
over HTTP on 127.0.0.1 (`live_server`, in tests/conftest.py). Chromium maps `*.localhost` to
loopback, so `acme.localhost:<port>` reaches the server as the tenant `acme`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import service_missing

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def chromium():
    """One headless Chromium for the session; each test opens its own contexts."""
    if not CHROMIUM.exists():
        service_missing(f"{CHROMIUM} is not installed")
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
    except Exception:
        playwright.stop()
        raise
    yield browser
    browser.close()
    playwright.stop()


@pytest.fixture
def new_context(chromium, live_server):
    """`new_context(**options)`: a fresh browser context (its own cookies), closed after the
    test and before the server stops."""
    contexts = []

    def factory(**options):
        context = chromium.new_context(**options)
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context

    yield factory
    for context in contexts:
        context.close()
