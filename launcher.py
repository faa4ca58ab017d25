"""`make run`: start Temporal (unless TEMPORAL_ADDRESS is set), the workers, Streamlit and the REST API; stop them on Ctrl-C.

This module builds the children's command lines, checks the set-up and prints the banner; starting,
watching, restarting and stopping the children is supervisor.py.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from child_process import LaunchError
from core.accounts import bootstrap_demo_accounts, read_demo_accounts
from core.config import Settings, load_settings
from core.storage import Storage
from orchestration.codec import PayloadKeyError, load_key_ring
from orchestration.contracts import SEARCH_ATTRIBUTES
from orchestration.dev_server import dev_server_args
from orchestration.health import check_health
from readiness import port_free
from supervisor import Stack

BIN = Path(sys.executable).parent


def check_ports(settings: Settings) -> None:
    wanted = [("TRAINEASY_APP_PORT", settings.app_port), ("TRAINEASY_API_PORT", settings.api_port)]
    if not settings.temporal_address:
        wanted += [("TRAINEASY_TEMPORAL_PORT", settings.temporal_port), ("TRAINEASY_TEMPORAL_UI_PORT", settings.temporal_ui_port)]
    for var, port in wanted:
        if not port_free(port, "0.0.0.0" if var in ("TRAINEASY_APP_PORT", "TRAINEASY_API_PORT") else "127.0.0.1"):
            raise LaunchError(
                f"Port {port} is already in use (is TrainEasy already running?). "
                f"Stop that process or choose another port: {var}=<port> make run"
            )


def app_command(s: Settings) -> tuple[list[str], dict[str, str]]:
    """The web server's command line and the environment it needs on top of the launcher's."""
    argv = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "serve.py",
        "--server.port",
        str(s.app_port),
        "--server.address",
        s.app_address,
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--server.maxUploadSize",
        str(s.max_upload_mb),
        "--server.fileWatcherType",
        "none",
    ]
    if s.tls:
        argv += ["--server.sslCertFile", s.tls_cert, "--server.sslKeyFile", s.tls_key]
    # uvicorn believes X-Forwarded-For from 127.0.0.1 unless told otherwise (read before serve.py is
    # imported): any local process could then choose the address that sign-in throttling and the audit
    # log see. Only configured reverse proxies are believed.
    return argv, {"FORWARDED_ALLOW_IPS": s.trusted_proxies}


def api_command(s: Settings) -> tuple[list[str], dict[str, str]]:
    """The REST API's command line (api/__main__.py reads its address, port, TLS and trusted proxies itself)."""
    return [sys.executable, "-m", "api"], {}


def temporal_command(s: Settings, storage: Storage) -> list[str]:
    """The Temporal dev server's command line (when TEMPORAL_ADDRESS does not name a server to use)."""
    argv = [
        str(BIN / "temporal"),
        "server",
        "start-dev",
        "--ip",
        "127.0.0.1",
        "--port",
        str(s.temporal_port),
        "--ui-ip",
        "127.0.0.1",
        "--ui-port",
        str(s.temporal_ui_port),  # both on loopback only
        "--ui-codec-endpoint",
        codec_endpoint(s),  # the UI decrypts in the browser, via the app
        "--db-filename",
        str(storage.temporal_db),
        "--namespace",
        s.namespace,
        "--ui-disable-news-fetch",
        "--log-level",
        "warn",
    ]
    for key in SEARCH_ATTRIBUTES:
        argv += ["--search-attribute", f"{key.name}=Keyword"]
    return argv + dev_server_args(database_file=True)


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def exposure_warning(settings: Settings) -> str | None:
    """Passwords and session cookies cross the network in clear text when the app leaves loopback without TLS."""
    if settings.app_address in LOOPBACK or settings.tls:
        return None
    return (
        f"warning: the app listens on {settings.app_address} without TLS: passwords and session cookies cross "
        "the network unencrypted. Set TRAINEASY_TLS_CERT and TRAINEASY_TLS_KEY (see README, Security)."
    )


def app_url(settings: Settings) -> str:
    host = "localhost" if settings.app_address in ("0.0.0.0", "127.0.0.1") else settings.app_address
    return f"{'https' if settings.tls else 'http'}://{host}:{settings.app_port}"


def api_url(settings: Settings) -> str:
    return app_url(settings).rsplit(":", 1)[0] + f":{settings.api_port}"


