"""`make run`: start Temporal (unless TEMPORAL_ADDRESS is set), the workers and Streamlit; stop them on Ctrl-C.

Each child runs in its own session so that Ctrl-C reaches the launcher only, which then stops the
children in reverse order. Logs go to <home>/logs/; a child that dies early gets its log tail printed.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import ssl
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from core.accounts import bootstrap_demo_accounts, read_demo_accounts
from core.config import PROJECT_ROOT, Settings, load_settings
from core.storage import Storage
from orchestration.codec import PayloadKeyError, load_key_ring
from orchestration.contracts import SEARCH_ATTRIBUTES

BIN = Path(sys.executable).parent
RESTART_WINDOW = 600.0  # seconds a worker must run for its crash count to start again


class LaunchError(Exception):
    """A start-up problem with one line telling the user what to do."""


@dataclass
class Child:
    name: str
    argv: list[str]
    log: Path
    proc: asyncio.subprocess.Process | None = None
    restarts: int = 0
    started: float = field(default_factory=time.monotonic)

    async def start(self, env: dict[str, str]) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv,
                cwd=PROJECT_ROOT,
                env=env,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL,
                start_new_session=True,
            )
        self.started = time.monotonic()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode if self.proc is not None else None

    async def stop(self, grace: float = 10.0) -> None:
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), grace)
        except TimeoutError:
            proc.kill()
            await proc.wait()


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False


def check_ports(settings: Settings) -> None:
    wanted = [("TRAINEASY_APP_PORT", settings.app_port)]
    if not settings.temporal_address:
        wanted += [("TRAINEASY_TEMPORAL_PORT", settings.temporal_port), ("TRAINEASY_TEMPORAL_UI_PORT", settings.temporal_ui_port)]
    for var, port in wanted:
        if not port_free(port, "0.0.0.0" if var == "TRAINEASY_APP_PORT" else "127.0.0.1"):
            raise LaunchError(
                f"Port {port} is already in use (is TrainEasy already running?). "
                f"Stop that process or choose another port: {var}=<port> make run"
            )


def step(message: str) -> float:
    print(f"  … {message}", end="", flush=True)
    return time.monotonic()


def done(started: float, note: str = "ready") -> None:
    print(f" {note} ({time.monotonic() - started:.1f}s)", flush=True)


async def wait_until(check, what: str, child: Child | None, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child is not None and not child.alive:
            raise LaunchError(f"{child.name} exited while starting; last lines of {child.log}:\n{child.tail()}")
        try:
            if await check():
                return
        except Exception:  # not up yet
            pass
        await asyncio.sleep(0.5)
    raise LaunchError(f"{what} did not become ready within {timeout:.0f}s; see {child.log if child else 'the logs'}")


def http_ok(url: str):
    # the health check only asks our own child on loopback whether it is up: no certificate check
    insecure = ssl._create_unverified_context() if url.startswith("https") else None

    async def check() -> bool:
        def get() -> bool:
            with urllib.request.urlopen(url, timeout=2, context=insecure) as resp:
                return resp.status == 200

        return await asyncio.to_thread(get)

    return check


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


class Stack:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.storage = Storage(settings.home)
        self.logs = settings.home / "logs"
        self.children: list[Child] = []
        self.env = {**os.environ, "TRAINEASY_HOME": str(settings.home), "PYTHONUNBUFFERED": "1"}

    def _child(self, name: str, argv: list[str]) -> Child:
        child = Child(name, argv, self.logs / f"{name}.log")
        self.children.append(child)
        return child

    async def start_temporal(self) -> None:
        s = self.settings
        if s.temporal_address:
            s_ = step(f"connecting to the Temporal server at {s.temporal_address} (TEMPORAL_ADDRESS)")
            await wait_until(self._temporal_ready, "Temporal", None, 60)
            done(s_)
            await self.set_retention()
            return
        s_ = step(f"starting Temporal dev server on 127.0.0.1:{s.temporal_port}")
        self.storage.temporal_db.parent.mkdir(parents=True, exist_ok=True)
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
            str(self.storage.temporal_db),
            "--namespace",
            s.namespace,
            "--ui-disable-news-fetch",
            "--log-level",
            "warn",
        ]
        for key in SEARCH_ATTRIBUTES:
            argv += ["--search-attribute", f"{key.name}=Keyword"]
        child = self._child("temporal", argv)
        await child.start(self.env)
        await wait_until(self._temporal_ready, "Temporal", child, 90)
        done(s_)
        await self.set_retention()

    async def set_retention(self) -> None:
        """Closed runs' histories are kept TRAINEASY_HISTORY_DAYS days (the dev server keeps 1). On an external
        server the namespace may be managed by someone else: if we may not change it, say so and go on."""
        from temporalio.service import RPCError

        from orchestration.client import ensure_history_retention

        days = self.settings.history_days
        try:
            if await ensure_history_retention(self.client, days):
                print(f"  … workflow history retention of namespace {self.settings.namespace!r} set to {days} days", flush=True)
        except RPCError as err:
            if not self.settings.temporal_address:
                raise LaunchError(f"Could not set the history retention to {days} days: {err.message}") from None
            print(
                f"  ! could not set the history retention of namespace {self.settings.namespace!r} to {days} "
                f"days ({err.message}); keeping the server's setting",
                flush=True,
            )

    async def _temporal_ready(self) -> bool:
        from orchestration.client import connect, ensure_search_attributes

        client = await asyncio.wait_for(connect(self.settings), 5)
        await ensure_search_attributes(client)  # no-op on the dev server; registers them on a cluster
        self.client = client
        return True

    async def start_workers(self) -> None:
        from orchestration.client import count_pollers

        n = self.settings.workers
        s_ = step(f"starting {n} worker process{'es' if n > 1 else ''}")
        workers = [self._child(f"worker-{i + 1}", [sys.executable, "-m", "workers"]) for i in range(n)]
        for w in workers:
            await w.start(self.env)

        async def polling() -> bool:
            if not all(w.alive for w in workers):
                dead = next(w for w in workers if not w.alive)
                raise LaunchError(f"{dead.name} exited while starting; last lines of {dead.log}:\n{dead.tail()}")
            return await count_pollers(self.client, self.settings.task_queue) >= n

        await wait_until(polling, "the workers", None, 120)
        done(s_)

    async def start_app(self) -> None:
        s = self.settings
        s_ = step(f"starting the Streamlit app on port {s.app_port}")
        argv, env = app_command(s)
        child = self._child("streamlit", argv)
        await child.start({**self.env, **env})
        await wait_until(
            http_ok(f"{'https' if s.tls else 'http'}://127.0.0.1:{s.app_port}/_stcore/health"), "Streamlit", child, 90
        )
        done(s_)

    async def supervise(self, stop: asyncio.Event) -> int:
        """Wait for Ctrl-C; restart a crashed worker, give up if the server or the app dies."""
        while not stop.is_set():
            for child in self.children:
                if child.alive:
                    continue
                if child.name.startswith("worker") and time.monotonic() - child.started > RESTART_WINDOW:
                    child.restarts = 0  # it ran fine for a while: an occasional crash is not a crash loop
                if child.name.startswith("worker") and child.restarts < 5:
                    child.restarts += 1
                    print(
                        f"  ! {child.name} exited (code {child.returncode}); restarting ({child.restarts}/5). Log: {child.log}",
                        flush=True,
                    )
                    await child.start(self.env)
                else:
                    print(
                        f"  ! {child.name} exited (code {child.returncode}); stopping. "
                        f"Last lines of {child.log}:\n{child.tail()}",
                        flush=True,
                    )
                    return 1
            try:
                await asyncio.wait_for(stop.wait(), 1.0)
            except TimeoutError:
                pass
        return 0

    async def stop(self) -> None:
        for child in reversed(self.children):
            await child.stop()


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


def codec_endpoint(settings: Settings) -> str:
    """The app's codec routes, under the same host name as the app's URL in the banner: the browser sends
    the login cookie only to the host the user signed in at (localhost and 127.0.0.1 are two hosts)."""
    return f"{app_url(settings)}/codec"


def banner(settings: Settings, created: dict | None, storage: Storage) -> str:
    lines = ["", "TrainEasy is running.", f"  App:          {app_url(settings)}"]
    if not settings.temporal_address:
        lines.append(f"  Temporal UI:  http://localhost:{settings.temporal_ui_port}")
    lines += [
        f"  Temporal:     {settings.temporal_target} (namespace {settings.namespace})",
        f"  Data:         {settings.home}",
        f"  Logs:         {settings.home / 'logs'}",
    ]
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
        starting.result()
        print(banner(settings, created, storage), flush=True)
        rc = await stack.supervise(stop)
    except LaunchError as err:
        print(f"\nerror: {err}", file=sys.stderr, flush=True)
    finally:
        print("Stopping TrainEasy…", flush=True)
        await stack.stop()
        print("Stopped.", flush=True)
    return rc


async def _start_all(stack: Stack) -> None:
    await stack.start_temporal()
    await stack.start_workers()
    await stack.start_app()


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
