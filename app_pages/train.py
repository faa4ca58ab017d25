"""Train: pick a dataset, a target and a model; the form comes from the model's parameter schema, and a
worker checks the data before launch."""

import streamlit as st

from ml.catalog import guess_task, models_for
from ml.model_spec import TASKS, Task
from orchestration.contracts import TrainRequest
from ui.auth import require_user
from ui.data_check import draw_report, kept_identifiers
from ui.outage import launch_blocked, show_blocked
from ui.param_inputs import param_form
from ui.runtime import guard, service

user = require_user()
svc = service()
pages = st.session_state["pages"]
st.title("Train a model")

datasets = svc.list_datasets(user)
if not datasets:
    st.info("Upload a dataset first.")
    st.page_link(pages["datasets"], label="Go to Datasets", icon=":material/upload:")
    st.stop()

by_id = {d.dataset_id: d for d in datasets}
dataset = by_id[
    st.selectbox("Dataset", list(by_id), format_func=lambda i: f"{by_id[i].name} ({by_id[i].rows:,} rows)", key="train_dataset")
]
columns = {c.name: c for c in dataset.columns}
target = st.selectbox(
    "Target column (what to predict)", list(columns), index=len(columns) - 1, key=f"train_target_{dataset.dataset_id}"
)
guess = guess_task(columns[target])
task: Task = (
    st.radio(
        "Task",
        TASKS,
        index=TASKS.index(guess),
        horizontal=True,
        key=f"train_task_{dataset.dataset_id}_{target}",
        help="Detected from the target column; change it if the guess is wrong.",
    )
    or guess
)
models = {m.key: m for m in models_for(task)}
spec = models[st.selectbox("Model", list(models), format_func=lambda k: models[k].label, key=f"train_model_{task}")]


st.markdown(f"**{spec.label}** parameters")
params, param_problem = param_form(spec, "param")
c1, c2, c3 = st.columns(3)
seed = int(
    c1.number_input(
        "Random seed", 0, 2**31 - 1, 42, step=1, key="train_seed", help="Same data, parameters and seed give the same model."
    )
)
test_pct = c2.slider("Test split (%)", 5, 50, 20, key="train_test_pct", help="Rows held out to measure the model.")
cv_folds = c3.selectbox(
    "Cross-validation", [0, 3, 5, 10], key="train_cv", format_func=lambda k: "off" if k == 0 else f"{k}-fold on the training rows"
)

st.subheader("Data check")
# Asked on every rerun: the service answers from its cache unless something the check reads has changed
include = kept_identifiers(dataset.dataset_id, target)
report, errors = None, []
blocked = launch_blocked(svc)  # Temporal cannot be reached: no check, no launch (the banner says more)
if param_problem:
    st.caption("The data check runs once the parameters are within their ranges.")
elif blocked:
    st.caption("The data check runs on a worker through Temporal: it runs again once Temporal is back.")
else:
    with st.spinner("A worker is checking the data…"), guard("The data check"):
        report = svc.check_data(user, dataset.dataset_id, target, spec.key, params, cv_folds, test_pct / 100, include)
if report:
    errors = draw_report(report, dataset.dataset_id, target, cv_folds)
elif not param_problem and not blocked:
    st.caption("Without the data check the run still starts; a worker validates the data again when it runs.")

if not blocked:
    with guard("Reading your quota"):
        st.caption(svc.usage(user).caption)
show_blocked(blocked)
if st.button("Start training", type="primary", disabled=bool(errors or param_problem or blocked), key="start_training"):
    with guard("Starting the run"):
        run_id = svc.start_training(
            user,
            TrainRequest(
                owner=user.name,
                dataset_id=dataset.dataset_id,
                target=target,
                model=spec.key,
                params=params,
                seed=seed,
                test_size=test_pct / 100,
                cv_folds=cv_folds,
                include_columns=include,
            ),
        )
        st.switch_page(pages["runs"], query_params={"run": run_id})
