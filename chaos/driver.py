"""Driving a launched stack as its pages do: the service layer (TrainEasyService on a real client) for uploads,
launches and reads; each accepted launch followed to its Outcome; and `still_serving`, the check after a scenario."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field, replace

from temporalio.client import Client

from chaos.accounting import Outcome
from chaos.data import QUICK_MODEL, TARGET, small_csv
from chaos.stack import LaunchedStack
from core.accounts import Accounts, User, new_password
from core.config import Settings, load_settings
from core.quota_overrides import QuotaOverrides
from core.registry import Registry
from core.storage import Storage
from orchestration.client import connect
from orchestration.contracts import TrainRequest
from orchestration.health import check_health
from orchestration.health_checks import DEGRADED, DOWN
from orchestration.service import TrainEasyService
from orchestration.views import RunView

PROBE_USER = "chaos_probe"
RUN_DEADLINE = 240.0  # seconds an accepted launch gets to end, whatever the fault (generous on 2 cores)


@dataclass
class Driver:
    stack: LaunchedStack
    settings: Settings
    client: Client
    service: TrainEasyService
    datasets: dict[tuple[str, str], str] = field(default_factory=dict)  # (user, file name) -> dataset id

    @property
    def home(self) -> str:
        return str(self.stack.home)

    @property
    def storage(self) -> Storage:
        return Storage(self.stack.home)

    def models_of(self, owner: str, run_id: str) -> int:
        """How many versions the registry holds for this run."""
        return sum(1 for record in Registry(self.storage).list(owner) if record.run_id == run_id)

    def add_user(self, name: str, max_runs_in_flight: int = 10, launches_per_minute: int = 60) -> User:
        """An account (core.accounts, as the admin page adds one) with room for a scenario's launches."""
        accounts = Accounts(self.storage)
        if accounts.get(name) is None:
            accounts.add(name, new_password())
        QuotaOverrides(self.storage, self.settings).set_override(
            name, set_by="chaos", max_runs_in_flight=max_runs_in_flight, launches_per_minute=launches_per_minute
        )
        return User(name)

    async def dataset(self, user: User, filename: str, data: bytes) -> str:
        """The user's dataset from this file, uploaded once."""
        key = (user.name, filename)
        if key not in self.datasets:
            self.datasets[key] = (await self.service.upload_dataset(user, filename, data)).dataset_id
        return self.datasets[key]

    async def launch(self, user: User, dataset_id: str, model: str = QUICK_MODEL, **params: object) -> str:
        return await self.service.start_training(user, TrainRequest(user.name, dataset_id, TARGET, model, dict(params)))

    async def view(self, user: User, run_id: str) -> RunView | None:
        """The run page's view, or None while the service cannot answer (a fault in progress)."""
        try:
            return await asyncio.wait_for(self.service.get_run(user, run_id), 30)
        except Exception:
            return None

    async def outcome(self, user: User, run_id: str, deadline: float | None = None) -> Outcome:
        """Follow an accepted launch until it ends or the deadline (monotonic) passes, as its page would."""
        deadline = deadline or time.monotonic() + RUN_DEADLINE
        last: RunView | None = None
        while time.monotonic() < deadline:
            view = await self.view(user, run_id)
            last = view or last
            if view is not None and not view.running:
                return Outcome(run_id, user.name, view.status, self.models_of(user.name, run_id), view.error)
            await asyncio.sleep(1.0)
        if last is None:
            return Outcome(run_id, user.name, "unreadable", message="the service never answered for this run")
        return Outcome(run_id, user.name, "running", message=f"at stage {last.stage}")

    async def outcomes(self, runs: list[tuple[User, str]], deadline: float | None = None) -> list[Outcome]:
        deadline = deadline or time.monotonic() + RUN_DEADLINE
        return list(await asyncio.gather(*(self.outcome(user, run_id, deadline) for user, run_id in runs)))


async def open_driver(stack: LaunchedStack) -> Driver:
    settings = replace(load_settings(), home=stack.home, temporal_address=stack.temporal_address)
    client = await connect(settings)
    return Driver(stack, settings, client, TrainEasyService(client, settings))


async def reconnect(driver: Driver) -> Driver:
    """A fresh client and service on the same stack (after the launcher was started again)."""
    fresh = await open_driver(driver.stack)
    fresh.datasets = driver.datasets
    return fresh


async def still_serving(driver: Driver) -> tuple[list[str], list[str]]:
    """(what does not serve, what is degraded) after a scenario. Serving: the launcher is up, the app answers its
    health URL, the health check (orchestration.health.check_health) is not "down", and a fresh probe run
    completes with one model. A "degraded" check (a worker given up) is told, not failed."""
    stack = driver.stack
    if not stack.running:
        return [f"the launcher exited (code {stack.proc.returncode})"], []
    missing = [] if stack.app_healthy() else [f"the app does not answer {stack.url}/_stcore/health"]
    report = await check_health(driver.settings, driver.client)
    degraded = [f"health {report.state}: {' '.join(report.reasons)}"] if report.state == DEGRADED else []
    if report.state == DOWN:
        missing.append(f"the health check says down: {' '.join(report.reasons)}")
    try:
        probe = driver.add_user(PROBE_USER)
        dataset_id = await asyncio.wait_for(driver.dataset(probe, "probe.csv", small_csv()), 120)
        run_id = await asyncio.wait_for(driver.launch(probe, dataset_id), 60)
    except Exception as exc:
        return [*missing, f"a probe run could not be launched: {exc}"], degraded
    ended = await driver.outcome(probe, run_id, time.monotonic() + 120)
    if ended.status != "completed" or ended.models != 1:
        missing.append(f"the probe run {run_id} ended {ended.status} with {ended.models} models: {ended.message}")
    return missing, degraded
