"""The names activities are registered under: the ones the committed histories hold, whatever the methods are
called (tests/workflows/test_replay.py replays those histories)."""

from __future__ import annotations

from orchestration.activities import activity_list
from orchestration.contracts import STAGES
from orchestration.workflows.training import STAGE_OF_ACTIVITY, activity_name


def test_registered_activity_names_stay_as_the_histories_hold_them(tmp_path):
    from core.storage import Storage
    from tests.helpers import test_settings

    training, data = activity_list(Storage(tmp_path), test_settings(tmp_path))
    assert [activity_name(fn) for fn in training] == [
        "load_and_validate",
        "preprocess_split",
        "cross_validate",
        "fit_model",
        "evaluate_model",
        "save_model",  # the method is register_model
        "discard_model",  # not a stage: undoes save_model when a cancel came while it ran
    ]
    assert [activity_name(fn) for fn in data] == ["ingest_dataset", "check_dataset", "predict", "tag_model", "discard_scratch"]


def test_each_stage_is_found_by_its_registered_activity_name():
    assert STAGE_OF_ACTIVITY["save_model"] == "save"
    assert sorted(STAGE_OF_ACTIVITY.values()) == sorted(STAGES)
