"""What this app process last read of a user's runs and batches, for pages to answer from while Temporal
cannot be reached: the last view of each run or batch and the last lists, each with the time it was read,
and for finished runs what the model registry holds (their model, scores and parameters).
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from core.accounts import User
from core.model_record import ModelRecord
from core.registry import Registry
from orchestration.contracts import RunFacts, TrainRequest
from orchestration.views import BatchView, RunSummary, RunView

V = TypeVar("V")
PER_USER = 200  # views kept per user; the oldest read goes first


@dataclass(frozen=True)
class Known(Generic[V]):
    """A view as it was when read: `as_of` is when Temporal said so (for a registered model, when the model
    was registered: a finished run does not change)."""

    value: V
    as_of: datetime | None
    final: bool = False  # from the registry: the run is finished, the view will not change


class KnownViews:
    """Per user, the last value read under each key ("run:<id>", "runs", ...). Written on the client's loop,
    read from the pages' threads: guarded by a lock, and copied both ways so no one shares a view."""

    def __init__(self, per_user: int = PER_USER) -> None:
        self._lock = threading.Lock()
        self._per_user = per_user
        self._seen: dict[str, OrderedDict[str, Known[Any]]] = {}

    def remember(self, owner: str, key: str, value: object, as_of: datetime | None = None) -> None:
        known = Known(copy.deepcopy(value), as_of or datetime.now(UTC))
        with self._lock:
            views = self._seen.setdefault(owner, OrderedDict())
            views[key] = known
            views.move_to_end(key)
            while len(views) > self._per_user:
                views.popitem(last=False)

    def recall(self, owner: str, key: str) -> Known[Any] | None:
        with self._lock:
            views = self._seen.get(owner)
            known = views.get(key) if views is not None else None
        return None if known is None else Known(copy.deepcopy(known.value), known.as_of, known.final)

    def recall_all(self, owner: str, prefix: str) -> dict[str, Known[Any]]:
        """Every value of the owner's whose key starts with `prefix`, by key (copies)."""
        with self._lock:
            views = dict(self._seen.get(owner, {}))
        return {k: Known(copy.deepcopy(v.value), v.as_of, v.final) for k, v in views.items() if k.startswith(prefix)}


def _registered_at(record: ModelRecord) -> datetime | None:
    try:
        at = datetime.fromisoformat(record.created_at)
    except ValueError:
        return None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def view_from_model(record: ModelRecord) -> RunView:
    """A finished run as its registered model tells it: completed, its scores, what it was trained with."""
    card = record.card
    model = str(card.get("model") or record.name)
    costs = record.costs
    facts = RunFacts(
        fit_seconds=costs.get("fit_seconds"),
        cpu_seconds=costs.get("cpu_seconds"),
        peak_rss_mb=costs.get("peak_rss_mb"),
        model_id=record.id,
        model_name=record.name,
        model_version=record.version,
    )
    request = TrainRequest(
        owner=record.owner,
        dataset_id=record.dataset_id,
        target=record.target,
        model=model,
        params=dict(card.get("params") or {}),
        seed=card.get("seed", 42),
        test_size=card.get("test_size", 0.2),
        cv_folds=card.get("cv_folds", 0),
    )
    return RunView(
        record.run_id,
        "completed",
        model,
        record.dataset_id,
        record.target,
        started_at=None,
        duration_s=None,
        stage="done",
        percent=100.0,
        facts=facts,
        metrics=record.metrics,
        request=request,
    )


def _summary(view: RunView) -> RunSummary:
    return RunSummary(view.run_id, view.status, view.model, view.dataset_id, view.started_at, view.duration_s)


def summary_from_model(record: ModelRecord) -> RunSummary:
    return RunSummary(record.run_id, "completed", str(record.card.get("model") or record.name), record.dataset_id, None, None)


class KnownCalls:
    """Mixed into TrainEasyService: what it last read (`known`, filled by get_run, list_runs, get_batch and
    list_batches) and the registry's finished runs, read without Temporal."""

    known: KnownViews
    registry: Registry

    def known_run(self, user: User, run_id: str) -> Known[RunView] | None:
        """The last view read of the user's run, else (a finished run) the one its model gives."""
        found: Known[RunView] | None = self.known.recall(user.name, f"run:{run_id}")
        if found is not None and found.value.running:
            record = self.registry.by_run(user.name, run_id)  # it finished since: the registry knows
            if record is not None:
                return Known(view_from_model(record), _registered_at(record), final=True)
        if found is not None:
            return found
        record = self.registry.by_run(user.name, run_id)
        return None if record is None else Known(view_from_model(record), _registered_at(record), final=True)

    def known_runs(self, user: User) -> Known[list[RunSummary]]:
        """The user's last run list merged with every run of theirs read since (a run started after the list
        was read is in it, with its latest status), each run that registered a model marked completed, and
        the registered runs neither listed. As of the oldest read it rests on (None: the registry alone)."""
        listed: Known[list[RunSummary]] | None = self.known.recall(user.name, "runs")
        registered = {r.run_id: r for r in self.registry.list(user.name)}
        runs = {s.run_id: s for s in (listed.value if listed else [])}
        reads = [listed.as_of] if listed and listed.as_of else []
        for known in self.known.recall_all(user.name, "run:").values():
            view: RunView = known.value
            read_later = listed is None or not (known.as_of and listed.as_of) or known.as_of > listed.as_of
            if view.run_id not in runs or read_later:
                runs[view.run_id] = _summary(view)
                if known.as_of and view.run_id not in registered:
                    reads.append(known.as_of)
        for run_id, record in registered.items():
            if run_id not in runs:
                runs[run_id] = summary_from_model(record)
            elif runs[run_id].status == "running":
                runs[run_id].status = "completed"
        newest_first = sorted(runs.values(), key=lambda r: r.started_at or datetime.min.replace(tzinfo=UTC), reverse=True)
        return Known(newest_first, min(reads) if reads else None)

    def known_batch(self, user: User, batch_id: str) -> Known[BatchView] | None:
        found: Known[BatchView] | None = self.known.recall(user.name, f"batch:{batch_id}")
        return found

    def known_batches(self, user: User) -> Known[list[RunSummary]] | None:
        found: Known[list[RunSummary]] | None = self.known.recall(user.name, "batches")
        return found
