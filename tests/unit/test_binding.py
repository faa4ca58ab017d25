"""orchestration.binding: an activity's input must belong to the workflow that carries it."""

from __future__ import annotations

import pytest
from temporalio.exceptions import ApplicationError

from orchestration.binding import check_binding
from orchestration.contracts import CheckRequest, TagRequest, TrainInput, TrainRequest

ALICE_RUN = "train-alice-" + "a" * 32
BOB_RUN = "train-bob-" + "b" * 32


def _train(run_id: str, owner: str) -> TrainInput:
    return TrainInput(run_id, TrainRequest(owner, "0" * 16, "y", "logistic_regression"))


def test_a_runs_own_input_passes():
    check_binding(ALICE_RUN, _train(ALICE_RUN, "alice"))
    check_binding("check-alice-" + "c" * 32, CheckRequest("alice", "0" * 16, "y", "logistic_regression"))
    check_binding("batch-alice-" + "d" * 32, TagRequest("alice", ALICE_RUN, "best"))


@pytest.mark.parametrize(
    "workflow_id, arg",
    [
        (BOB_RUN, _train(ALICE_RUN, "alice")),  # alice's input replayed under bob's id
        ("train-alice-" + "e" * 32, _train(ALICE_RUN, "alice")),  # ... or under another id of alice's
        (BOB_RUN, _train(BOB_RUN, "alice")),  # an input naming another owner
        ("check-bob-" + "c" * 32, CheckRequest("alice", "0" * 16, "y", "logistic_regression")),
        ("batch-bob-" + "d" * 32, TagRequest("bob", ALICE_RUN, "best")),
        ("my-own-workflow", _train(ALICE_RUN, "alice")),  # not an id the service makes
    ],
)
def test_foreign_inputs_are_refused_for_good(workflow_id, arg):
    with pytest.raises(ApplicationError) as err:
        check_binding(workflow_id, arg)
    assert err.value.non_retryable and "Refused" in str(err.value)
