"""The Models page in a real browser: predictions belong to the model and file that made them, compare
offers only comparable models, and the "load it yourself" lines are there."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid

import pytest
from playwright.sync_api import Page, expect

from core.config import PROJECT_ROOT
from tests.e2e.conftest import go, open_select, sign_in, wait_for_app
from tests.helpers import classification_csv, regression_csv

RUN_URL = re.compile(r"/runs\?run=train-")


def add_account(stack) -> tuple[str, str]:
    """A user of this module's own (the stack is shared: other tests' models must not show up here)."""
    name = f"mia{uuid.uuid4().hex[:6]}"
    done = subprocess.run(
        [sys.executable, "-m", "orchestration.accounts_cli", "--home", str(stack.home), "add", name],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return name, done.stdout.strip().rsplit("password: ", 1)[1]


def choose(page: Page, box: str, option: str) -> None:
    open_select(page, page.get_by_role("combobox", name=box, exact=True))
    page.get_by_role("option", name=option, exact=True).click()
    wait_for_app(page)


def upload_dataset(page: Page, path) -> None:
    go(page, "Datasets")
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(path))
    expect(page.get_by_role("button", name=f"Remove {path.name}")).to_be_visible()
    page.get_by_role("button", name="Add dataset", exact=True).click()
    expect(page.get_by_text(f"Stored {path.name}")).to_be_visible(timeout=60_000)


def train(page: Page, dataset: str, model: str) -> None:
    go(page, "Train")
    choose(page, "Dataset", dataset)
    choose(page, "Model", model)
    page.get_by_role("button", name="Start training").click()
    page.wait_for_url(RUN_URL, timeout=30_000)
    expect(page.locator(".stMarkdownBadge")).to_have_text(re.compile(r"completed$"), timeout=180_000)


@pytest.fixture(scope="module")
def account(stack, browser, tmp_path_factory):
    """A user with a regression model on houses.csv, then two classifiers on shop.csv (the newest)."""
    account = add_account(stack)
    folder = tmp_path_factory.mktemp("models_page")
    shop, houses = folder / "shop.csv", folder / "houses.csv"
    shop.write_bytes(classification_csv(rows=200, seed=2))
    houses.write_bytes(regression_csv(rows=200, seed=2))
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = ctx.new_page()
        page.set_default_timeout(30_000)
        sign_in(page, stack, *account)
        upload_dataset(page, houses)
        upload_dataset(page, shop)
        train(page, "houses.csv (200 rows)", "Linear regression")
        train(page, "shop.csv (200 rows)", "Logistic regression")
        train(page, "shop.csv (200 rows)", "Gaussian naive Bayes")
    finally:
        ctx.close()
    return account


def predicted(page: Page):
    return page.get_by_text(re.compile(r"\d+ predictions with "))


def download_predictions(page: Page):
    return page.get_by_role("button", name="Download predictions (.csv)")


def predict_with(page: Page, path) -> None:
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(path))
    expect(page.get_by_role("button", name=f"Remove {path.name}")).to_be_visible()
    wait_for_app(page)
    page.get_by_role("button", name="Predict", exact=True).click()
    wait_for_app(page)


def test_predictions_are_cleared_when_the_model_changes_or_a_file_is_refused(stack, new_page, account, tmp_path):
    page = new_page()
    sign_in(page, stack, *account)
    go(page, "Models")
    expect(page.get_by_role("combobox", name="Model", exact=True)).to_have_value("gaussian_nb v1")
    rows = tmp_path / "new.csv"
    rows.write_text("age,income,city\n30,70.5,paris\n61,20.0,lyon\n44,51.0,nice\n")
    predict_with(page, rows)
    expect(page.get_by_text("3 predictions with gaussian_nb v1. Input file: new.csv.")).to_be_visible(timeout=60_000)
    expect(download_predictions(page)).to_be_visible()

    # another model: the predictions and their download go, nothing from gaussian_nb stays on screen
    choose(page, "Model", "logistic_regression v1")
    expect(predicted(page)).to_have_count(0)
    expect(download_predictions(page)).to_have_count(0)
    page.get_by_role("button", name="Predict", exact=True).click()  # the file is still there: predict again
    wait_for_app(page)
    expect(page.get_by_text("3 predictions with logistic_regression v1. Input file: new.csv.")).to_be_visible(timeout=60_000)

    # a file the model refuses: no old predictions under the refusal, no download of them
    bad = tmp_path / "no_city.csv"
    bad.write_text("age,income\n30,70.5\n")
    predict_with(page, bad)
    expect(page.get_by_text("The file lacks column(s) the model needs: city")).to_be_visible(timeout=60_000)
    expect(predicted(page)).to_have_count(0)
    expect(download_predictions(page)).to_have_count(0)


def test_compare_offers_only_models_of_the_same_task_and_data(stack, new_page, account):
    page = new_page()
    sign_in(page, stack, *account)
    go(page, "Models")
    # by default the group of the newest model: the two classifiers on shop.csv, not the regression
    group = page.get_by_role("combobox", name="Compare", exact=True)
    expect(group).to_have_value("shop.csv → bought (classification, 2 models)")
    picked = page.get_by_test_id("stMultiSelect").filter(has_text="Models to compare")
    expect(picked.get_by_text("logistic_regression v1")).to_be_visible()
    expect(picked.get_by_text("gaussian_nb v1")).to_be_visible()
    expect(picked.get_by_text("linear_regression v1")).to_have_count(0)
    charts = page.get_by_test_id("stPlotlyChart")
    expect(charts.filter(has_text="balanced accuracy by model")).to_be_visible()
    expect(charts.filter(has_text="R² by model")).to_have_count(0)
    # the regression model cannot be added to this comparison: it is not among the choices
    picked.get_by_role("combobox").click()
    expect(page.get_by_role("option", name="linear_regression v1")).to_have_count(0)
    page.keyboard.press("Escape")

    # the groups on offer: one per dataset and target, each of one task
    group.click()
    options = [o.strip() for o in page.get_by_role("option").all_inner_texts()]
    assert sorted(options) == ["houses.csv → y (regression, 1 model)", "shop.csv → bought (classification, 2 models)"]
    page.get_by_role("option", name="houses.csv → y (regression, 1 model)").click()
    wait_for_app(page)
    expect(picked.get_by_text("linear_regression v1")).to_be_visible()
    expect(picked.get_by_text("gaussian_nb v1")).to_have_count(0)
    expect(charts.filter(has_text="R² by model")).to_be_visible()


def test_the_model_page_shows_how_to_load_the_file_elsewhere(stack, new_page, account):
    page = new_page()
    sign_in(page, stack, *account)
    go(page, "Models")
    page.get_by_text("Load it yourself, without TrainEasy").click()
    code = page.get_by_test_id("stCode")
    expect(code.filter(has_text=re.compile(r'pip install "scikit-learn==[\d.]+" "skops==[\d.]+"'))).to_be_visible()
    expect(code.filter(has_text="sio.load('gaussian_nb-v1.skops', trusted=trusted)")).to_be_visible()
    expect(code.filter(has_text="features = ['age', 'income', 'city']")).to_be_visible()
