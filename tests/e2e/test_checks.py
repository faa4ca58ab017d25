"""The data check in a real browser: a numeric identifier column is called out and left out of the
features (and can be kept), and a k-NN setting beyond the rows is refused before launch."""

from __future__ import annotations

import re
import uuid

import numpy as np
import pandas as pd
from playwright.sync_api import Page, expect

from core.accounts import Accounts
from core.storage import Storage
from tests.e2e.conftest import go, sign_in_form, wait_for_app
from tests.e2e.test_browser import upload
from tests.helpers import classification_csv

PASSWORD = "checks-password-123"


def own_user(stack, page: Page) -> str:
    """A fresh account for this test, so other tests' datasets never change what it sees."""
    name = f"checks_{uuid.uuid4().hex[:8]}"
    Accounts(Storage(stack.home)).add(name, PASSWORD)
    page.goto(stack.url)
    sign_in_form(page, name, PASSWORD)
    expect(page.get_by_role("button", name="Log out")).to_be_visible(timeout=30_000)
    wait_for_app(page)
    return name


def customers_csv(rows: int = 120) -> bytes:
    rng = np.random.default_rng(4)
    df = pd.DataFrame({"customer_id": rng.permutation(np.arange(50_000, 50_000 + rows)), "age": rng.integers(18, 80, rows)})
    df["spend"] = rng.normal(100, 30, rows).round(2)
    df["churned"] = np.where(df.spend + rng.normal(0, 20, rows) > 100, "yes", "no")
    return df.to_csv(index=False).encode()


def test_a_numeric_identifier_is_called_out_on_the_train_page_and_can_be_kept(stack, new_page, tmp_path):
    page = new_page()
    own_user(stack, page)
    go(page, "Datasets")
    data = tmp_path / "customers.csv"
    data.write_bytes(customers_csv())
    upload(page, data)
    expect(page.get_by_text("Stored customers.csv: 120 rows × 4 columns")).to_be_visible(timeout=60_000)

    go(page, "Train")
    expect(page.get_by_role("combobox", name=re.compile("^Target column"))).to_have_value("churned")
    warning = page.get_by_test_id("stAlertContentWarning").filter(has_text="looks like an identifier")
    expect(warning).to_have_text(
        re.compile(
            r"^'customer_id' looks like an identifier \(its name says identifier and every row has a different whole "
            r"number\), so it is left out"
        )
    )
    expect(page.get_by_text(re.compile(r"120 usable rows × 2 features"))).to_be_visible()

    # keep it after all: the check runs again with it as a feature, and the warning turns into a note
    keep = page.get_by_role("combobox", name="Identifier-like columns to use as features anyway")
    keep.click()
    page.get_by_role("option", name="customer_id").click()
    page.keyboard.press("Escape")
    wait_for_app(page)
    expect(page.get_by_text(re.compile(r"120 usable rows × 3 features"))).to_be_visible(timeout=60_000)
    expect(warning).to_have_count(0)
    expect(page.get_by_text("it is used as a feature, as you chose")).to_be_visible()


def test_knn_with_more_neighbours_than_rows_is_refused_before_launch(stack, new_page, tmp_path):
    page = new_page()
    own_user(stack, page)
    go(page, "Datasets")
    data = tmp_path / "small.csv"
    data.write_bytes(classification_csv(rows=30))
    upload(page, data)
    expect(page.get_by_text("Stored small.csv: 30 rows × 4 columns")).to_be_visible(timeout=60_000)

    go(page, "Train")
    page.get_by_role("combobox", name="Model").click()
    page.get_by_role("option", name="k-nearest neighbours (classification)").click()
    wait_for_app(page)
    start = page.get_by_role("button", name="Start training")
    expect(start).to_be_enabled()
    neighbours = page.get_by_role("spinbutton", name="n_neighbors")
    neighbours.fill("50")
    neighbours.press("Enter")
    wait_for_app(page)
    refusal = page.get_by_test_id("stAlertContentError")
    expect(refusal).to_have_text(
        re.compile(
            r"^'n_neighbors' is 50, but each fit sees only 24 rows \(30 rows with a target, less 6 test rows\).*"
            r"Use at most 24, or more rows\.$"
        ),
        timeout=60_000,
    )
    expect(start).to_be_disabled()

    neighbours.fill("24")
    neighbours.press("Enter")
    wait_for_app(page)
    expect(refusal).to_have_count(0, timeout=60_000)
    expect(start).to_be_enabled()

    # beyond the parameter's own range: refused on the page, never silently replaced by the last good value
    neighbours.fill("5000")
    neighbours.press("Enter")
    wait_for_app(page)
    expect(page.get_by_test_id("stAlertContentError")).to_have_text(
        re.compile(r"^'n_neighbors' must be between 1 and \d+; got 5000\. Change it to start the run\.$"), timeout=60_000
    )
    expect(neighbours).to_have_value("5000")
    expect(start).to_be_disabled()
