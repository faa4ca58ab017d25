"""schemathesis against the running API's own /openapi.json: generated requests (valid and invalid) to every
operation, with a real token, find no 5xx and no answer that breaks the spec (status code, content type,
headers, body schema). Two passes: every parameter generated (mostly not-found ids), then the ids pinned to
real objects of the user (a finished run, its model, its dataset, a predictions file), so that real views,
cards, downloads and predictions are checked against the spec too. Bounded examples: about a minute."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from core.config import load_settings
from core.quotas import Quotas
from core.storage import Storage
from tests.e2e.api_client import Api, api_user
from tests.helpers import BIN, classification_csv

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
    ]
)
MAX_EXAMPLES = 12  # per operation and phase


@pytest.fixture(scope="module")
def fuzz(stack) -> Api:
    return api_user(stack.home, stack.api_url, "fuzz")


@pytest.fixture(scope="module")
def real_ids(stack, fuzz: Api) -> dict[str, object]:
    """A finished run of the fuzz user, its model, dataset and a predictions file."""
    dataset_id = fuzz.upload("seed.csv", classification_csv(rows=100))
    body = {"dataset_id": dataset_id, "target": "bought", "model": "logistic_regression"}
    run_id = fuzz.ok("POST", "/temporal/train", 202, json=body)["id"]
    assert fuzz.events(run_id)[-1][1] == {"status": "completed"}
    model_id = next(m["id"] for m in fuzz.ok("GET", "/models") if m["run_id"] == run_id)
    rows = b"age,income,city\n30,70.5,paris\n"
    file = fuzz.ok("POST", f"/models/{model_id}/predict", files={"file": ("x.csv", rows, "text/csv")})["file"]
    # generated uploads and launches are real work: keep them from crowding the worker (a 429 is in the spec)
    Quotas(Storage(stack.home), load_settings()).set_override("fuzz", tasks_per_minute=20, launches_per_minute=5)
    return {"workflow_id": run_id, "model_id": model_id, "dataset_id": dataset_id, "name": file}


def schemathesis(stack, token: str, report: Path, config: Path | None = None) -> subprocess.CompletedProcess[str]:
    args = [
        str(BIN / "schemathesis"),
        *(["--config-file", str(config)] if config else []),
        "run",
        f"{stack.api_url}/openapi.json",
    ]
    args += ["--header", f"Authorization: Bearer {token}", "--checks", CHECKS, "--phases", "examples,coverage,fuzzing"]
    args += ["--max-examples", str(MAX_EXAMPLES), "--seed", "12", "--workers", "1", "--request-timeout", "60"]
    args += ["--suppress-health-check", "all", "--report", "junit", "--report-dir", str(report)]
    started = time.monotonic()
    out = subprocess.run(args, capture_output=True, text=True, timeout=600)
    print(out.stdout[-6000:], out.stderr[-3000:], f"schemathesis took {time.monotonic() - started:.0f} s", sep="\n")
    return out


def test_generated_requests_find_no_server_error_and_no_answer_outside_the_spec(stack, fuzz: Api, real_ids, tmp_path):
    out = schemathesis(stack, fuzz.token, tmp_path)
    assert out.returncode == 0, out.stdout[-8000:] + out.stderr[-4000:]
    assert re.search(r"(\d+) generated, \1 passed", out.stdout), "every generated case passed"


def test_with_real_ids_the_views_cards_files_and_predictions_match_the_spec(stack, fuzz: Api, real_ids, tmp_path):
    config = tmp_path / "schemathesis.toml"
    config.write_text("[parameters]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in real_ids.items()))
    out = schemathesis(stack, fuzz.token, tmp_path, config)
    assert out.returncode == 0, out.stdout[-8000:] + out.stderr[-4000:]
    assert re.search(r"(\d+) generated, \1 passed", out.stdout), "every generated case passed"
