"""Storage made unwritable (`chattr +i`) during an upload, while a worker ingests one, and while a run fits (its model
folder), and a full disk (a filled tmpfs) under the uploads and the models folder: refused or failed at once in
plain words, nothing half-written, and the same action succeeds after."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from temporalio.client import Client

from chaos.accounting import Outcome, Tally, plain, tally
from chaos.data import SLOW_MODEL, small_csv, wide_csv
from chaos.disk_full import NEEDS_MOUNT, contents, full_disk, mount_works
from chaos.driver import Driver
from chaos.immutable import NEEDS, chattr_works, immutable
from core.accounts import User
from core.storage import make_private_dirs


def listing(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


async def most_attempts(client: Client, workflow_id: str) -> int:
    """The highest attempt any activity of the workflow was started with, from its history."""
    most = 0
    async for event in client.get_workflow_handle(workflow_id).fetch_history_events():
        if event.HasField("activity_task_started_event_attributes"):
            most = max(most, event.activity_task_started_event_attributes.attempt)
    return most


async def _refused_upload(driver: Driver, user: User, folder: Path, where: str, problems: list[str], notes: list[str]) -> None:
    """An upload while `folder` is immutable: refused in plain words, nothing left behind; accepted after."""
    # new bytes for each part: an upload of known bytes is answered from what is stored
    data = small_csv(seed=1 if where == "upload" else 2)
    make_private_dirs(folder)
    storage = driver.storage
    before = (listing(storage.upload_dir(user.name)), listing(storage.datasets_dir(user.name)))
    ids = {d.dataset_id for d in driver.service.list_datasets(user)}
    started = time.monotonic()
    with immutable(folder):
        try:
            await driver.service.upload_dataset(user, f"{where}.csv", data)
            problems.append(f"{where}: the upload was accepted while the storage was unwritable")
        except Exception as exc:
            message = str(exc)
            notes.append(f"{where}: refused after {time.monotonic() - started:.1f} s: {message!r}")
            if type(exc).__name__ != "UserError" or not plain(message, driver.home):
                problems.append(f"{where}: not refused in plain words: {type(exc).__name__}: {message!r}")
    after = (listing(storage.upload_dir(user.name)), listing(storage.datasets_dir(user.name)))
    if after != before or {d.dataset_id for d in driver.service.list_datasets(user)} != ids:
        problems.append(f"{where}: something was left behind: {before} -> {after}")
    if where == "ingest":
        newest = [wf.id async for wf in driver.client.list_workflows(f"Owner = '{user.name}' AND RunKind = 'ingest'", limit=1)]
        attempts = await most_attempts(driver.client, newest[0]) if newest else 0
        if attempts != 1:
            problems.append(f"ingest: the permanent error was tried {attempts} times, not once")
    try:
        await driver.service.upload_dataset(user, f"{where}.csv", data)
    except Exception as exc:
        problems.append(f"{where}: the same upload failed after chattr -i: {exc}")


async def unwritable_storage(driver: Driver) -> Tally:
    if not chattr_works(driver.stack.home):
        return Tally("storage", skipped=NEEDS)
    user = driver.add_user("chaos_disk")
    storage = driver.storage
    problems: list[str] = []
    notes: list[str] = []
    await _refused_upload(driver, user, storage.upload_dir(user.name), "upload", problems, notes)
    await _refused_upload(driver, user, storage.datasets_dir(user.name), "ingest", problems, notes)

    dataset_id = await driver.dataset(user, "wide.csv", wide_csv(rows=10_000))
    models = storage.user_dir(user.name) / "models"
    make_private_dirs(models)
    run_id = await driver.launch(user, dataset_id, SLOW_MODEL, n_estimators=150)
    fitting = False
    deadline = time.monotonic() + 120
    while not fitting and time.monotonic() < deadline:
        view = await driver.view(user, run_id)
        fitting = view is not None and view.running and view.stage == "fit"
        await asyncio.sleep(0.2)
    if not fitting:
        problems.append("save: the run was never seen fitting")
    frozen = time.monotonic()
    with immutable(models, *(p for p in models.iterdir() if p.is_dir())):
        failed = await driver.outcome(user, run_id, time.monotonic() + 180)
    took = time.monotonic() - frozen
    view = await driver.view(user, run_id)
    save = next((s for s in view.stages if s.name == "save"), None) if view else None
    notes.append(f"save: the run ended {failed.status} {took:.1f} s after its model folder was frozen: {failed.message!r}")
    if failed.status != "failed":
        problems.append(f"save: the run {failed.status} although its model folder was immutable")
    elif save is None or save.attempt != 1:
        problems.append(f"save: the permanent error was tried {save.attempt if save else '?'} times, not once")
    retry = await driver.launch(user, dataset_id, SLOW_MODEL, n_estimators=150)  # the same request again
    again = await driver.outcome(user, retry)
    if again.status != "completed" or again.models != 1:
        problems.append(f"save: launched again after chattr -i, the run ended {again.status} with {again.models} models")
    full = await _full_disk(driver, user, problems, notes)
    result = tally("storage", [failed, again, *full], driver.home)
    result.problems += problems
    result.notes += notes
    return result


async def _full_disk(driver: Driver, user: User, problems: list[str], notes: list[str]) -> list[Outcome]:
    """An upload into a full uploads folder, and a run whose model save meets a full models folder: "storage is
    full" in plain words, and nothing left behind in either folder."""
    storage = driver.storage
    if not mount_works(storage.root):
        notes.append(f"full disk: not tried ({NEEDS_MOUNT})")
        return []
    with full_disk(storage.upload_dir(user.name)) as uploads:
        before = contents(uploads)
        try:
            await driver.service.upload_dataset(user, "full.csv", small_csv(seed=3))
            problems.append("full disk: an upload into a full uploads folder was accepted")
        except Exception as exc:
            notes.append(f"full disk: the upload was refused: {str(exc)!r}")
            if type(exc).__name__ != "UserError" or "full" not in str(exc) or not plain(str(exc), driver.home):
                problems.append(f"full disk: the upload was not refused in plain words: {type(exc).__name__}: {exc!r}")
        if contents(uploads) != before:
            problems.append(f"full disk: the upload left {contents(uploads) - before} behind")
    dataset_id = await driver.dataset(user, "small.csv", small_csv())
    with full_disk(storage.user_dir(user.name) / "models") as models:
        run_id = await driver.launch(user, dataset_id)
        ended = await driver.outcome(user, run_id)
        left = contents(models)
    notes.append(f"full disk: the run whose model folder was full ended {ended.status}: {ended.message!r}")
    if ended.status != "failed" or "full" not in (ended.message or ""):
        problems.append(f"full disk: the model save did not fail as 'storage is full': {ended.status} {ended.message!r}")
    if left or ended.models:
        problems.append(f"full disk: the failed save left {sorted(left)} and {ended.models} registered versions")
    return [ended]
