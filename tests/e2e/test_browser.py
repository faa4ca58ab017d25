"""A user in a real browser: log in, upload, train, watch the run finish; isolation and roles."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from playwright.sync_api import Page, expect

from core.audit import AuditLog
from core.config import PROJECT_ROOT
from core.storage import Storage
from tests.e2e.conftest import go, login, sign_in_form, wait_for_app
from tests.helpers import classification_csv
from ui.text import WORD_JOINER

RUN_URL = re.compile(r"/runs\?run=(train-alice-[0-9a-f]{32})")


def status_badge(page: Page):
    """The run or batch status badge (st.badge) at the top of a run or batch view."""
    return page.locator(".stMarkdownBadge")


def upload(page: Page, path) -> None:
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(path))
    expect(page.get_by_role("button", name=f"Remove {path.name}")).to_be_visible()
    page.get_by_role("button", name="Add dataset", exact=True).click()
    wait_for_app(page)


def test_train_a_model_in_the_browser_and_others_cannot_see_it(stack, new_page, tmp_path):
    page = new_page()
    login(page, stack, "alice")
    expect(page.get_by_test_id("stSidebar").get_by_role("link", name="Admin")).to_have_count(0)

    go(page, "Datasets")
    bad = tmp_path / "photo.csv"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00binary")
    upload(page, bad)
    expect(page.get_by_text("binary file, not a CSV")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("No datasets yet")).to_be_visible()

    good = tmp_path / "shop.csv"
    good.write_bytes(classification_csv(rows=300))
    upload(page, good)
    expect(page.get_by_text("Stored shop.csv: 300 rows × 4 columns")).to_be_visible(timeout=60_000)
    expect(page.get_by_test_id("stDataFrame").first).to_be_visible()

    go(page, "Train")
    expect(page.get_by_text("Logistic regression parameters")).to_be_visible()
    page.get_by_role("button", name="Start training").click()
    page.wait_for_url(RUN_URL, timeout=30_000)
    found = RUN_URL.search(page.url)
    assert found is not None
    run_id = found.group(1)
    # the live view refreshes itself until the run is done, then shows the metrics
    expect(status_badge(page)).to_have_text(re.compile(r"completed$"), timeout=180_000)
    expect(page.get_by_text("Test-set metrics")).to_be_visible()
    expect(page.get_by_text("accuracy", exact=True)).to_be_visible()
    expect(page.get_by_text("100%")).to_be_visible()
    for title in ("Confusion matrix", "ROC curve", "Precision-recall curve", "Feature importance"):
        expect(page.get_by_test_id("stPlotlyChart").filter(has_text=title)).to_be_visible()

    # the run registered a model; predict with it on new rows (target column absent, one unseen city)
    go(page, "Models")
    expect(page.get_by_role("combobox", name="Model", exact=True)).to_have_value("logistic_regression v1")
    rows = tmp_path / "new.csv"
    rows.write_text("age,income,city\n30,70.5,paris\n61,20.0,berlin\n")
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(rows))
    expect(page.get_by_role("button", name=f"Remove {rows.name}")).to_be_visible()
    page.get_by_role("button", name="Predict", exact=True).click()
    expect(page.get_by_text("2 predictions with logistic_regression v1.")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("never seen in training ('berlin')")).to_be_visible()
    expect(page.get_by_role("button", name="Download predictions (.csv)")).to_be_visible()

    go(page, "Runs")
    expect(page.get_by_text("Select a row to open the run.")).to_be_visible(timeout=30_000)

    other = new_page()
    login(other, stack, "bob")
    go(other, "Runs")
    expect(other.get_by_text("No runs yet")).to_be_visible()
    other.goto(f"{stack.url}/runs?run={run_id}")
    wait_for_app(other)
    expect(other.get_by_text("Run not found")).to_be_visible()
    go(other, "Datasets")
    expect(other.get_by_text("No datasets yet")).to_be_visible()


def test_admin_sees_the_admin_page_and_users_are_refused_it(stack, new_page):
    admin = new_page()
    login(admin, stack, "admin")
    go(admin, "Admin")
    admin.get_by_role("tab", name="Engine").click()
    expect(admin.get_by_text("Workers alive")).to_be_visible()
    admin.get_by_role("tab", name="Audit log").click()
    expect(admin.get_by_role("button", name="Verify chain")).to_be_visible()
    cookie = next(c for c in admin.context.cookies() if c["name"] == "traineasy_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    admin.get_by_role("button", name="Log out").click()
    expect(admin.get_by_text("You are signed out.")).to_be_visible(timeout=30_000)
    admin.reload()
    expect(admin.get_by_label("Username")).to_be_visible()  # the session ended server-side
    # a copy of the old cookie, replayed in a fresh browser, opens nothing
    thief = new_page()
    thief.context.add_cookies([{k: cookie[k] for k in ("name", "value", "domain", "path")}])
    thief.goto(f"{stack.url}/admin")
    expect(thief.get_by_label("Username")).to_be_visible()
    expect(thief.get_by_text("Workers alive")).to_have_count(0)
    user = new_page()
    login(user, stack, "bob", path="admin")
    expect(user.get_by_text("for administrators only")).to_be_visible()


def test_wrong_password_is_refused(stack, new_page):
    page = new_page()
    page.goto(stack.url)
    sign_in_form(page, "alice", "not-the-password")
    expect(page.get_by_text("Wrong user name or password.")).to_be_visible()
    expect(page.get_by_role("button", name="Log out")).to_have_count(0)


def test_password_guessing_locks_the_name_with_a_message(stack, new_page):
    out = subprocess.run(
        [sys.executable, "-m", "orchestration.accounts_cli", "--home", str(stack.home), "add", "carol"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    password = out.rsplit("password: ", 1)[1].strip()
    page = new_page()
    page.goto(f"{stack.url}/train")
    for _ in range(5):
        sign_in_form(page, "carol", "guess-guess-guess")
        expect(page.get_by_text("Wrong user name or password.")).to_be_visible()
    sign_in_form(page, "carol", "guess-guess-guess")
    expect(page.get_by_text(re.compile(r"Too many failed sign-ins\. Try again in \d+ s"))).to_be_visible()
    sign_in_form(page, "carol", password)  # even the right password waits out the lock
    expect(page.get_by_text(re.compile(r"Too many failed sign-ins"))).to_be_visible()
    expect(page.get_by_role("button", name="Log out")).to_have_count(0)


def test_a_batch_in_the_browser_fills_a_leaderboard(stack, new_page, tmp_path):
    page = new_page()
    login(page, stack, "bob")
    go(page, "Datasets")
    data = tmp_path / "**bob**[site](http:evil.example).csv"  # a hostile file name stays plain text
    data.write_bytes(classification_csv(rows=200, seed=5))
    upload(page, data)
    # shown as typed (an invisible word joiner after "http" keeps it from becoming a link)
    shown = f"Stored **bob**[site](http{WORD_JOINER}:evil.example).csv"
    expect(page.get_by_text(shown)).to_be_visible(timeout=60_000)
    expect(page.get_by_role("link", name="site")).to_have_count(0)
    go(page, "Batch")
    expect(page.get_by_text("3 run(s) will start")).to_be_visible(timeout=60_000)
    page.get_by_role("button", name="Start batch").click()
    page.wait_for_url(re.compile(r"/batch\?batch=batch-bob-[0-9a-f]{32}"), timeout=30_000)
    expect(status_badge(page)).to_have_text(re.compile(r"^[^·]*completed$"), timeout=240_000)  # not "completed · done"
    expect(page.get_by_text("Leaderboard (by balanced accuracy)")).to_be_visible()
    expect(page.get_by_role("button", name="Download leaderboard (.csv)")).to_be_visible()
    # one chart once the page has settled (a rerun can briefly keep the previous run's element on screen)
    expect(page.get_by_test_id("stPlotlyChart").filter(has_text="balanced accuracy by model")).to_have_count(1, timeout=30_000)


def test_a_batch_on_data_no_model_can_learn_says_so_once_and_starts_nothing(stack, new_page, tmp_path):
    page = new_page()
    login(page, stack, "bob")
    go(page, "Datasets")
    data = tmp_path / "one-class.csv"
    data.write_text("age,city,bought\n" + "".join(f"{20 + i % 50},paris,yes\n" for i in range(60)))
    upload(page, data)
    expect(page.get_by_text("Stored one-class.csv")).to_be_visible(timeout=60_000)
    go(page, "Batch")
    wait_for_app(page)
    # the data's own problem, the same for each of the three configurations: said once, not once per configuration
    refusal = page.get_by_test_id("stAlert").filter(has_text="has a single class")
    expect(refusal).to_have_count(1, timeout=60_000)
    expect(refusal).not_to_contain_text("Configuration")
    expect(page.get_by_text("run(s) will start")).to_have_count(0)
    expect(page.get_by_role("button", name="Start batch")).to_be_disabled()


def upload_and_pick(page: Page, path: Path, data: bytes, model: str) -> None:
    """Upload `data` as `path`'s name, then pick that dataset and `model` on the Train page."""
    go(page, "Datasets")
    path.write_bytes(data)
    upload(page, path)
    expect(page.get_by_text(f"Stored {path.name}")).to_be_visible(timeout=60_000)
    go(page, "Train")
    page.get_by_role("combobox", name="Dataset").click()
    page.get_by_role("option", name=re.compile("^" + re.escape(path.name))).click()
    wait_for_app(page)
    page.get_by_role("combobox", name="Model").click()
    page.get_by_role("option", name=model).click()
    wait_for_app(page)