def codec_endpoint(settings: Settings) -> str:
    """The app's codec routes, under the same host name as the app's URL in the banner: the browser sends
    the login cookie only to the host the user signed in at (localhost and 127.0.0.1 are two hosts)."""
    return f"{app_url(settings)}/codec"


def banner(settings: Settings, created: dict | None, storage: Storage, health: str = "") -> str:
    lines = ["", "TrainEasy is running.", f"  App:          {app_url(settings)}"]
    lines.append(f"  API:          {api_url(settings)}/api/v1 (docs: {api_url(settings)}/docs; tokens on the app's Account page)")
    if not settings.temporal_address:
        lines.append(f"  Temporal UI:  http://localhost:{settings.temporal_ui_port}")
    lines += [
        f"  Temporal:     {settings.temporal_target} (namespace {settings.namespace})",
        f"  Data:         {settings.home}",
        f"  Logs:         {settings.home / 'logs'}",
    ]
    if not settings.workers:
        lines.append("  Workers:      none here (TRAINEASY_WORKERS=0): runs wait for `python -m workers` started elsewhere")
    if health:  # the overall line of `python -m orchestration.health_check`
        lines.append(f"  {health}")
    if created:
        lines += ["", "Demo accounts (shown once; also in " + str(storage.demo_accounts_file) + ", mode 0600):"]
        lines += [f"  {name:<8} {role:<6} password: {pw}" for name, (role, pw) in created.items()]
    elif read_demo_accounts(storage):
        lines.append(
            f"  Accounts:     demo passwords are in {storage.demo_accounts_file} (as first set; a changed "
            "password is not written back)"
        )
    lines += ["", "Press Ctrl-C to stop everything.", ""]
    return "\n".join(lines)


async def launch() -> int:
    os.umask(0o077)  # datasets, models, the app and Temporal databases: readable by this account only
    settings = load_settings()
    storage = Storage(settings.home)
    check_ports(settings)
    settings.home.mkdir(parents=True, exist_ok=True)
    created = bootstrap_demo_accounts(storage)
    try:  # before any child starts, so that they all find the same key
        load_key_ring(settings.home)
    except PayloadKeyError as err:
        raise LaunchError(str(err)) from None
    if warning := exposure_warning(settings):
        print(warning, file=sys.stderr, flush=True)
    stack = Stack(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"Starting TrainEasy (data in {settings.home})", flush=True)
    rc = 1
    try:
        starting = asyncio.create_task(_start_all(stack))
        await asyncio.wait([starting, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            starting.cancel()
            print("\nStopped while starting.")
            return 130
        workers_later = starting.result()
        print(banner(settings, created, storage, await health_line(stack)), flush=True)
        rc = await stack.supervise(stop, workers_later)
    except LaunchError as err:
        print(f"\nerror: {err}", file=sys.stderr, flush=True)
    finally:
        print("Stopping TrainEasy…", flush=True)
        await stack.stop()
        print("Stopped.", flush=True)
    return rc


async def health_line(stack: Stack) -> str:
    """The overall line of the health check once everything started; a failing check never stops the launch."""
    try:
        return (await check_health(stack.settings, getattr(stack, "client", None))).line()
    except Exception as exc:
        return f"Health: not checked ({type(exc).__name__})"


async def _start_all(stack: Stack) -> list[str] | None:
    """Start everything; the workers' command line if they are to start later (TEMPORAL_ADDRESS does not answer:
    the app serves meanwhile and shows the outage), else None."""
    s = stack.settings
    workers = [sys.executable, "-m", "workers"]
    if not await stack.start_temporal(temporal_command(s, stack.storage)):
        print(
            f"  ! Temporal at {s.temporal_address} is not reachable; the app is up and shows it; workers start when it answers",
            flush=True,
        )
        await stack.start_app(*app_command(s))
        await stack.start_api(*api_command(s))
        return workers
    await stack.start_workers(workers)
    await stack.start_app(*app_command(s))
    await stack.start_api(*api_command(s))
    return None


def main() -> None:
    try:
        rc = asyncio.run(launch())
    except LaunchError as err:
        print(f"error: {err}", file=sys.stderr)
        rc = 2
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(rc)  # sdk-python #300: avoid a crash in interpreter teardown after using Temporal


if __name__ == "__main__":
    main()
