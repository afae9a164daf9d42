"""Debian's chromium driven by Playwright, against the app served by a live uvicorn."""

import shutil

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
BROWSER = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not shutil.which("chromium"),
        reason="Debian's chromium is not installed (make deps installs it)",
    ),
]


@pytest.fixture(scope="module")
def browser(workflows):
    # DBOS refuses to launch while an event loop runs in its thread, and Playwright's sync
    # API keeps one running here: launch it first, whichever test of the worker needs it
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
            ],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, live_url: str):
    context = browser.new_context(base_url=live_url)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def login(page, username: str, password: str) -> None:
    page.goto("/")
    assert page.url.endswith("/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_selector("[data-testid=whoami]")
