"""The health view in the browser, on a launched stack of two workers: the launcher prints the check's
overall line, the admin sees every check and both workers, and a worker killed with -9 leaves the view
at the next check, not 90 s later."""

from __future__ import annotations

import os
import signal
import time

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import go, launched, sign_in


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory):
    with launched(tmp_path_factory.mktemp("liveness"), {"TRAINEASY_WORKERS": "2", "TRAINEASY_RESTART_BACKOFF": "5"}) as stack:
        yield stack


def engine_tab(page: Page, state: str) -> None:
    page.get_by_role("tab", name="Engine").click()
    expect(page.get_by_text(f"Overall: {state}")).to_be_visible()


def test_the_launcher_prints_the_overall_health_line(two_workers):
    assert "Health: ok (2 workers alive)" in two_workers.text()


def test_admin_sees_the_health_view_and_a_killed_worker_leaves_it_at_once(two_workers, new_page):
    stack = two_workers
    page = new_page()
    sign_in(page, stack, "admin", stack.passwords()["admin"])
    expect(page.get_by_text("Everything is working: 2 worker processes alive.")).to_be_visible()  # the Home page
    go(page, "Admin")
    engine_tab(page, "ok")
    expect(page.get_by_test_id("stMetric").filter(has_text="Workers alive")).to_contain_text("2")
    expect(page.get_by_test_id("stMetric").filter(has_text="Temporal round trip")).to_contain_text(" ms")
    for check in ("Temporal server", "Worker processes", "Storage", "App database", "Launcher"):
        expect(page.get_by_role("row").filter(has_text=check).first).to_contain_text("ok")
    host = os.uname().nodename
    pids = [stack.pid_of("worker-1"), stack.pid_of("worker-2")]
    workers = page.get_by_test_id("stTable").filter(has_text="last beat")
    for pid in pids:
        expect(workers.get_by_role("row").filter(has_text=f"{pid}@{host}")).to_have_count(2)  # training and data tasks

    os.kill(pids[0], signal.SIGKILL)  # the launcher restarts it after its 5 s backoff
    killed = time.monotonic()
    page.get_by_role("button", name="Check again").click()
    engine_tab(page, "degraded")  # the launcher is restarting worker-1
    expect(workers.get_by_role("row").filter(has_text=f"{pids[0]}@{host}")).to_have_count(0, timeout=5_000)
    seen = time.monotonic() - killed
    expect(page.get_by_role("row").filter(has_text="Launcher")).to_contain_text("Starting or restarting: worker-1")
    expect(page.get_by_test_id("stMetric").filter(has_text="Workers alive")).to_contain_text("1")
    expect(workers.get_by_role("row").filter(has_text=f"{pids[1]}@{host}")).to_have_count(2)
    print(f"a kill -9 left the health view {seen:.1f}s later")
    assert seen < 5
