"""Settings read from the environment once, with embedded defaults (see README 'Configuration')."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
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


def _seconds(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SystemExit(f"{name}={raw!r} is not a number of seconds; unset it or give e.g. {name}={default:g}") from None
    if not 0 < value <= 3600:
        raise SystemExit(f"{name}={raw} must be more than 0 and at most 3600 seconds")
    return value


@dataclass(frozen=True)
class Settings:
    home: Path  # the storage root: datasets, models, app state, Temporal's SQLite file
    app_address: str
    app_port: int
    temporal_port: int
    temporal_ui_port: int
    temporal_address: str  # empty: the launcher starts its own dev server
    namespace: str
    task_queue: str
    workers: int
    max_upload_mb: int
    # per-user quotas (defaults; an admin can override them per user, see core/quota_overrides.py)
    max_runs_in_flight: int = 3  # training runs queued or running; a batch counts its parallel slots
    launches_per_minute: int = 10  # runs and batches started in any 60 s
    max_stored_mb: int = 2048  # datasets + models + predictions under the user's folder
    max_cells: int = 50_000_000  # rows x columns of one dataset
    max_columns: int = 1000  # widest dataset accepted at upload (columns of its header)
    max_fit_minutes: float = 60  # a fit estimated longer is refused; one running 2x longer is stopped
    tasks_per_minute: int = 120  # uploads, data checks and predictions (short workflows) in any 60 s
    history_days: int = 30  # how long Temporal keeps a closed workflow's history (namespace retention)
    codec_origins: tuple[str, ...] = ()  # browser origins (the Temporal UI) allowed to call the codec endpoint
    session_hours: int = 12  # a sign-in lasts this long (server-side; revoked at logout)
    tls_cert: str = ""  # certificate and key files: the app serves HTTPS when both are set
    tls_key: str = ""
    trusted_proxies: str = ""  # addresses whose X-Forwarded-For is believed (a reverse proxy in front)
    temporal_ui_url: str = ""  # the Temporal Web UI the run pages link to ("": no link)
    restart_backoff: float = 1.0  # the launcher's first wait before restarting a child; doubles per quick exit
    api_port: int = 8502  # the REST API (api/), beside the app on the same address

    @property
    def session_lifetime(self) -> timedelta:
        return timedelta(hours=self.session_hours)

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert and self.tls_key)

    @property
    def temporal_target(self) -> str:
        return self.temporal_address or f"127.0.0.1:{self.temporal_port}"

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024


def load_settings() -> Settings:
    home = Path(os.environ.get("TRAINEASY_HOME") or PROJECT_ROOT / "var").expanduser().resolve()
    ui_port = _int("TRAINEASY_TEMPORAL_UI_PORT", 8233)
    return Settings(
        home=home,
        app_address=os.environ.get("TRAINEASY_APP_ADDRESS", "").strip() or "127.0.0.1",
        app_port=_int("TRAINEASY_APP_PORT", 8501),
        temporal_port=_int("TRAINEASY_TEMPORAL_PORT", 7233),
        temporal_ui_port=ui_port,
        temporal_address=os.environ.get("TEMPORAL_ADDRESS", "").strip(),
        namespace=os.environ.get("TEMPORAL_NAMESPACE", "").strip() or "default",
        task_queue=os.environ.get("TRAINEASY_TASK_QUEUE", "").strip() or "traineasy",
        workers=_int("TRAINEASY_WORKERS", os.cpu_count() or 1, minimum=0),  # 0: they run elsewhere (docker-compose.yml)
        max_upload_mb=_int("TRAINEASY_MAX_UPLOAD_MB", 200),
        max_runs_in_flight=_int("TRAINEASY_MAX_RUNS_IN_FLIGHT", 3),
        launches_per_minute=_int("TRAINEASY_LAUNCHES_PER_MINUTE", 10),
        max_stored_mb=_int("TRAINEASY_MAX_STORED_MB", 2048),
        max_cells=_int("TRAINEASY_MAX_CELLS", 50_000_000),
        max_columns=_int("TRAINEASY_MAX_COLUMNS", 1000),
        max_fit_minutes=_int("TRAINEASY_MAX_FIT_MINUTES", 60),
        tasks_per_minute=_int("TRAINEASY_TASKS_PER_MINUTE", 120),
        history_days=_int("TRAINEASY_HISTORY_DAYS", 30),
        codec_origins=_origins(ui_port),
        session_hours=_int("TRAINEASY_SESSION_HOURS", 12),
        tls_cert=os.environ.get("TRAINEASY_TLS_CERT", "").strip(),
        tls_key=os.environ.get("TRAINEASY_TLS_KEY", "").strip(),
        trusted_proxies=os.environ.get("TRAINEASY_TRUSTED_PROXIES", "").strip(),
        temporal_ui_url=_temporal_ui_url(ui_port),
        restart_backoff=_seconds("TRAINEASY_RESTART_BACKOFF", 1.0),
        api_port=_int("TRAINEASY_API_PORT", 8502),
    )


def _temporal_ui_url(ui_port: int) -> str:
    """TRAINEASY_TEMPORAL_UI_URL, else the embedded dev server's UI (none when TEMPORAL_ADDRESS names another server)."""
    raw = os.environ.get("TRAINEASY_TEMPORAL_UI_URL", "").strip().rstrip("/")
    if raw or os.environ.get("TEMPORAL_ADDRESS", "").strip():
        return raw
    return f"http://localhost:{ui_port}"


def _origins(ui_port: int) -> tuple[str, ...]:
    """TRAINEASY_CODEC_ORIGINS (comma-separated), else the embedded Temporal UI under both local names."""
    raw = os.environ.get("TRAINEASY_CODEC_ORIGINS", "").strip()
    if raw:
        return tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip())
    return (f"http://localhost:{ui_port}", f"http://127.0.0.1:{ui_port}")
