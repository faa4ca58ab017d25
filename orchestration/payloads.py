"""Temporal's default payload conversion, with each dataclass's field types resolved once per process.

temporalio's `value_to_type` calls `typing.get_type_hints` on a dataclass every time it decodes one, and our
contract modules use `from __future__ import annotations`: every decode evaluated every field's annotation
string again, four fifths of decoding a stage's result. In the workflow sandbox, where `isinstance` and
`issubclass` go through Python wrappers, that was most of each workflow activation. The JSON is the same both
ways: histories, other SDKs and older workers are unaffected; only the decoding of dataclasses is faster.
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache
from typing import Any, get_type_hints

from temporalio.converter import (
    CompositePayloadConverter,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
    JSONTypeConverter,
    value_to_type,
)

_UNHANDLED = JSONTypeConverter.Unhandled


@lru_cache(maxsize=512)  # bounded: a sandbox that re-imports a module makes new classes of its dataclasses
def _shape(cls: type) -> tuple[tuple[dataclasses.Field, ...], dict[str, Any]]:
    return dataclasses.fields(cls), get_type_hints(cls)


class DataclassFields(JSONTypeConverter):
    """A dataclass from its JSON object, as `value_to_type` builds it (same checks, errors and `init=False`
    handling), with the field types looked up once per class instead of on every decode."""

    def to_typed_value(self, hint: type, value: Any) -> Any:
        if not (isinstance(hint, type) and dataclasses.is_dataclass(hint) and isinstance(value, dict)):
            return _UNHANDLED  # the default path, with its own errors
        fields, hints = _shape(hint)
        init_values: dict[str, Any] = {}
        later_values: dict[str, Any] = {}
        for field in fields:
            raw = value.get(field.name, dataclasses.MISSING)
            if raw is dataclasses.MISSING:
                continue  # a missing required field fails in the constructor below, as in value_to_type
            try:
                converted = value_to_type(hints[field.name], raw, (self,))
            except Exception as err:
                raise TypeError(f"Failed converting field {field.name} on dataclass {hint}") from err
            (init_values if field.init else later_values)[field.name] = converted
        obj = hint(**init_values)
        for name, converted in later_values.items():
            object.__setattr__(obj, name, converted)  # init=False fields are serialised: restored as value_to_type does
        return obj


class PayloadConverter(CompositePayloadConverter):
    """The default converters in their order, the JSON one decoding dataclasses through `DataclassFields`."""

    def __init__(self) -> None:
        fast = JSONPlainPayloadConverter(custom_type_converters=[DataclassFields()])
        super().__init__(
            *(
                fast if isinstance(c, JSONPlainPayloadConverter) else c
                for c in DefaultPayloadConverter.default_encoding_payload_converters
            )
        )
