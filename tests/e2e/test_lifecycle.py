"""The model lifecycle in a real browser: retention shows exactly what it would delete, can be backed out
of, and on confirmation keeps tagged versions and the last version per dataset; deleting a dataset shows
what depends on it first, then removes it from the list.

The models are registered in setup straight into the stack's registry (as the register_model activity does after a run):
training through the browser is covered by test_browser.py, and these tests are about what happens next.
"""

from __future__ import annotations

import re
import secrets
import uuid

from playwright.sync_api import Page, expect

from core.accounts import Accounts
from core.datasets import DatasetInfo, ingest_csv
from core.model_record import ModelRecord
from core.registry import Registry
from core.storage import Storage
from tests.e2e.conftest import Stack, go, sign_in, wait_for_app
from tests.helpers import classification_csv


def new_user(stack: Stack, prefix: str) -> tuple[str, str]:
    """A fresh account, so what other browser tests stored cannot change what these see."""
    name, password = f"{prefix}_{uuid.uuid4().hex[:8]}", secrets.token_urlsafe(16)
    Accounts(Storage(stack.home)).add(name, password)
    return name, password


def register(registry: Registry, owner: str, dataset: DatasetInfo, tags: tuple[str, ...] = ()) -> ModelRecord:
    model = registry.storage.root / f"upload-{uuid.uuid4().hex}.skops"
    model.write_bytes(b"m" * 2048)
    card = {
        "model": "logistic_regression",
        "model_label": "Logistic regression",
        "task": "classification",
        "target": "bought",
        "dataset": {"id": dataset.dataset_id, "name": dataset.name, "sha256": dataset.sha256, "rows": dataset.rows},
        "metrics": {"balanced_accuracy": 0.81, "accuracy": 0.83},
        "params": {},
        "input_schema": [],
    }
    try:
        return registry.register(owner, "logistic_regression", f"train-{owner}-{uuid.uuid4().hex}", model, card, tags)
    finally:
        model.unlink()


def table_rows(page: Page) -> list[list[str]]:
    expect(page.get_by_test_id("stTable").locator("tbody tr").first).to_be_visible()  # the table is drawn (loaded lazily)
    return [
        [cell.inner_text().strip() for cell in row.locator("td").all()]
        for row in page.get_by_test_id("stTable").locator("tbody tr").all()
    ]


def test_retention_preview_then_tagged_and_per_dataset_versions_are_kept(stack, new_page):
    name, password = new_user(stack, "retain")
    storage = Storage(stack.home)
    shop = ingest_csv(storage, name, classification_csv(rows=60), "shop.csv", 2**20)
    other = ingest_csv(storage, name, classification_csv(rows=60, seed=4), "other.csv", 2**20)
    registry = Registry(storage)
    on_shop = [register(registry, name, shop, ("best of batch-demo",) if i == 0 else ()) for i in range(4)]
    only_on_other = register(registry, name, other)
    assert [m.version for m in on_shop] == [1, 2, 3, 4] and only_on_other.version == 1

    page = new_page()
    sign_in(page, stack, name, password)
    go(page, "Models")
    keep = page.get_by_role("spinbutton", name="Versions to keep of each model, per dataset and target")
    keep.fill("1")
    keep.press("Enter")
    wait_for_app(page)
    page.get_by_role("button", name="Preview retention").click()
    wait_for_app(page)

    # the preview: exactly v3 and v2 on shop.csv; the tagged v1 is named as kept; other.csv's only v1 is not there
    expect(page.get_by_text("Keeping the last 1 would delete these 2 version(s)")).to_be_visible()
    rows = table_rows(page)
    assert [(r[0], r[1], r[2], r[3], r[4]) for r in rows] == [
        ("logistic_regression", "3", "shop.csv", "bought", "balanced accuracy"),
        ("logistic_regression", "2", "shop.csv", "bought", "balanced accuracy"),
    ], rows
    assert all(r[5] == "0.81" and re.fullmatch(r"\d+ (s|min)", r[6]) for r in rows), rows
    expect(
        page.get_by_text("Kept because they are tagged: logistic_regression v1 · shop.csv → bought (best of batch-demo)")
    ).to_be_visible()
    assert len(registry.list(name)) == 5, "nothing is deleted by a preview"

    # backing out deletes nothing
    page.get_by_role("button", name="Cancel, delete nothing").click()
    wait_for_app(page)
    expect(page.get_by_test_id("stTable")).to_have_count(0)
    assert len(registry.list(name)) == 5

    # preview again and confirm: exactly the two shown go
    page.get_by_role("button", name="Preview retention").click()
    wait_for_app(page)
    page.get_by_role("button", name="Delete these 2 version(s)").click()
    wait_for_app(page)
    expect(page.get_by_text(re.compile(r"Deleted 2 version\(s\); \d+\.\d KB freed\."))).to_be_visible()
    assert {m.id for m in registry.list(name)} == {on_shop[0].id, on_shop[3].id, only_on_other.id}
    assert not registry.model_dir(on_shop[1]).exists() and registry.model_dir(on_shop[0]).exists()
    expect(page.get_by_test_id("stException")).to_have_count(0)

    # the same N again has nothing left to delete
    page.get_by_role("button", name="Preview retention").click()
    wait_for_app(page)
    expect(page.get_by_text("Nothing to delete")).to_be_visible()


def test_deleting_a_dataset_shows_its_dependents_then_removes_it(stack, new_page):
    name, password = new_user(stack, "dsdel")
    storage = Storage(stack.home)
    doomed = ingest_csv(storage, name, classification_csv(rows=80, seed=7), "doomed.csv", 2**20)
    stays = ingest_csv(storage, name, classification_csv(rows=70, seed=8), "stays.csv", 2**20)
    registry = Registry(storage)
    model = register(registry, name, doomed, ("best of batch-demo",))

    page = new_page()
    sign_in(page, stack, name, password)
    go(page, "Datasets")
    expect(page.get_by_test_id("stDataFrame").first.get_by_text("doomed.csv", exact=True)).to_have_count(1)
    page.get_by_role("combobox", name="Profile of").click()
    page.get_by_role("option", name="doomed.csv").click()
    wait_for_app(page)
    page.get_by_role("button", name="Delete doomed.csv…").click()
    wait_for_app(page)

    # what depends on it, before anything is deleted
    expect(page.get_by_text("1 model(s) were trained on this dataset")).to_be_visible()
    rows = table_rows(page)
    assert [(r[0], r[1], r[3]) for r in rows] == [("logistic_regression v1", "bought", "best of batch-demo")], rows
    expect(page.get_by_text("This cannot be undone")).to_be_visible()
    assert storage.dataset_dir(name, doomed.dataset_id).is_dir()

    page.get_by_role("button", name="Delete doomed.csv", exact=True).click()
    wait_for_app(page)
    expect(page.get_by_text(re.compile(r"Deleted doomed\.csv; \d+\.\d KB freed\. You now store"))).to_be_visible()
    # gone from the list (the table's cells are in the DOM for screen readers) and from the choice
    datasets_table = page.get_by_test_id("stDataFrame").first
    expect(datasets_table.get_by_text("stays.csv", exact=True)).to_have_count(1)
    expect(datasets_table.get_by_text("doomed.csv", exact=True)).to_have_count(0)
    expect(page.get_by_role("combobox", name="Profile of")).to_have_value("stays.csv")
    assert not storage.dataset_dir(name, doomed.dataset_id).exists()
    assert storage.dataset_dir(name, stays.dataset_id).is_dir()
    assert registry.get(name, model.id) is not None, "the model trained on it stays"
    expect(page.get_by_test_id("stException")).to_have_count(0)
