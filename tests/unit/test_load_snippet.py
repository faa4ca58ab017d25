"""ui.load_snippet: the Models page's "load it yourself" lines, from the model card alone.
(tests/workflows/test_portable_model.py runs them in a fresh interpreter.)"""

from __future__ import annotations

import ast

from core.model_record import ModelRecord
from ui.load_snippet import load_snippet

VERSIONS = {"python": "3.11.2", "scikit-learn": "1.9.1", "pandas": "3.1.1", "numpy": "2.4.6", "skops": "0.16.0"}


def card(**over):
    return {
        "task": "classification",
        "target": "bought",
        "input_schema": [{"name": "age", "kind": "numeric"}, {"name": "city", "kind": "categorical"}],
        "versions": VERSIONS,
        "skops_trusted": ["numpy.asarray", "operator.attrgetter", "pandas.to_datetime"],
        **over,
    }


def model(card: dict) -> ModelRecord:
    """A registered model with this card (the registry's target column is the card's, as registering sets it)."""
    return ModelRecord(1, "alice", "m", 1, "train-alice-" + "a" * 32, "2026-01-01", 1, (), card, "d1", card["target"])


def assigned(python: str, name: str):
    tree = ast.parse(python)
    (value,) = [n.value for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == name]  # type: ignore[attr-defined]
    return ast.literal_eval(value)


def test_the_install_line_pins_the_versions_the_model_was_saved_with():
    snippet = load_snippet(model(card()), "m-v1.skops")
    assert snippet is not None
    assert snippet.install == 'pip install "scikit-learn==1.9.1" "skops==0.16.0" "pandas==3.1.1" "numpy==2.4.6"'


def test_the_lines_load_with_the_cards_trusted_types_and_predict_on_its_columns():
    snippet = load_snippet(model(card()), "logistic_regression-v3.skops")
    assert snippet is not None
    assert assigned(snippet.python, "trusted") == ["numpy.asarray", "operator.attrgetter", "pandas.to_datetime"]
    assert assigned(snippet.python, "features") == ["age", "city"]
    assert "sio.load('logistic_regression-v3.skops', trusted=trusted)" in snippet.python
    assert "model.predict(rows[features])" in snippet.python and "predict_proba" in snippet.python


def test_a_regressor_gets_no_probabilities():
    snippet = load_snippet(model(card(task="regression", target="price")), "ridge-v1.skops")
    assert snippet is not None and "predict_proba" not in snippet.python


def test_a_model_saved_before_files_were_self_contained_gets_no_snippet():
    old = card()
    del old["skops_trusted"]  # cards written before it existed
    assert load_snippet(model(old), "m-v1.skops") is None


def test_hostile_and_many_column_names_stay_valid_python():
    names = ["a'b", 'c"d', "back\\slash", "new\nline", "é"] + [f"col_{i}" for i in range(300)]
    snippet = load_snippet(model(card(input_schema=[{"name": n} for n in names], target="x'\ny")), "m-v1.skops")
    assert snippet is not None
    assert assigned(snippet.python, "features") == names
    assert max(len(line) for line in snippet.python.splitlines()) < 120  # one column per line when many
