"""Run and batch pages that tell the truth: a cancelled batch shows every child final (after a reload too),
a run shows the parameters it used, where it is ("fold 1 of 5", never "fold 0"), progress that never goes
back, a link to the run in the Temporal UI, and the README's CLI query works on the stack's own ports."""

from __future__ import annotations

import re
import subprocess
import sys
import urllib.request
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect

from core.audit import AuditLog
from core.config import PROJECT_ROOT
from core.sessions import Sessions
from core.storage import Storage
from tests.e2e.conftest import Stack, go, sign_in, wait_for_app
from tests.helpers import classification_csv

RUN_URL = re.compile(r"/runs\?run=(train-runpages-[0-9a-f]{32})")
BATCH_URL = re.compile(r"/batch\?batch=(batch-runpages-[0-9a-f]{32})")
USER = "runpages"


@pytest.fixture(scope="module")
def password(stack: Stack) -> str:
    """A user of this file's own (the stack is shared by the whole browser suite)."""
    out = subprocess.run(
        [sys.executable, "-m", "orchestration.accounts_cli", "--home", str(stack.home), "add", USER],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.rsplit("password: ", 1)[1].strip()


def upload_once(page: Page, path) -> None:
    """Upload `path` on the Datasets page unless an earlier test of this file did."""
    go(page, "Datasets")
    if page.get_by_text(path.name).count():
        return
    path.write_bytes(classification_csv(rows=20000, seed=11))
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(path))
    expect(page.get_by_role("button", name=f"Remove {path.name}")).to_be_visible()
    page.get_by_role("button", name="Add dataset", exact=True).click()
    wait_for_app(page)
    expect(page.get_by_text(f"Stored {path.name}")).to_be_visible(timeout=90_000)


def pick(page: Page, box: str, option: str | re.Pattern) -> None:
    page.get_by_role("combobox", name=box, exact=True).click()
    page.get_by_role("option", name=option).click()
    wait_for_app(page)


def fill(page: Page, label: str, value: str, role: str = "textbox") -> None:
    field = page.get_by_role(role, name=label)  # type: ignore[arg-type]
    field.fill(value)
    field.press("Enter")
    wait_for_app(page)


def badge(page: Page):
    return page.locator(".stMarkdownBadge")


def percent(page: Page) -> int:
    text = page.get_by_test_id("stProgress").first.inner_text()
    return int(re.match(r"\s*(\d+)%", text).group(1))  # type: ignore[union-attr]


def assert_temporal_link(page: Page, stack: Stack, workflow_id: str) -> None:
    link = page.get_by_role("link", name="Open in Temporal UI")
    expect(link).to_be_visible()
    href = link.get_attribute("href")
    assert href == f"http://localhost:{stack.ui_port}/namespaces/default/workflows/{workflow_id}"
    with urllib.request.urlopen(href.replace("localhost", "127.0.0.1"), timeout=30) as answer:  # the UI serves it
        assert answer.status == 200


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return tmp_path_factory.mktemp("runpages") / "runpages-shop.csv"


def test_a_cancelled_batch_shows_every_child_final_also_after_a_reload(stack, password, new_page, dataset):
    page = new_page()
    sign_in(page, stack, USER, password)
    upload_once(page, dataset)
    go(page, "Batch")
    pick(page, "Dataset", re.compile(rf"^{re.escape(dataset.name)}"))
    page.get_by_text("Parameter sweep of one model").click()
    wait_for_app(page)
    pick(page, "Model", "Random forest (classification)")
    fill(page, "n_estimators: values, comma-separated", "300, 301, 302")
    fill(page, "At most this many at once", "2", role="spinbutton")
    expect(page.get_by_text("3 run(s) will start, at most 2 at once")).to_be_visible(timeout=120_000)
    page.get_by_role("button", name="Start batch").click()
    page.wait_for_url(BATCH_URL, timeout=30_000)
    batch_id = BATCH_URL.search(page.url).group(1)  # type: ignore[union-attr]
    # one worker slot: one child fits while the other's stages wait for the slot, the third waits for its turn
    bars = page.get_by_test_id("stProgress")
    expect(bars.filter(has_text=re.compile(r"· running$"))).to_have_count(2, timeout=120_000)
    page.get_by_role("button", name="Cancel batch").click()
    # the badge: only "cancelled" (not "cancelled · running"); each child: cancelled, or completed if it was done
    final_badge, final_child = re.compile(r"^[^·]*cancelled$"), re.compile(r"· (cancelled$|completed)")
    expect(badge(page)).to_have_text(final_badge, timeout=90_000)
    for reloaded in (False, True):
        if reloaded:
            page.reload()
            wait_for_app(page)
            expect(badge(page)).to_have_text(final_badge, timeout=30_000)
        expect(bars).to_have_count(3)
        for i in range(3):
            expect(bars.nth(i)).to_have_text(final_child, timeout=30_000)
        expect(page.get_by_text(re.compile(r"running"))).to_have_count(0)
    expect(page.get_by_role("button", name="Cancel batch")).to_have_count(0)
    assert_temporal_link(page, stack, batch_id)


