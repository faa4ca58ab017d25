"""The whole stack as a user gets it: `launcher.py` (dev server, worker process, Streamlit) on free ports,
driven by Debian's chromium through Playwright. The launched-stack driver itself is chaos/stack.py (`Stack` here)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect, sync_playwright

from chaos.stack import LaunchedStack as Stack
from chaos.stack import free_port as free_port
from core.accounts import User
from core.config import PROJECT_ROOT, load_settings
from orchestration.client import connect
from orchestration.contracts import TrainRequest
from orchestration.service import TrainEasyService
from tests.helpers import classification_csv, finished_run

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    with launched(tmp_path_factory.mktemp("stack")) as s:
        yield s


@contextmanager
def launched(home: Path, extra_env: dict[str, str] | None = None) -> Iterator[Stack]:
    """A stack started by the launcher in `home`; afterwards the launcher stopped cleanly (Ctrl-C, exit 0) and,
    whatever the tests did, the app itself never logged a traceback."""
    s = Stack(home, extra_env=extra_env)
    try:
        s.wait_ready()
        yield s
    finally:
        rc = s.stop()
        print(s.text())
    assert rc == 0, f"launcher did not stop cleanly (rc={rc})"
    app_log = (s.home / "logs" / "streamlit.log").read_text(errors="replace")
    assert "Traceback" not in app_log, f"the app logged a traceback:\n{app_log[-6000:]}"


async def _train(stack: Stack, user: User, also_read: str | None) -> tuple[str, str | None]:
    settings = replace(load_settings(), home=stack.home, temporal_address=f"127.0.0.1:{stack.temporal_port}")
    service = TrainEasyService(await connect(settings), settings)
    ds = await service.upload_dataset(user, "shop.csv", classification_csv())
    run_id = await service.start_training(user, TrainRequest(user.name, ds.dataset_id, "bought", "logistic_regression"))
    view = await finished_run(service, user, run_id, timeout=180)
    assert view.status == "completed", view.error
    return run_id, (await service.get_run(user, also_read)).status if also_read else None


ALICE = User("alice")


def train_one(stack: Stack, user: User = ALICE, also_read: str | None = None) -> tuple[str, str | None]:
    """A training run through the service, as the app starts it, on this stack's server and workers; with
    `also_read`, that run's status too. In a thread of its own: in the browser suite Playwright's sync API
    keeps an event loop running on the main thread, where asyncio.run refuses to start another."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, _train(stack, user, also_read)).result()


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-dev-shm-usage",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield b
        b.close()


@pytest.fixture
def new_page(browser, request):
    contexts = []

    def make() -> Page:
        ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
        contexts.append(ctx)
        page = ctx.new_page()
        page.set_default_timeout(30_000)
        return page

    yield make
    report = getattr(request.node, "rep_call", None)
    for i, ctx in enumerate(contexts):
        if report is not None and report.failed:  # keep what the browser showed, for the CI log reader
            out = PROJECT_ROOT / "test-artifacts"
            out.mkdir(exist_ok=True)
            for j, pg in enumerate(ctx.pages):
                pg.screenshot(path=str(out / f"{request.node.name}-{i}-{j}.png"), full_page=True)
        ctx.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


def wait_for_app(page: Page, timeout: float = 60_000) -> None:
    """Streamlit's own idea of 'done': connected, script not running, no skeletons."""
    page.wait_for_selector("[data-testid='stApp'][data-test-connection-state='CONNECTED']", timeout=timeout)
    expect(page.get_by_test_id("stApp")).to_have_attribute("data-test-script-state", re.compile("notRunning"), timeout=timeout)
    expect(page.get_by_test_id("stSkeleton")).to_have_count(0, timeout=timeout)


def sign_in_form(page: Page, user: str, password: str) -> None:
    """The plain login page every signed-out page load is sent to."""
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()


def login(page: Page, stack: Stack, user: str, path: str = "") -> None:
    page.goto(f"{stack.url}/{path}")
    sign_in_form(page, user, stack.passwords()[user])
    expect(page.get_by_role("button", name="Log out")).to_be_visible(timeout=30_000)
    wait_for_app(page)


def open_select(page: Page, box: Locator) -> None:
    """Open a select box's list of options. A click that first scrolls the box into view can land while the
    page still scrolls, which focuses the box but closes its list again: scroll first, and retry."""
    box.scroll_into_view_if_needed()
    for _ in range(3):
        box.click()
        try:
            expect(page.get_by_role("option").first).to_be_visible(timeout=3_000)
            return
        except AssertionError:
            page.keyboard.press("Escape")
    box.click()
    expect(page.get_by_role("option").first).to_be_visible()


def sign_in(page: Page, stack: Stack, user: str, password: str) -> None:
    """Sign in from the app's front door and wait until the app is drawn for that user."""
    page.goto(stack.url)
    sign_in_form(page, user, password)
    expect(page.get_by_role("button", name="Log out")).to_be_visible(timeout=30_000)
    wait_for_app(page)


def go(page: Page, label: str) -> None:
    """Open a page from the sidebar."""
    page.get_by_test_id("stSidebar").get_by_role("link", name=label).click()
    wait_for_app(page)
