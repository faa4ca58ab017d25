"""orchestration.model_calls without a server: the prediction preview shows true values (the file stays
formula-safe), tags are added and taken off through audited calls, and deleted datasets keep their names."""

from __future__ import annotations

import json

import pytest

from core.accounts import User
from core.audit import AuditLog
from core.registry import Registry
from core.storage import Storage, write_atomic
from orchestration.data_activities import preview_file
from orchestration.errors import NotFound, UserError
from orchestration.model_calls import ModelCalls


class Calls(ModelCalls):
    def __init__(self, storage: Storage) -> None:
        self.storage, self.registry, self.audit = storage, Registry(storage), AuditLog(storage)


@pytest.fixture
def calls(tmp_path):
    return Calls(Storage(tmp_path))


ALICE, BOB = User("alice"), User("bob")


def test_the_preview_shows_what_was_predicted_not_the_csv_escaping(calls):
    folder = calls.storage.user_dir("alice") / "predictions"
    csv = folder / "0123456789abcdef.csv"
    write_atomic(csv, b"comment,prediction\r\n'+cmd,yes\r\n'=1+1,no\r\n")  # what a spreadsheet may open
    write_atomic(
        preview_file(csv),
        json.dumps([{"comment": "+cmd", "prediction": "yes"}, {"comment": "=1+1", "prediction": "no"}]).encode(),
    )
    rows = calls.prediction_preview(ALICE, csv.name)
    assert [r["comment"] for r in rows] == ["+cmd", "=1+1"]  # the true values, shown as text by st.dataframe
    assert not preview_file(csv).exists()  # read once: the page keeps it, the folder does not
    assert calls.prediction_file(ALICE, csv.name).startswith(b"comment,prediction\r\n'+cmd")  # the download stays safe
    with pytest.raises(NotFound):
        calls.prediction_preview(BOB, csv.name)


def _model(calls, dataset="d1"):
    f = calls.storage.root / "m.skops"
    f.write_bytes(b"m")
    card = {"task": "classification", "dataset": {"id": dataset, "name": "shop.csv"}, "target": "y", "metrics": {}}
    return calls.registry.register("alice", "rf", f"train-alice-{dataset.encode().hex():0>32}", f, card)


def test_tags_are_added_and_taken_off_and_audited(calls):
    model = _model(calls)
    assert calls.tag_model(ALICE, model.id, "  keep   this ").tags == ("keep this",)
    assert calls.untag_model(ALICE, model.id, "keep this").tags == ()
    with pytest.raises(UserError, match="Write a tag"):
        calls.tag_model(ALICE, model.id, "   ")
    with pytest.raises(UserError, match="at most 40"):
        calls.tag_model(ALICE, model.id, "x" * 41)
    with pytest.raises(NotFound):
        calls.tag_model(BOB, model.id, "mine")
    actions = [(e.action, e.outcome) for e in calls.audit.query(actor="alice")]
    assert ("tag", "ok") in actions and ("untag", "ok") in actions and ("tag", "refused") in actions


def test_deleted_datasets_keep_their_names(calls):
    _model(calls, "d1")
    calls.registry.remember_deleted_dataset("alice", "d9", "sales.csv")
    assert calls.known_dataset_names(ALICE) == {"d1": "shop.csv", "d9": "sales.csv"}


def test_a_model_whose_file_is_gone_is_not_found_without_the_servers_path(calls):
    record = _model(calls)
    calls.registry.model_file(record).unlink()  # a retention clean-up at the same moment
    with pytest.raises(NotFound) as gone:
        calls.model_download(ALICE, record.id)
    assert "gone" in str(gone.value) and str(calls.storage.root) not in str(gone.value)
