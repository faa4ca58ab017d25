"""Model files with skops: loading trusts only types from our own stack, never arbitrary pickles."""
from __future__ import annotations

import importlib
from collections import OrderedDict
from pathlib import Path

import skops.io as sio

TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.")       # classes only: no functions such as numpy's runstring
TRUSTED_FUNCTIONS = {"ml.training.normalise_columns"}    # our own column step inside every pipeline


class UntrustedModelFile(ValueError):
    """The file asks for types outside the allow-list; it is refused, not loaded."""


# The last models this process wrote, keyed by file identity: the next stage of a run usually lands
# on the same worker (its only slot just freed), so it need not read back what it has just saved.
_RECENT: OrderedDict[tuple, object] = OrderedDict()
_RECENT_SIZE = 2


def _identity(path: Path) -> tuple:
    st = path.stat()
    return (str(path.resolve()), st.st_mtime_ns, st.st_size)


def save_model(pipeline, path: Path, remember: bool = False) -> None:
    """Write atomically. `remember` keeps the object for load_model in this process: only for a
    finished model, never for a checkpoint of a fit that goes on changing the object."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    sio.dump(pipeline, tmp)
    tmp.replace(path)
    if not remember:
        return
    _RECENT[_identity(path)] = pipeline
    while len(_RECENT) > _RECENT_SIZE:
        _RECENT.popitem(last=False)


def load_model(path: Path):
    """Load a model file, trusting only library classes and our own column step."""
    cached = _RECENT.get(_identity(path))
    if cached is not None:
        return cached
    return _load_file(path)


def _load_file(path: Path):
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
