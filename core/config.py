"""Settings read from the environment once, with embedded defaults (see README 'Configuration')."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _int(name: str, default: int, minimum: int = 1) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"{name}={raw!r} is not a whole number; unset it or give e.g. {name}={default}") from None
    if value < minimum:
        raise SystemExit(f"{name}={value} must be at least {minimum}")
    return value


@dataclass(frozen=True)
class Settings:
    home: Path                  # the storage root: datasets, models, app state, Temporal's SQLite file
    app_address: str
    app_port: int
    temporal_port: int
    temporal_ui_port: int
    temporal_address: str       # empty: the launcher starts its own dev server
    namespace: str
    task_queue: str
    workers: int
    max_upload_mb: int
    max_columns: int = 1000             # widest dataset accepted at upload (columns of the header)
    max_cells: int = 50_000_000         # largest dataset accepted at upload (rows x columns), unless a caller's is lower
    max_fit_minutes: int = 60           # a fit estimated to take longer is refused before it starts

    @property
    def temporal_target(self) -> str:
        return self.temporal_address or f"127.0.0.1:{self.temporal_port}"

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024


def load_settings() -> Settings:
    home = Path(os.environ.get("TRAINEASY_HOME") or PROJECT_ROOT / "var").expanduser().resolve()
    return Settings(
        home=home,
        app_address=os.environ.get("TRAINEASY_APP_ADDRESS", "").strip() or "0.0.0.0",
        app_port=_int("TRAINEASY_APP_PORT", 8501),
        temporal_port=_int("TRAINEASY_TEMPORAL_PORT", 7233),
        temporal_ui_port=_int("TRAINEASY_TEMPORAL_UI_PORT", 8233),
        temporal_address=os.environ.get("TEMPORAL_ADDRESS", "").strip(),
        namespace=os.environ.get("TEMPORAL_NAMESPACE", "").strip() or "default",
        task_queue=os.environ.get("TRAINEASY_TASK_QUEUE", "").strip() or "traineasy",
        workers=_int("TRAINEASY_WORKERS", os.cpu_count() or 1),
        max_upload_mb=_int("TRAINEASY_MAX_UPLOAD_MB", 200),
        max_columns=_int("TRAINEASY_MAX_COLUMNS", 1000),
        max_cells=_int("TRAINEASY_MAX_CELLS", 50_000_000),
        max_fit_minutes=_int("TRAINEASY_MAX_FIT_MINUTES", 60),
    )
