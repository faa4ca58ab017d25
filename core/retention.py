"""Keep-last-N retention as a pure rule over registry records: what a given N deletes, and what it keeps.

Versions are counted per lineage (dataset, target, model): training on another dataset or for another
target never pushes a version out. Within a lineage the N newest versions stay; an older one stays too
when it carries a tag (a batch's "best of …"); and the last version of a lineage is never deleted.
The same function makes the preview and checks the confirmation, so what is shown is what goes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the registry imports this module; records are only read here
    from core.model_record import ModelRecord

MAX_KEEP = 1000


class RetentionError(ValueError):
    """Retention cannot be applied as asked; the message says why and is safe to show."""


@dataclass(frozen=True)
class RetentionPlan:
    keep_last: int
    delete: tuple[ModelRecord, ...]  # what applying this N removes, grouped by lineage, newest first
    tagged: tuple[ModelRecord, ...]  # past the newest N but kept because they carry a tag

    @property
    def ids(self) -> frozenset[int]:
        return frozenset(r.id for r in self.delete)

    @property
    def size_bytes(self) -> int:
        return sum(r.size_bytes for r in self.delete)


def check_keep(keep_last: int) -> int:
    if isinstance(keep_last, bool) or not isinstance(keep_last, int) or not 1 <= keep_last <= MAX_KEEP:
        raise RetentionError(f"Keep at least 1 and at most {MAX_KEEP} versions of each model.")
    return keep_last


def plan_retention(records: Iterable[ModelRecord], keep_last: int) -> RetentionPlan:
    """What keeping the `keep_last` newest versions of every lineage in `records` (one owner's) deletes."""
    check_keep(keep_last)
    lineages: dict[tuple[str, str, str], list[ModelRecord]] = defaultdict(list)
    for record in records:
        lineages[record.lineage].append(record)
    delete: list[ModelRecord] = []
    tagged: list[ModelRecord] = []
    for key in sorted(lineages):
        versions = sorted(lineages[key], key=lambda r: (r.version, r.id), reverse=True)
        older = versions[keep_last:]
        doomed = [r for r in older if not r.tags]
        if len(doomed) == len(versions):  # unreachable with N >= 1; the rule holds whatever N becomes
            doomed = doomed[1:]
        delete += doomed
        tagged += [r for r in older if r.tags]
    return RetentionPlan(keep_last, tuple(delete), tuple(tagged))