def test_cancel_from_the_run_page_stops_the_fit(stack, new_page, tmp_path):
    page = new_page()
    login(page, stack, "alice")
    upload_and_pick(page, tmp_path / "big.csv", classification_csv(rows=20000, seed=9), "Random forest (classification)")
    trees = page.get_by_role("spinbutton", name="n_estimators")
    trees.fill("500")
    trees.press("Enter")
    wait_for_app(page)
    page.get_by_role("button", name="Start training").click()
    page.wait_for_url(RUN_URL, timeout=30_000)
    expect(page.get_by_text(re.compile(r"tree \d+ of 500"))).to_be_visible(timeout=120_000)  # fitting, its trees counted
    page.get_by_role("button", name="Cancel run").click()
    expect(status_badge(page)).to_have_text(re.compile(r"cancelled$"), timeout=30_000)
    expect(page.get_by_role("button", name="Cancel run")).to_have_count(0)


def test_an_admin_adds_and_disables_a_user_in_the_browser(stack, new_page):
    admin = new_page()
    login(admin, stack, "admin")
    go(admin, "Admin")
    admin.get_by_role("textbox", name="User name").fill("dave")
    admin.get_by_role("button", name="Add user").click()
    wait_for_app(admin)
    notice = admin.get_by_text(re.compile(r"Added dave\. Their password"))
    expect(notice).to_be_visible()
    password = notice.inner_text().rsplit(": ", 1)[1].strip()
    dave = new_page()
    dave.goto(stack.url)
    sign_in_form(dave, "dave", password)
    expect(dave.get_by_role("button", name="Log out")).to_be_visible(timeout=30_000)
    # pick dave (not the first account in the list) and disable him: his open session ends at once
    admin.get_by_role("combobox", name="User", exact=True).click()
    admin.get_by_role("option", name="dave", exact=True).click()
    wait_for_app(admin)
    disable = admin.locator(".st-key-disable_user").get_by_role("button", name="Disable (signs them out now)")
    expect(disable).to_have_count(1)  # the previous user's button, if still on screen, is gone
    disable.click()
    wait_for_app(admin)
    expect(admin.get_by_text("dave is disabled.")).to_be_visible()
    dave.reload()
    expect(dave.get_by_label("Username")).to_be_visible()
    entries = AuditLog(Storage(stack.home)).query(actor="admin", action_prefix="admin.user")
    assert {(e.action, e.object, e.address) for e in entries} >= {
        ("admin.user_add", "dave", "127.0.0.1"),
        ("admin.user_disable", "dave", "127.0.0.1"),
    }


def test_a_boosting_run_shows_its_learning_curve(stack, new_page, tmp_path):
    """One fit call, then the curve from the model's own stages: the run page draws it once the run is done."""
    page = new_page()
    login(page, stack, "alice")
    boosting = "Histogram gradient boosting (classification)"
    upload_and_pick(page, tmp_path / "curve.csv", classification_csv(rows=400, seed=3), boosting)
    page.get_by_role("button", name="Start training").click()
    page.wait_for_url(RUN_URL, timeout=30_000)
    expect(status_badge(page)).to_have_text(re.compile(r"completed$"), timeout=180_000)
    expect(page.get_by_test_id("stPlotlyChart").filter(has_text="Learning curve (accuracy)")).to_be_visible()