def test_a_run_page_shows_its_parameters_where_it_is_and_never_goes_back(stack, password, new_page, dataset):
    page = new_page()
    sign_in(page, stack, USER, password)
    upload_once(page, dataset)
    go(page, "Train")
    pick(page, "Dataset", re.compile(rf"^{re.escape(dataset.name)}"))
    pick(page, "Model", "Random forest (classification)")
    fill(page, "n_estimators", "250", role="spinbutton")
    pick(page, "Cross-validation", "5-fold on the training rows")
    page.get_by_role("button", name="Start training").click()
    page.wait_for_url(RUN_URL, timeout=30_000)
    run_id = RUN_URL.search(page.url).group(1)  # type: ignore[union-attr]

    # where it is: the fold under way, counted from 1 (tests/unit/test_views.py: "fold 1 of 5" while the first
    # fits); on a fast machine the first fold may end before a heartbeat and a read of the page show it), and the
    # stage's card shows its whole name
    expect(page.get_by_test_id("stProgress")).to_have_text(re.compile(r"fold [1-5] of 5"), timeout=120_000)
    stage = page.get_by_test_id("stMetricValue").first
    assert stage.evaluate("e => [e, ...e.querySelectorAll('*')].every(x => x.scrollWidth <= x.clientWidth)"), "name cut"
    expect(stage).to_have_text("Cross-validation")
    expect(page.get_by_test_id("stProgress")).not_to_have_text(re.compile(r"fold 0 "))
    # no time left until a fold has finished; then one from the folds' pace
    left = page.get_by_test_id("stMetric").filter(has_text="Stage time left").get_by_test_id("stMetricValue")
    expect(page.get_by_test_id("stProgress")).to_have_text(re.compile(r"fold [2-5] of 5"), timeout=180_000)
    expect(left).to_have_text(re.compile(r"^(~[\d.]+ (s|min)|< 1 s)$"), timeout=30_000)

    # the parameters it was started with
    params = page.locator(".st-key-run_parameters")
    expect(params).to_contain_text(f"Dataset {dataset.name}")
    expect(params).to_contain_text("target bought")
    expect(params).to_contain_text("test rows 20%")
    expect(params).to_contain_text("seed 42")
    expect(params).to_contain_text("5-fold cross-validation")
    table = params.get_by_test_id("stDataFrame")
    expect(table).to_contain_text("n_estimators")
    expect(table).to_contain_text("250")
    assert_temporal_link(page, stack, run_id)

    # a cancel does not take the progress back: the cancelled stage's finished folds stay counted
    before = percent(page)
    assert before > 10, before
    page.get_by_role("button", name="Cancel run").click()
    expect(badge(page)).to_have_text(re.compile(r"cancelled$"), timeout=60_000)
    assert percent(page) >= before
    expect(page.get_by_test_id("stMetric").filter(has_text="Attempts").get_by_test_id("stMetricValue")).to_have_text("1")
    expect(page.locator(".st-key-run_parameters")).to_contain_text("n_estimators")


def test_the_readme_cli_query_reads_a_run_on_the_stacks_own_ports(stack, password):
    """The README's `temporal workflow query` example, run as written against this stack's non-default ports."""
    readme = (PROJECT_ROOT / "README.md").read_text()
    block = next(b for b in re.findall(r"```bash\n(.*?)```", readme, re.S) if "temporal workflow query" in b)
    assert "--address" in block
    # the runs this file's user launched (their scratch folders go when they are cancelled: ask the audit log)
    launched = AuditLog(Storage(stack.home)).query(actor=USER, action_prefix="launch", outcome="ok", limit=None)
    runs = sorted(e.object for e in launched if e.object.startswith("train-"))
    assert runs, f"an earlier test of this file started a run; audit: {[(e.action, e.object) for e in launched]}"
    token = Sessions(Storage(stack.home), timedelta(hours=1)).create("admin", "127.0.0.1", kind="codec")
    script = block.replace("<token>", token).replace("<run id>", runs[0])
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(stack.home),
        "TRAINEASY_APP_PORT": str(stack.app_port),
        "TRAINEASY_TEMPORAL_PORT": str(stack.temporal_port),
    }
    out = subprocess.run(["bash", "-ec", script], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert runs[0] in out.stdout and '"stages"' in out.stdout, out.stdout
