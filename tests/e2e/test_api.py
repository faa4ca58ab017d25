"""The REST API over HTTP against the launched stack (`make run`'s API process, its Temporal server and worker):
upload, train, stream to completion, download and predict; list, metrics, cancel, retry; another user's 404,
a revoked token's 401, the 429 of a quota with Retry-After; and the example script of the README."""

from __future__ import annotations

import io
import json
import subprocess
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
import requests
import skops.io

from chaos.data import wide_csv
from core.api_tokens import ApiTokens
from core.audit import AuditLog
from core.config import PROJECT_ROOT, load_settings
from core.quotas import Quotas
from core.storage import Storage
from tests.e2e.api_client import Api, api_user, eventually
from tests.helpers import classification_csv

NEW_ROWS = b"age,income,city\n30,70.5,paris\n61,20.0,berlin\n"


@pytest.fixture(scope="module")
def ann(stack):
    return api_user(stack.home, stack.api_url, "ann")


@pytest.fixture(scope="module")
def ben(stack):
    return api_user(stack.home, stack.api_url, "ben")


@pytest.fixture(scope="module")
def trained(ann: Api):
    """Ann's dataset and a run on it, watched through the event stream until it closed."""
    dataset_id = ann.upload("shop.csv", classification_csv(rows=300))
    started = ann.ok(
        "POST", "/temporal/train", 202, json={"dataset_id": dataset_id, "target": "bought", "model": "logistic_regression"}
    )
    return dataset_id, started, ann.events(started["id"])


def test_upload_train_stream_download_and_predict(stack, ann: Api, trained):
    dataset_id, started, events = trained
    run_id = started["id"]
    assert started["kind"] == "train" and started["status_url"] == f"/api/v1/temporal/status/{run_id}"
    assert dataset_id in [d["dataset_id"] for d in ann.ok("GET", "/datasets")]
    assert ann.ok("GET", f"/datasets/{dataset_id}")["rows"] == 300
    # the stream: status events while it runs, the completed view, then the end
    names = [name for name, _ in events]
    assert names[-1] == "end" and events[-1][1] == {"status": "completed"}
    assert set(names[:-1]) == {"status"}
    last = events[-2][1]
    assert last["kind"] == "train" and last["status"] == "completed" and last["run"]["percent"] == 100.0
    assert {"accuracy", "balanced_accuracy"} <= set(last["run"]["metrics"])
    status = ann.ok("GET", f"/temporal/status/{run_id}")
    assert status["run"]["metrics"] == last["run"]["metrics"] and status["run"]["request"]["model"] == "logistic_regression"
    # which worker process (pid@host) ran its fit is for administrators, as the health route's reasons are
    assert status["run"]["facts"]["worker"] is None and last["run"]["facts"]["worker"] is None
    assert status["run"]["facts"]["fit_seconds"] is not None

    # its registered model: listed, its card, the file itself loads with skops and predicts
    model = next(m for m in ann.ok("GET", "/models") if m["run_id"] == run_id)
    card = ann.ok("GET", f"/models/{model['id']}/card")
    assert card["metrics"] == pytest.approx(model["metrics"]) and card["skops_trusted"]
    download = ann.get(f"/models/{model['id']}/download")
    assert download.status_code == 200 and download.headers["content-type"] == "application/octet-stream"
    assert f"logistic_regression-v{model['version']}.skops" in download.headers["content-disposition"]
    pipeline = skops.io.loads(download.content, trusted=card["skops_trusted"])
    assert set(pipeline.predict(pd.read_csv(io.BytesIO(NEW_ROWS)))) <= {"yes", "no"}

    # predict through a worker, as the Models page does: rows, notes, a preview, then the file
    result = ann.ok("POST", f"/models/{model['id']}/predict", files={"file": ("new.csv", NEW_ROWS, "text/csv")})
    assert result["rows"] == 2 and len(result["preview"]) == 2
    assert any("berlin" in note for note in result["notes"])  # a category never seen in training
    csv = ann.get(f"/predictions/{result['file']}")
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv") and "prediction" in csv.text

    # every call is in the audit log under ann, beside what the service itself recorded
    entries = AuditLog(Storage(stack.home)).query(actor="ann")
    calls = {(e.object, e.outcome) for e in entries if e.action == "api.call"}
    assert ("POST /api/v1/temporal/train", "ok") in calls and (f"GET /api/v1/models/{model['id']}/download", "ok") in calls
    assert {"upload", "launch", "download", "predict"} <= {e.action for e in entries}


