"""Per-user quotas through a real Temporal server: in-flight and rate refusals start nothing, a batch holds
its parallel slots, uploads respect stored bytes, and one user's flood does not delay another user."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from temporalio import activity
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from core.accounts import User
from core.datasets import ingest_csv
from orchestration.contracts import BatchItem, BatchRequest, StageResult, TrainInput, TrainRequest
from orchestration.errors import Forbidden, QuotaExceeded, UserError
from orchestration.training_activities import TrainingActivities
from tests.helpers import classification_csv, eventually, running_workers


@pytest.fixture
def users():
    tag = uuid.uuid4().hex[:6]
    return User(f"qa_{tag}"), User(f"qb_{tag}")


def _dataset(service, user: User, rows: int = 200) -> str:
    """A dataset written straight to storage, so tests without a worker can launch runs."""
    return ingest_csv(service.storage, user.name, classification_csv(rows), "shop.csv", 10 * 2**20).dataset_id


def _request(user: User, dataset_id: str, model: str = "logistic_regression") -> TrainRequest:
    return TrainRequest(user.name, dataset_id, "bought", model)


async def _workflows(client, user: User, kind: str | None = None) -> set[str]:
    query = f"Owner = '{user.name}'" + (f" AND RunKind = '{kind}'" if kind else "")
    return {wf.id async for wf in client.list_workflows(query)}


async def _exactly(client, user: User, expected: set[str], kind: str | None = None) -> None:
    """Visibility is eventually consistent: wait until it shows the expected ones, then make sure that no
    other workflow of the user shows up."""

    async def seen():
        return (await _workflows(client, user, kind)) >= expected

    await eventually(seen, timeout=20, interval=0.2)
    await asyncio.sleep(1.0)
    assert await _workflows(client, user, kind) == expected


async def _terminate(client, *ids: str) -> None:
    for wid in ids:
        try:
            await client.get_workflow_handle(wid).terminate("test cleanup")
        except RPCError:
            pass  # already closed


async def test_launches_beyond_the_in_flight_limit_are_refused_and_start_nothing(client, service, users):
    alice, bob = users
    ds = _dataset(service, alice)
    accepted = []
    try:
        # no worker: the runs stay queued, and queued runs are in flight
        for _ in range(3):
            accepted.append(await service.start_training(alice, _request(alice, ds)))
        with pytest.raises(QuotaExceeded) as info:
            await service.start_training(alice, _request(alice, ds))
        err = info.value
        assert isinstance(err, UserError)
        assert (err.limit, err.used, err.allowed, err.retry_after_s) == ("max_runs_in_flight", 3, 3, None)
        assert "3 of 3 runs in flight" in str(err) and "frees up when one of them finishes" in str(err)
        with pytest.raises(QuotaExceeded, match="3 of 3 runs in flight"):
            await service.start_batch(alice, BatchRequest(alice.name, ds, "bought", [BatchItem("gaussian_nb")]))
        await _exactly(client, alice, set(accepted))
        usage = await service.usage(alice)
        assert usage.caption.startswith("3 of 3 runs in flight · 3 of 10 launches in the last minute")

        # another user has slots of their own
        accepted.append(await service.start_training(bob, _request(bob, _dataset(service, bob))))

        # a run that ends gives its slot back (the refresh reads its status from Temporal)
        await client.get_workflow_handle(accepted[0]).terminate("make room")
        assert (await service.usage(alice)).runs_in_flight == 2
        accepted.append(await service.start_training(alice, _request(alice, ds)))
    finally:
        await _terminate(client, *accepted)


async def test_a_launch_asks_temporal_about_open_runs_only_at_the_limit(client, service, users, monkeypatch):
    """With room left the ledger alone lets a launch through; at the limit its open entries are read from
    Temporal, so a run that ended frees its slot for the very next launch (no usage() call in between)."""
    alice, _ = users
    ds = _dataset(service, alice)
    refreshed: list[str] = []
    real = service._refresh_in_flight

    async def counted(owner: str) -> None:
        refreshed.append(owner)
        await real(owner)

    monkeypatch.setattr(service, "_refresh_in_flight", counted)
    accepted = []
    try:
        for _ in range(3):  # no worker: queued runs stay in flight
            accepted.append(await service.start_training(alice, _request(alice, ds)))
        assert refreshed == []
        await client.get_workflow_handle(accepted[0]).terminate("make room")
        accepted.append(await service.start_training(alice, _request(alice, ds)))  # 3 open entries, 1 closed
        assert refreshed == [alice.name]
        assert service.quotas.room(alice.name) == 0
    finally:
        await _terminate(client, *accepted)


async def test_two_processes_launching_at_once_both_get_the_room_a_closed_run_left(client, service, settings, users):
    """Limit 3, two open entries of which Temporal has closed one: two free slots. Two services (the pages' and the
    API's processes), each in its own thread and event loop, pass the ledger's room check together (a barrier
    holds both between it and their reservation); the one refused then asks Temporal, and both launches start."""
    import threading

    from temporalio.client import Client

    from orchestration.service import TrainEasyService

    alice, _ = users
    ds = _dataset(service, alice)
    accepted = [await service.start_training(alice, _request(alice, ds)) for _ in range(2)]
    await client.get_workflow_handle(accepted[0]).terminate("make room")
    assert service.quotas.room(alice.name) == 1  # the ledger alone still counts the terminated run
    barrier = threading.Barrier(2, timeout=10)
    results: list = []

    def launch() -> None:
        async def go() -> str:
            other = await Client.connect(
                client.service_client.config.target_host, namespace=client.namespace, data_converter=client.data_converter
            )
            svc = TrainEasyService(other, settings)
            real, waited = svc.quotas.stored_bytes, list[int]()

            def weighed_together(user: str) -> int:  # stored_bytes runs between room() and the reservation
                if not waited:
                    waited.append(barrier.wait())
                return real(user)

            svc.quotas.stored_bytes = weighed_together  # type: ignore[method-assign]  # the stand-in
            return await svc.start_training(alice, _request(alice, ds))

        try:
            results.append(asyncio.run(go()))
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            results.append(exc)

    threads = [threading.Thread(target=launch) for _ in range(2)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            await asyncio.to_thread(thread.join)
        accepted += [r for r in results if isinstance(r, str)]
        assert len(results) == 2 and all(isinstance(r, str) for r in results), results
    finally:
        await _terminate(client, *accepted)


async def test_launches_per_minute_refusal_says_when_the_next_is_allowed(client, service, users):
    alice, _ = users
    ds = _dataset(service, alice)
    service.quotas.set_override(alice.name, max_runs_in_flight=10, launches_per_minute=2)
    started = []
    try:
        for _ in range(2):
            started.append(await service.start_training(alice, _request(alice, ds)))
        with pytest.raises(QuotaExceeded) as info:
            await service.start_training(alice, _request(alice, ds))
        err = info.value
        assert err.limit == "launches_per_minute" and (err.used, err.allowed) == (2, 2)
        assert err.retry_after_s is not None and 30 <= err.retry_after_s <= 60
        assert f"The next launch is allowed in {err.retry_after_s} s." in str(err)
        assert (await service.usage(alice)).next_launch_in_s == err.retry_after_s
        await _exactly(client, alice, set(started))
        # once the minute has passed, the next launch goes through
        service.quotas.clock = lambda: time.time() + 61
        started.append(await service.start_training(alice, _request(alice, ds)))
    finally:
        await _terminate(client, *started)


async def test_a_batch_holds_its_parallel_slots_and_is_clamped_to_the_free_ones(client, service, users):
    alice, _ = users
    ds = _dataset(service, alice)
    items = [BatchItem("gaussian_nb"), BatchItem("logistic_regression"), BatchItem("decision_tree_classifier")]
    started = []
    try:
        started.append(await service.start_batch(alice, BatchRequest(alice.name, ds, "bought", items, max_parallel=2)))
        assert (await service.usage(alice)).runs_in_flight == 2
        started.append(await service.start_training(alice, _request(alice, ds)))
        assert (await service.usage(alice)).runs_in_flight == 3
        with pytest.raises(QuotaExceeded, match="3 of 3 runs in flight"):
            await service.start_batch(alice, BatchRequest(alice.name, ds, "bought", items, max_parallel=2))

        # one slot free: a batch asking for 3 at once starts with 1, and the request says so
        await client.get_workflow_handle(started.pop()).terminate("make room")
        request = BatchRequest(alice.name, ds, "bought", items, max_parallel=3)
        started.append(await service.start_batch(alice, request))
        assert request.max_parallel == 1
        history = await client.get_workflow_handle(started[-1]).fetch_history()
        payloads = history.events[0].workflow_execution_started_event_attributes.input.payloads
        (inp,) = await client.data_converter.decode(payloads)
        assert inp["request"]["max_parallel"] == 1, "the batch itself runs one child at a time"
        assert (await service.usage(alice)).runs_in_flight == 3
        # a batch with fewer items than max_parallel holds only as many slots as items
        await _terminate(client, *started)
        started.append(await service.start_batch(alice, BatchRequest(alice.name, ds, "bought", items[:1], max_parallel=8)))
        assert (await service.usage(alice)).runs_in_flight == 1
    finally:
        await _terminate(client, *started)


class _FailingStarts:
    """The real client, except that starting a workflow fails the way a refused RPC does."""

    def __init__(self, client) -> None:
        self._client = client

    def __getattr__(self, name):
        return getattr(self._client, name)

    async def start_workflow(self, *args, **kwargs):
        raise RPCError("refused by the server", RPCStatusCode.INVALID_ARGUMENT, b"")


async def test_a_failed_start_leaves_no_reservation(client, service, users):
    alice, _ = users
    ds = _dataset(service, alice)
    service.client = _FailingStarts(client)
    for _ in range(4):
        with pytest.raises(RPCError):
            await service.start_training(alice, _request(alice, ds))
    service.client = client
    usage = await service.usage(alice)
    assert (usage.runs_in_flight, usage.launches_last_minute) == (0, 0)


async def test_uploads_beyond_stored_bytes_and_data_task_floods_are_refused(client, settings, service, users):
    alice, _ = users
    service.quotas.set_override(alice.name, max_stored_mb=1, tasks_per_minute=3)
    big = classification_csv(rows=50_000)  # ~0.86 MB: fits in an empty 1 MB quota
    async with running_workers(client, settings):
        first = await service.upload_dataset(alice, "big.csv", big)
        stored = service.quotas.stored_bytes(alice.name)
        assert 0 < stored and stored + len(big) > 2**20, "the test data is sized for a second upload to overflow"
        with pytest.raises(QuotaExceeded) as info:
            await service.upload_dataset(alice, "again.csv", big)
        err = info.value
        assert err.limit == "max_stored_mb" and (err.used, err.asked, err.allowed) == (stored, len(big), 2**20)
        assert "already store" in str(err) and "of your 1 MB" in str(err) and "delete datasets or models" in str(err)
        assert not any(service.storage.upload_dir(alice.name).glob("*")), "nothing was staged"
        assert [d.dataset_id for d in service.list_datasets(alice)] == [first.dataset_id]

        # data tasks: 3 a minute here (the upload above was one); the next says when to try again. Each check
        # asks about another test split: a check asked again is answered from the service's cache, for free
        for size in (0.2, 0.3):
            await service.check_data(alice, first.dataset_id, "bought", "gaussian_nb", {}, test_size=size)
        with pytest.raises(QuotaExceeded) as info:
            await service.check_data(alice, first.dataset_id, "bought", "gaussian_nb", {}, test_size=0.4)
        retry = info.value.retry_after_s
        assert info.value.limit == "tasks_per_minute" and retry is not None and 1 <= retry <= 60
        assert f"Try again in {info.value.retry_after_s} s" in str(info.value)
        assert (await service.usage(alice)).tasks_last_minute == 3
    await _exactly(client, alice, await _workflows(client, alice, "ingest"), "ingest")
    assert len(await _workflows(client, alice, "ingest")) == 1 and len(await _workflows(client, alice, "check")) == 2


async def test_quota_admin_calls_need_an_admin(service, users):
    alice, bob = users
    admin = User("admin", ("admin",))
    with pytest.raises(Forbidden):
        service.set_quota_override(alice, alice.name, max_runs_in_flight=100)
    with pytest.raises(Forbidden):
        await service.quota_overview(alice, [bob.name])
    with pytest.raises(Forbidden):
        service.clear_quota_override(alice, alice.name)
    limits = service.set_quota_override(admin, alice.name, max_runs_in_flight=5)
    assert limits.max_runs_in_flight == 5 and limits.overridden == {"max_runs_in_flight"}
    with pytest.raises(UserError, match="runs in flight must be"):
        service.set_quota_override(admin, alice.name, max_runs_in_flight=0)
    with pytest.raises(UserError):
        service.set_quota_override(admin, "../etc", max_runs_in_flight=5)
    overview = await service.quota_overview(admin, [alice.name, bob.name])
    assert [u.limits.max_runs_in_flight for u in overview] == [5, 3]
    assert service.clear_quota_override(admin, alice.name).max_runs_in_flight == 3
    trail = [(e.actor, e.action, e.object, e.outcome) for e in reversed(service.audit.query(action_prefix="admin.quota"))]
    assert trail == [
        (alice.name, "admin.quota_set", alice.name, "refused"),
        (alice.name, "admin.quota_clear", alice.name, "refused"),
        ("admin", "admin.quota_set", alice.name, "ok"),
        ("admin", "admin.quota_set", alice.name, "refused"),
        ("admin", "admin.quota_set", "../etc", "refused"),
        ("admin", "admin.quota_clear", alice.name, "ok"),
    ]


FIT_SECONDS = 3.0  # every fit takes this long (plus the real fit): long enough that queueing shows


async def test_one_users_flood_does_not_delay_another_users_first_run(client, settings, service, users, monkeypatch):
    """Two training slots. Alice fires 10 launches: 3 are accepted. Bob's one run then finishes within his own
    solo duration plus one run's length (the run ahead of him on a busy slot) plus slack, measured here."""
    alice, bob = users
    real = TrainingActivities

    @activity.defn(name="fit_model")
    def slow_fit(inp: TrainInput) -> StageResult:
        time.sleep(FIT_SECONDS)  # not CPU: the two slots overlap even on a loaded machine
        return real(service.storage).fit_model(inp)

    # the real worker code with two training slots in this process (the SDK allows one worker per queue
    # per process); the fits sleep, so the two slots truly overlap
    monkeypatch.setattr("workers.worker.TRAIN_SLOTS", 2)
    async with running_workers(client, settings, {"fit_model": slow_fit}):
        ds_a = (await service.upload_dataset(alice, "a.csv", classification_csv())).dataset_id
        ds_b = (await service.upload_dataset(bob, "b.csv", classification_csv())).dataset_id

        async def duration(run_id: str) -> float:
            async def closed():
                d = await client.get_workflow_handle(run_id).describe()
                return d if d.status != WorkflowExecutionStatus.RUNNING else None

            desc = await eventually(closed, timeout=180, interval=0.2)
            assert desc.status == WorkflowExecutionStatus.COMPLETED
            return (desc.close_time - desc.start_time).total_seconds()

        solo = await duration(await service.start_training(bob, _request(bob, ds_b)))

        results = await asyncio.gather(
            *(service.start_training(alice, _request(alice, ds_a)) for _ in range(10)), return_exceptions=True
        )
        accepted = [r for r in results if isinstance(r, str)]
        refused = [r for r in results if isinstance(r, QuotaExceeded)]
        assert len(accepted) == 3 and len(refused) == 7, results
        assert all(r.limit == "max_runs_in_flight" for r in refused)

        contended = await duration(await service.start_training(bob, _request(bob, ds_b)))
        print(f"solo {solo:.2f}s, contended {contended:.2f}s")
        bound = solo + solo + max(3.0, 0.5 * solo)  # own run + one run ahead of it + slack for a loaded machine
        assert contended <= bound, f"bob waited: {contended:.1f}s, solo {solo:.1f}s, bound {bound:.1f}s"
        # without the quota, bob's run would queue behind all ten: about five run lengths on two slots
        assert contended < 4 * solo

        for run_id in accepted:
            await duration(run_id)
        assert (await service.usage(alice)).runs_in_flight == 0, "finished runs give their slots back"
