"""A stack started by `launcher.py` as `make run` starts it, on free ports in its own TRAINEASY_HOME, and what a
driver needs of it: its console, its state file (<home>/state/supervisor.json), its children's pids checked to
be the launcher's own, and Ctrl-C. Used by `make chaos` and by the browser and supervision tests."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.accounts import read_demo_accounts
from core.config import PROJECT_ROOT
from core.storage import Storage

READY = "TrainEasy is running."
Child = dict[str, Any]  # one child's entry in the launcher's state file


class StackError(AssertionError):
    """The launched stack is not as expected (exited, not ready, a pid that is not its child). An
    AssertionError, so that a test using the driver fails with its message like any failed assert."""


_GIVEN: set[int] = set()  # ports this process handed out: never twice


def free_port() -> int:
    """A free loopback port below the kernel's ephemeral range (32768 and up). The Temporal CLI takes its HTTP API
    and metrics ports as "any free port" (port 0) while it starts, and the kernel may hand it the port chosen here
    for its gRPC frontend before that is bound: the dev server then failed with "address already in use" (seen in
    CI). Ports from port 0 are never below the ephemeral range."""
    for port in random.sample(range(20_000, 32_000), 500):
        if port in _GIVEN:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:  # taken
                continue
        _GIVEN.add(port)
        return port
    raise RuntimeError("no free port between 20000 and 32000")


class LaunchedStack:
    """`python launcher.py` with TRAINEASY_HOME=`home` and free ports; started at once, ready after wait_ready()."""

    def __init__(self, home: Path, extra_env: dict[str, str] | None = None) -> None:
        self.home = home
        self.app_port, self.temporal_port, self.ui_port, self.api_port = free_port(), free_port(), free_port(), free_port()
        self.output = home / "launcher.out"
        self.env = {
            **os.environ,
            "TRAINEASY_HOME": str(home),
            "TRAINEASY_APP_PORT": str(self.app_port),
            "TRAINEASY_APP_ADDRESS": "127.0.0.1",
            "TRAINEASY_TEMPORAL_PORT": str(self.temporal_port),
            "TRAINEASY_TEMPORAL_UI_PORT": str(self.ui_port),
            "TRAINEASY_API_PORT": str(self.api_port),
            "TRAINEASY_WORKERS": "1",
        }
        self.env.pop("TEMPORAL_ADDRESS", None)
        self.env.update(extra_env or {})
        home.mkdir(parents=True, exist_ok=True)
        self.output.write_bytes(b"")
        self.proc = self._launch()

    def _launch(self) -> subprocess.Popen[bytes]:
        self.offset = self.output.stat().st_size  # where this launch's console output begins
        with open(self.output, "ab") as out:
            return subprocess.Popen(
                [sys.executable, "launcher.py"], cwd=PROJECT_ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )

    def restart(self, timeout: float = 240) -> None:
        """Ctrl-C, then `make run` again on the same home and ports (what an operator does to get a given-up child back)."""
        self.stop()
        self.proc = self._launch()
        self.wait_ready(timeout)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.app_port}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def temporal_address(self) -> str:
        return f"127.0.0.1:{self.temporal_port}"

    def text(self) -> str:
        """The launcher's console, all launches."""
        return self.output.read_text(errors="replace")

    def wait_ready(self, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if READY in self.text()[self.offset :]:
                return
            if self.proc.poll() is not None:
                raise StackError(f"launcher exited with {self.proc.returncode}:\n{self.text()}")
            time.sleep(0.5)
        raise StackError(f"launcher not ready in {timeout}s:\n{self.text()}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # what Ctrl-C does
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def passwords(self) -> dict[str, str]:
        return read_demo_accounts(Storage(self.home))

    # --- the launcher's children, from its state file ------------------------------------------
    def children(self) -> dict[str, Child]:
        return dict(json.loads(Storage(self.home).supervisor_state.read_text())["children"])

    def pid_of(self, name: str) -> int:
        """A running child's pid from the state file, checked to be the launcher's own child (never by name)."""
        child = self.children()[name]
        pid = child["pid"]
        if not pid:
            raise StackError(f"{name} has no pid: {child}")
        if parent_of(pid) != self.proc.pid:
            raise StackError(f"{name} (pid {pid}) is not a child of the launcher")
        return int(pid)

    def is_child(self, pid: int) -> bool:
        return parent_of(pid) == self.proc.pid

    def wait_for(self, name: str, check: Callable[[Child], bool], timeout: float = 120.0) -> Child:
        """`name`'s state-file entry once `check` holds; the launcher must stay up meanwhile."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise StackError(f"the launcher exited:\n{self.text()}")
            child = self.children()[name]
            if check(child):
                return child
            time.sleep(0.2)
        raise StackError(f"{name} not as expected within {timeout}s: {self.children()[name]}\n{self.text()[-4000:]}")

    def app_healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=5) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False


def parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def running_again(old_pid: int) -> Callable[[Child], bool]:
    return lambda c: c["state"] == "running" and c["pid"] not in (None, old_pid)
