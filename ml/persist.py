"""Model files with skops: loading trusts only types from our own stack, never arbitrary pickles."""
from __future__ import annotations

import importlib
from pathlib import Path

import skops.io as sio

TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.")       # classes only: no functions such as numpy's runstring
TRUSTED_FUNCTIONS = {"ml.training.normalise_columns"}    # our own column step inside every pipeline


class UntrustedModelFile(ValueError):
    """The file asks for types outside the allow-list; it is refused, not loaded."""


def save_model(pipeline, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    sio.dump(pipeline, tmp)
    tmp.replace(path)


def load_model(path: Path):
    untrusted = sio.get_untrusted_types(file=path)
    refused = [t for t in untrusted if t not in TRUSTED_FUNCTIONS and not _is_library_class(t)]
    if refused:
        raise UntrustedModelFile(f"model file uses untrusted types: {', '.join(refused[:5])}")
    return sio.load(path, trusted=untrusted)


def _is_library_class(name: str) -> bool:
    if not name.startswith(TRUSTED_PREFIXES):
        return False
    module, _, attr = name.rpartition(".")
    try:
        return isinstance(getattr(importlib.import_module(module), attr), type)
    except (ImportError, AttributeError):
        return False