def test_another_users_token_gets_404_on_the_run_model_and_dataset(ann: Api, ben: Api, trained):
    dataset_id, started, _ = trained
    run_id = started["id"]
    model_id = next(m["id"] for m in ann.ok("GET", "/models") if m["run_id"] == run_id)
    for method, path in [
        ("GET", f"/temporal/status/{run_id}"),
        ("GET", f"/temporal/stream/{run_id}"),
        ("DELETE", f"/temporal/cancel/{run_id}"),
        ("POST", f"/temporal/retry/{run_id}"),
        ("GET", f"/datasets/{dataset_id}"),
        ("GET", f"/models/{model_id}/card"),
        ("GET", f"/models/{model_id}/download"),
    ]:
        response = ben.request(method, path)
        assert response.status_code == 404, (method, path, response.text)
    train_on_anns = ben.post("/temporal/train", json={"dataset_id": dataset_id, "target": "bought", "model": "ridge"})
    assert train_on_anns.status_code == 404 and train_on_anns.json() == {"detail": "No such dataset."}
    predict = ben.post(f"/models/{model_id}/predict", files={"file": ("x.csv", NEW_ROWS, "text/csv")})
    assert predict.status_code == 404
    assert ben.ok("GET", "/temporal/workflows")["items"] == [] and ben.ok("GET", "/models") == []


def test_missing_bad_and_revoked_tokens_get_401(stack, ann: Api):
    url = f"{stack.api_url}/api/v1/me"
    assert requests.get(url, timeout=10).status_code == 401
    bad = requests.get(url, headers={"Authorization": "Bearer te_not-a-token"}, timeout=10)
    assert bad.status_code == 401 and bad.headers["www-authenticate"] == "Bearer"
    other = api_user(stack.home, stack.api_url, "ann")  # a second token of ann's
    me = other.ok("GET", "/me")
    assert me["user"] == "ann" and me["token_id"] != ann.ok("GET", "/me")["token_id"]
    ApiTokens(Storage(stack.home)).revoke("ann", me["token_id"])  # as the Account page's Revoke does
    assert other.get("/me").status_code == 401
    assert other.get("/datasets").status_code == 401
    assert ann.get("/me").status_code == 200  # her other token still works


