"""The data check's answers, kept per user, dataset version and exactly the settings the check reads, so a
form change that alters none of them (a learning rate, the seed) does not wait for a worker again."""

from __future__ import annotations

import copy
import json
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Hashable
from typing import Any

from core.datasets import DatasetInfo
from ml.model_spec import ModelSpec
from orchestration.contracts import CheckReport

CACHE_SIZE = 512  # answers kept in this process (least recently used go first)
CACHE_SECONDS = 15 * 60.0  # an answer is asked again after this long (the workers' settings may change)


def check_key(
    owner: str,
    dataset: DatasetInfo,
    target: str,
    spec: ModelSpec,
    params: dict[str, Any],
    cv_folds: int,
    test_size: float,
    include: Collection[str],
) -> Hashable:
    """Exactly what ml.guardrails.assess_data reads: the user, the dataset's content and upload (a new upload
    of the same name is another dataset; a re-upload after a delete has a new time), the target, the model,
    the parameters the check reads (ModelSpec.checked_params), the folds, the test split and the identifier
    columns kept as features."""
    return (
        owner,
        dataset.dataset_id,
        dataset.sha256,
        dataset.created_at,
        target,
        spec.key,
        json.dumps(spec.checked_params(params), sort_keys=True, default=str),
        int(cv_folds),
        float(test_size),
        tuple(sorted(set(include))),
    )


class CheckCache:
    """A small LRU of data-check reports with an age limit. Used from the service's event loop only."""

    def __init__(
        self, size: int = CACHE_SIZE, seconds: float = CACHE_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._size, self._seconds, self._clock = size, seconds, clock
        self._reports: OrderedDict[Hashable, tuple[float, CheckReport]] = OrderedDict()

    def get(self, key: Hashable) -> CheckReport | None:
        hit = self._reports.get(key)
        if hit is None:
            return None
        stored_at, report = hit
        if self._clock() - stored_at > self._seconds:
            del self._reports[key]
            return None
        self._reports.move_to_end(key)
        return copy.deepcopy(report)  # a caller may change its copy; the kept one stays as the worker said

    def put(self, key: Hashable, report: CheckReport) -> None:
        self._reports[key] = (self._clock(), copy.deepcopy(report))
        self._reports.move_to_end(key)
        while len(self._reports) > self._size:
            self._reports.popitem(last=False)

    def keys(self) -> list[Hashable]:
        return list(self._reports)

    def __len__(self) -> int:
        return len(self._reports)
