"""The Models page in a real browser where only a browser shows the defect: Streamlit tells a multiselect's
options apart by their text, so two models both named "gaussian_nb v1" (two uploads of sales.csv) must be
offered under names of their own; and retention warns before it deletes a lineage's best score, which a
tag set on the page then keeps.

Models are registered straight into the stack's registry, as save_model does after a run (training in the
browser is covered by test_browser.py)."""

from __future__ import annotations

import re
import uuid

from playwright.sync_api import Locator, Page, expect

from core.datasets import DatasetInfo, ingest_csv
from core.model_record import ModelRecord
from core.registry import Registry
from core.storage import Storage
from tests.e2e.conftest import Stack, go, open_select, sign_in, wait_for_app
from tests.e2e.test_lifecycle import new_user, table_rows
from tests.helpers import classification_csv
from ui.labels import model_labels


def register(registry: Registry, owner: str, dataset: DatasetInfo, name: str, score: float) -> ModelRecord:
    model = registry.storage.root / f"upload-{uuid.uuid4().hex}.skops"
    model.write_bytes(b"m" * 2048)
    card = {
        "model": name,
        "task": "classification",
        "target": "bought",
        "dataset": {"id": dataset.dataset_id, "name": dataset.name, "rows": dataset.rows},
        "metrics": {"balanced_accuracy": score, "accuracy": round(score - 0.05, 2)},
        "params": {},
        "input_schema": [],
    }
    try:
        return registry.register(owner, name, f"train-{owner}-{uuid.uuid4().hex}", model, card)
    finally:
        model.unlink()


def options(page: Page, box: Locator) -> list[str]:
    """The texts of a select box's options (opened, read, closed again)."""
    open_select(page, box)
    found = [o.strip() for o in page.get_by_role("option").all_inner_texts()]
    page.keyboard.press("Escape")
    expect(page.get_by_role("option")).to_have_count(0)  # closed before the next box is opened
    return found


def choose(page: Page, box: Locator, option: str) -> None:
    open_select(page, box)
    page.get_by_role("option", name=option, exact=True).click()
    wait_for_app(page)


def test_compare_tells_two_gaussian_nb_v1_on_two_sales_csv_apart(stack: Stack, new_page):
    name, password = new_user(stack, "twins")
    storage = Storage(stack.home)
    first = ingest_csv(storage, name, classification_csv(rows=60, seed=11), "sales.csv", 2**20)
    second = ingest_csv(storage, name, classification_csv(rows=70, seed=12), "sales.csv", 2**20)
    registry = Registry(storage)
    low, high = register(registry, name, first, "gaussian_nb", 0.61), register(registry, name, second, "gaussian_nb", 0.93)
    uploaded = {first.dataset_id: first.created_at, second.dataset_id: second.created_at}
    labels = model_labels(registry.list(name), uploaded, with_data=True)
    assert labels[low.id] != labels[high.id] and all("gaussian_nb v1 · sales.csv (" in v for v in labels.values())

    page = new_page()
    sign_in(page, stack, name, password)
    go(page, "Models")
    # the model choice and the compare groups: one entry each, none shared
    model_options = options(page, page.get_by_role("combobox", name="Model", exact=True))
    assert len(model_options) == len(set(model_options)) == 2, model_options
    group = page.get_by_role("combobox", name="Compare", exact=True)
    groups = options(page, group)
    assert len(set(groups)) == 3 and "All classification models, any dataset (2)" in groups, groups
    choose(page, group, "All classification models, any dataset (2)")

    picked = page.get_by_test_id("stMultiSelect").filter(has_text="Models to compare")
    table = page.get_by_test_id("stDataFrame").nth(1)  # the comparison, under the models table
    expect(table.get_by_text("0.61", exact=True)).to_have_count(1)
    expect(table.get_by_text("0.93", exact=True)).to_have_count(1)
    # take both off, then choose the second: its own score, and the first is still offered
    picked.get_by_role("combobox").click()
    page.keyboard.press("Backspace")
    page.keyboard.press("Backspace")
    page.keyboard.press("Escape")
    wait_for_app(page)
    expect(table).to_have_count(0)
    choose(page, picked.get_by_role("combobox"), labels[high.id])
    page.keyboard.press("Escape")
    wait_for_app(page)
    expect(table.get_by_text("0.93", exact=True)).to_have_count(1)
    expect(table.get_by_text("0.61", exact=True)).to_have_count(0)
    expect(page.get_by_test_id("stPlotlyChart").filter(has_text="balanced accuracy by model")).to_be_visible()
    assert labels[low.id] in options(page, picked.get_by_role("combobox")), "the other gaussian_nb v1 is still offered"
    choose(page, picked.get_by_role("combobox"), labels[low.id])
    page.keyboard.press("Escape")
    wait_for_app(page)
    expect(table.get_by_text("0.61", exact=True)).to_have_count(1)
    expect(table.get_by_text("0.93", exact=True)).to_have_count(1)
    expect(page.get_by_test_id("stException")).to_have_count(0)


def test_retention_flags_the_best_version_and_a_tag_keeps_it(stack: Stack, new_page):
    name, password = new_user(stack, "keepbest")
    storage = Storage(stack.home)
    shop = ingest_csv(storage, name, classification_csv(rows=60), "shop.csv", 2**20)
    registry = Registry(storage)
    best, newer = register(registry, name, shop, "logistic_regression", 0.867), register(registry, name, shop, "rf", 0.5)
    newest = register(registry, name, shop, "logistic_regression", 0.7)  # v2: keeping the last 1 deletes v1, the best
    assert (best.version, newest.version, newer.version) == (1, 2, 1)

    page = new_page()
    sign_in(page, stack, name, password)
    go(page, "Models")
    keep = page.get_by_role("spinbutton", name="Versions to keep of each model, per dataset and target")
    keep.fill("1")
    keep.press("Enter")
    wait_for_app(page)
    page.get_by_role("button", name="Preview retention").click()
    wait_for_app(page)
    rows = table_rows(page)
    assert [(r[0], r[1], r[-1]) for r in rows] == [("logistic_regression", "1", "best score: 0.867 — will be deleted")], rows
    expect(page.get_by_text("1 of them is the best-scoring version of its model")).to_be_visible()
    page.get_by_role("button", name="Cancel, delete nothing").click()
    wait_for_app(page)

    # tag it on the page: retention keeps it
    choose(page, page.get_by_role("combobox", name="Model", exact=True), "logistic_regression v1")
    # the chosen version's own form (its key names the version): the previous version's form may still be on the
    # page while the rerun that swaps them is on its way, and text typed there is lost with it
    field = page.locator(f".st-key-new_tag_{best.id}").get_by_role("textbox", name="New tag")
    field.fill("keep: best")
    expect(field).to_have_value("keep: best")
    page.get_by_role("button", name="Add tag").click()
    wait_for_app(page)
    expect(page.locator(".st-key-model_tags")).to_contain_text("“keep: best”")
    assert registry.get(name, best.id).tags == ("keep: best",)  # type: ignore[union-attr]
    page.get_by_role("button", name="Preview retention").click()
    wait_for_app(page)
    expect(page.get_by_text("Nothing to delete")).to_be_visible()
    expect(page.get_by_text(re.compile(r"Kept because they are tagged: logistic_regression v1 \(keep: best\)"))).to_be_visible()
    expect(page.get_by_test_id("stException")).to_have_count(0)