def test_fields_out_of_bounds_are_422_naming_the_field(ann: Api, trained):
    dataset_id = trained[0]
    base = {"dataset_id": dataset_id, "target": "bought", "model": "logistic_regression"}
    cases = [
        ({**base, "test_size": 0.9}, ["body", "test_size"]),  # the spec's bound
        ({**base, "cv_folds": 1}, ["body", "cv_folds"]),  # the service's rule (0 or 2 to 10)
        ({**base, "model": "gpt"}, ["body", "model"]),
        ({**base, "target": "nope"}, ["body", "target"]),
        ({**base, "params": {"C": -1}}, ["body", "params"]),
    ]
    for body, loc in cases:
        response = ann.post("/temporal/train", json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["detail"][0]["loc"] == loc, response.text
    listing = ann.get("/temporal/workflows", params={"status": "sleeping"})
    assert listing.status_code == 422 and listing.json()["detail"][0]["loc"] == ["query", "status"]


def test_cancel_retry_and_a_batch_then_list_with_filters_and_cursor_and_metrics(ann: Api, trained):
    first_run = trained[1]["id"]
    big = ann.upload("big.csv", wide_csv(rows=20_000))
    long_run = {"dataset_id": big, "target": "bought", "model": "random_forest_classifier", "params": {"n_estimators": 400}}
    run_id = ann.ok("POST", "/temporal/train", 202, json=long_run)["id"]
    ann.wait(run_id, lambda s: s["run"]["stage"] in ("fit", "cv") or s["status"] != "running")
    assert ann.ok("DELETE", f"/temporal/cancel/{run_id}", 202)["id"] == run_id
    assert ann.wait(run_id, lambda s: s["status"] != "running")["status"] == "cancelled"
    assert ann.delete(f"/temporal/cancel/{run_id}").status_code == 409  # already finished

    # a retry: a new run with the original request, n_estimators edited, linked to it
    retried = ann.ok("POST", f"/temporal/retry/{run_id}", 202, json={"params": {"n_estimators": 10}})
    assert retried["retry_of"] == run_id and retried["id"] != run_id
    done = [e for name, e in ann.events(retried["id"]) if name == "status"][-1]
    assert done["status"] == "completed" and done["run"]["request"]["params"]["n_estimators"] == 10
    assert ann.post(f"/temporal/retry/{retried['id']}").status_code == 409  # completed: nothing to retry

    # a batch of two models, watched to its end; it has no failures to retry
    batch = ann.ok(
        "POST",
        "/temporal/batch-train",
        202,
        json={
            "dataset_id": trained[0],
            "target": "bought",
            "items": [{"model": "logistic_regression"}, {"model": "decision_tree_classifier"}],
        },
    )
    end = [e for name, e in ann.events(batch["id"]) if name == "status"][-1]
    assert end["kind"] == "batch" and end["status"] == "completed"
    assert sorted(c["status"] for c in end["batch"]["progress"]["children"]) == ["completed", "completed"]
    assert ann.post(f"/temporal/retry/{batch['id']}").status_code == 409

    # the list: filters, and a cursor through every page
    def listed(**params) -> list[str]:
        return [r["run_id"] for r in ann.ok("GET", "/temporal/workflows", params=params)["items"]]

    eventually(lambda: run_id in listed(status="cancelled"))
    assert listed(status="cancelled") == [run_id]
    assert listed(kind="batch") == [batch["id"]]
    assert set(listed(kind="train", model="random_forest_classifier")) == {run_id, retried["id"]}
    assert first_run in listed(dataset=trained[0], status="completed", model="logistic_regression")
    assert listed(started_after=(datetime.now(UTC) + timedelta(hours=1)).isoformat()) == []
    everything = set(listed(limit=200))
    assert {first_run, run_id, retried["id"], batch["id"]} <= everything
    paged, cursor = [], None
    while True:
        page = ann.ok("GET", "/temporal/workflows", params={"limit": 2, **({"cursor": cursor} if cursor else {})})
        assert len(page["items"]) <= 2
        paged += [r["run_id"] for r in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert sorted(paged) == sorted(everything) and len(paged) == len(set(paged))
    first_page = ann.ok("GET", "/temporal/workflows", params={"limit": 1})
    moved = ann.get("/temporal/workflows", params={"limit": 1, "kind": "batch", "cursor": first_page["next_cursor"]})
    assert moved.status_code == 422 and moved.json()["detail"][0]["loc"] == ["query", "cursor"]

    # metrics: counts by status, the success rate, durations by model, CPU seconds of the registered models
    metrics = eventually(lambda: (m := ann.ok("GET", "/temporal/metrics"))["runs_by_status"].get("completed", 0) >= 4 and m)
    assert metrics["scope"] == "ann" and metrics["runs_by_status"]["cancelled"] == 1
    assert metrics["batches_by_status"] == {"completed": 1}
    assert 0 < metrics["success_rate"] < 1
    assert {d["model"] for d in metrics["durations"]} >= {"logistic_regression", "random_forest_classifier"}
    assert metrics["cpu_seconds"] > 0 and metrics["models_registered"] == len(ann.ok("GET", "/models"))
    assert ann.get("/temporal/metrics", params={"everyone": "true"}).status_code == 403


def test_an_admin_may_ask_for_everyones_metrics(stack, ann: Api, trained):
    admin = api_user(stack.home, stack.api_url, "admin", role="admin")
    everyone = admin.ok("GET", "/temporal/metrics", params={"everyone": "true"})
    mine = ann.ok("GET", "/temporal/metrics")
    assert everyone["scope"] == "all"
    assert sum(everyone["runs_by_status"].values()) >= sum(mine["runs_by_status"].values())
    assert everyone["models_registered"] >= mine["models_registered"]


def test_a_quota_or_rate_limit_is_429_with_retry_after(stack):
    capped = api_user(stack.home, stack.api_url, "cap")
    Quotas(Storage(stack.home), load_settings()).set_override("cap", tasks_per_minute=1, launches_per_minute=1)
    dataset_id = capped.upload("a.csv", classification_csv(rows=100))
    again = capped.post("/datasets", files={"file": ("b.csv", classification_csv(rows=100), "text/csv")})
    assert again.status_code == 429, again.text
    assert 0 < int(again.headers["retry-after"]) <= 60 and "data tasks" in again.json()["detail"]
    body = {"dataset_id": dataset_id, "target": "bought", "model": "logistic_regression"}
    capped.ok("POST", "/temporal/train", 202, json=body)
    refused = capped.post("/temporal/train", json=body)
    assert refused.status_code == 429 and 0 < int(refused.headers["retry-after"]) <= 60
    assert "The next launch is allowed in" in refused.json()["detail"]
    refusals = AuditLog(Storage(stack.home)).query(actor="cap", action_prefix="launch", outcome="refused")
    assert refusals, "the service audited the refused launch"


def test_health_needs_no_token_and_holds_nothing_secret(stack):
    response = requests.get(f"{stack.api_url}/api/v1/temporal/health", timeout=30)
    body = response.json()
    assert response.status_code == (200 if body["state"] == "ok" else 503)
    assert {c["name"] for c in body["checks"]} >= {"temporal", "workers", "storage", "database"}
    text = response.text
    assert str(stack.home) not in text and "pid" not in text and ".log" not in text
    assert all(c["reason"] is None for c in body["checks"])  # free disk, busy slots...: for an administrator
    admin = api_user(stack.home, stack.api_url, "admin", role="admin")
    told = requests.get(f"{stack.api_url}/api/v1/temporal/health", headers=admin.headers, timeout=30).json()
    assert all(c["reason"] for c in told["checks"]) and str(stack.home) not in json.dumps(told)


def test_the_openapi_spec_and_docs_are_served_under_v1(stack):
    spec = requests.get(f"{stack.api_url}/openapi.json", timeout=30).json()
    assert spec["info"]["title"] == "TrainEasy API"
    for path in (
        "train",
        "batch-train",
        "status/{workflow_id}",
        "cancel/{workflow_id}",
        "workflows",
        "metrics",
        "health",
        "retry/{workflow_id}",
    ):
        assert f"/api/v1/temporal/{path}" in spec["paths"]
    train = spec["paths"]["/api/v1/temporal/train"]["post"]
    assert {"401", "404", "422", "429", "503"} <= set(train["responses"])
    assert "Retry-After" in train["responses"]["429"]["headers"]
    assert spec["components"]["schemas"]["TrainBody"]["examples"]
    assert requests.get(f"{stack.api_url}/docs", timeout=30).status_code == 200


def test_the_readme_example_uploads_trains_waits_and_downloads(stack, tmp_path):
    runner = api_user(stack.home, stack.api_url, "scripted")
    data = tmp_path / "shop.csv"
    data.write_bytes(classification_csv(rows=200, seed=4))
    env = {"PATH": "/usr/bin:/bin", "TRAINEASY_TOKEN": runner.token, "TRAINEASY_API": stack.api_url}
    out = subprocess.run(
        ["bash", str(PROJECT_ROOT / "examples" / "train_via_api.sh"), str(data), "bought", "logistic_regression", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "completed" in out.stdout and "metrics:" in out.stdout
    model = next(tmp_path.glob("model-*.skops"))
    card = next(tmp_path.glob("model-*.card.json"))
    assert model.stat().st_size > 0 and card.stat().st_size > 0


def test_a_batch_whose_runs_failed_waits_says_so_in_its_stream_and_finish_ends_it(ann: Api, trained):
    run = trained[1]["id"]
    # a class with a single row: the launch cannot see it (the profile counts classes, not their rows), the load
    # stage refuses it (the test split could leave it out of training), and the batch waits for a decision
    dataset_id = ann.upload("odd.csv", classification_csv(rows=200) + b"40,50.0,nice,maybe\n")
    body = {"dataset_id": dataset_id, "target": "bought", "items": [{"model": "logistic_regression"}, {"model": "gaussian_nb"}]}
    batch = ann.ok("POST", "/temporal/batch-train", 202, json=body)["id"]
    events = ann.events(batch)  # ends by itself: a script following it does not hang on the decision
    assert [name for name, _ in events][-2:] == ["awaiting", "end"] and events[-1][1] == {"status": "awaiting"}
    waiting = events[-2][1]["batch"]
    assert waiting["progress"]["phase"] == "awaiting"
    assert {c["status"] for c in waiting["progress"]["children"]} == {"failed"}
    assert ann.post(f"/temporal/finish/{run}").status_code == 422  # a run does not wait for a decision
    assert ann.post(f"/temporal/stop/{run}").status_code == 422
    assert ann.ok("POST", f"/temporal/finish/{batch}", 202)["id"] == batch
    done = ann.wait(batch, lambda s: s["status"] != "running")
    assert done["status"] == "completed"
    assert ann.post(f"/temporal/finish/{batch}").status_code == 409  # nothing waits any more
    assert ann.post(f"/temporal/stop/{batch}").status_code == 409


def test_a_target_the_model_cannot_learn_is_refused_at_launch(ann: Api, trained):
    for body in (
        {"dataset_id": trained[0], "target": "bought", "model": "ridge"},  # text for a regression
        {"dataset_id": trained[0], "target": "income", "model": "logistic_regression"},  # a float quantity
    ):
        refused = ann.post("/temporal/train", json=body)
        assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["body", "target"], refused.text
    batch = {"dataset_id": trained[0], "target": "bought", "items": [{"model": "ridge"}, {"model": "lasso"}]}
    assert ann.post("/temporal/batch-train", json=batch).status_code == 422


def test_the_catalog_gives_each_models_parameters_with_their_bounds(ann: Api):
    catalog = {m["key"]: m for m in ann.ok("GET", "/models/catalog")}
    trees = {p["name"]: p for p in catalog["random_forest_classifier"]["params"]}
    assert trees["n_estimators"]["type"] == "int" and trees["n_estimators"]["min"] >= 1 and trees["n_estimators"]["max"]
    assert all(p["choices"] for m in catalog.values() for p in m["params"] if p["type"] == "choice")
