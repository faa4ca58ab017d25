"""The activity list a worker registers: training stages on the main queue, data tasks on the I/O queue."""

from __future__ import annotations

from core.config import Settings
from core.storage import Storage
from orchestration.data_activities import DataActivities
from orchestration.training_activities import TrainingActivities


def activity_list(storage: Storage, settings: Settings | None = None) -> tuple[list, list]:
    """(training activities, data activities) bound to one storage root and the worker's settings. A failed
    run's clean-up (discard_scratch) is quick file work: on the I/O queue, so it never waits behind a fit."""
    t, d = TrainingActivities(storage, settings), DataActivities(storage, settings)
    return (
        [
            t.load_and_validate,
            t.preprocess_split,
            t.cross_validate,
            t.fit_model,
            t.evaluate_model,
            t.register_model,
            t.discard_model,
        ],
        [d.ingest_dataset, d.check_dataset, d.predict, d.tag_model, t.discard_scratch],
    )
