"""What `python -m workers` sets before anything else: a bytecode cache even under PYTHONDONTWRITEBYTECODE (Temporal's
sandbox imports the workflow modules afresh for every run, and without a cache each run compiled their source again),
and one native thread per library before numpy loads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from core.config import PROJECT_ROOT

IMPORT_PROBE = "import sys; sys.path.insert(0, sys.argv[1]); import probe"


def _cache_after(folder: Path, code: str) -> list[str]:
    """The bytecode files a fresh interpreter under PYTHONDONTWRITEBYTECODE=1 leaves after running `code`, which
    imports probe.py from `folder`."""
    folder.mkdir()
    (folder / "probe.py").write_text("VALUE = 1\n")
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    subprocess.run([sys.executable, "-c", code, str(folder)], cwd=PROJECT_ROOT, env=env, check=True)
    cache = folder / "__pycache__"
    return [p.name.split(".")[0] for p in cache.iterdir()] if cache.is_dir() else []


def test_a_worker_writes_the_bytecode_cache_that_the_environment_would_not(tmp_path: Path) -> None:
    assert _cache_after(tmp_path / "plain", IMPORT_PROBE) == []  # the environment alone: no cache
    assert _cache_after(tmp_path / "worker", f"import workers.__main__; {IMPORT_PROBE}") == ["probe"]


def test_the_worker_module_sets_its_thread_limits_before_numpy_is_imported() -> None:
    code = "import os, sys, workers.__main__; print('numpy' in sys.modules, os.environ['OMP_NUM_THREADS'])"
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "1"]
