"""orchestration/payloads.py: dataclasses decode exactly as with temporalio's default converter (every contract
type, filled in field by field), fail the same way, and resolve their field types once per class."""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any

import pytest
from temporalio.converter import DataConverter, DefaultPayloadConverter

from core.config import load_settings
from ml import check_report
from orchestration import contracts
from orchestration.client import data_converter
from orchestration.payloads import PayloadConverter, _shape

TYPES = sorted(
    {
        c
        for m in (contracts, check_report)
        for c in vars(m).values()
        if isinstance(c, type) and dataclasses.is_dataclass(c) and c.__module__ == m.__name__
    },
    key=lambda c: c.__name__,
)


def sample(hint: Any, depth: int = 0) -> Any:
    """A value of `hint` with every field set (no defaults left), different from each type's default."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return sample(next(a for a in args if a is not type(None)), depth)
    if origin is list:
        return [sample(args[0], depth + 1), sample(args[0], depth + 1)]
    if origin is dict:
        return {"k": sample(args[1], depth + 1)}
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        hints = typing.get_type_hints(hint)
        return hint(**{f.name: sample(hints[f.name], depth + 1) for f in dataclasses.fields(hint) if f.init})
    return {str: "text", int: 7, float: 2.5, bool: True, Any: {"nested": [1, "two", None]}}[hint]


@pytest.mark.parametrize("cls", TYPES, ids=lambda c: c.__name__)
def test_every_contract_type_decodes_as_with_the_default_converter(cls: type) -> None:
    value = sample(cls)
    ours, default = PayloadConverter(), DefaultPayloadConverter()
    payloads = default.to_payloads([value])
    assert ours.to_payloads([value]) == payloads  # the same JSON out
    assert ours.from_payloads(payloads, [cls]) == default.from_payloads(payloads, [cls]) == [value]


def test_a_dict_from_before_a_type_decodes_into_it_and_unknown_keys_are_ignored() -> None:
    payloads = DefaultPayloadConverter().to_payloads([{"attempt": 2, "facts": {"rows": 5, "gone": 1}, "extra": "x"}])
    [result] = PayloadConverter().from_payloads(payloads, [contracts.StageResult])
    assert result == contracts.StageResult(2, contracts.RunFacts(rows=5))


@pytest.mark.parametrize(
    "raw",
    [
        {"attempt": "two"},  # a field of the wrong type
        {"attempt": 1, "facts": {"rows": "many"}},  # a nested one
        {"facts": {}},  # a required field missing
        {"attempt": 1, "facts": ["not", "an", "object"]},
    ],
)
def test_what_the_default_refuses_is_refused(raw: dict) -> None:
    payloads = DefaultPayloadConverter().to_payloads([raw])
    with pytest.raises(TypeError):
        DefaultPayloadConverter().from_payloads(payloads, [contracts.StageResult])
    with pytest.raises(TypeError):
        PayloadConverter().from_payloads(payloads, [contracts.StageResult])


def test_field_types_are_resolved_once_per_class() -> None:
    payloads = DefaultPayloadConverter().to_payloads([sample(contracts.RunProgress)])
    converter = PayloadConverter()
    converter.from_payloads(payloads, [contracts.RunProgress])
    before = _shape.cache_info()
    converter.from_payloads(payloads, [contracts.RunProgress])
    after = _shape.cache_info()
    assert after.misses == before.misses  # RunProgress, StageProgress, RunFacts: all from the cache
    assert after.hits - before.hits >= 2 + len(sample(contracts.RunProgress).stages)


def test_traineasy_clients_and_workers_use_it(tmp_path: Path) -> None:
    converter = data_converter(dataclasses.replace(load_settings(), home=tmp_path))
    assert converter.payload_codec is not None  # still encrypted
    value = sample(contracts.StageResult)
    payloads = converter.payload_converter.to_payloads([value])
    before = _shape.cache_info()
    assert converter.payload_converter.from_payloads(payloads, [contracts.StageResult]) == [value]
    assert _shape.cache_info().hits > before.hits  # decoded through DataclassFields
    assert DataConverter.default.payload_converter_class is not PayloadConverter  # other code keeps the SDK's
