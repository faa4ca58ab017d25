"""Batch: several models, or a parameter sweep of one, trained in parallel; `?batch=<id>` opens its view."""

from typing import Any

import streamlit as st

from ml.catalog import guess_task, is_number, models_for
from ml.model_spec import TASKS, ParamError, Task
from ml.sweep import MAX_TRIALS, grid, random_search
from orchestration.contracts import BatchItem, BatchRequest
from orchestration.views import RunSummary
from ui.auth import require_user
from ui.batch_view import show_batch
from ui.labels import when
from ui.outage import as_of_text, launch_blocked, show_blocked
from ui.param_inputs import allowed
from ui.runtime import guard, service
from ui.sync_service import Unavailable
from ui.text import md

user = require_user()
svc = service()
batch_id = st.query_params.get("batch")
if batch_id:
    if st.button("← New batch", key="back_to_batches"):
        del st.query_params["batch"]
        st.rerun()
    if notice := st.session_state.pop("batch_notice", None):
        st.info(notice)
    show_batch(svc, batch_id)
    st.stop()


st.title("Batch training")
datasets = svc.list_datasets(user)
if not datasets:
    st.info("Upload a dataset first.")
    st.stop()
by_id = {d.dataset_id: d for d in datasets}
dataset = by_id[
    st.selectbox("Dataset", list(by_id), format_func=lambda i: f"{by_id[i].name} ({by_id[i].rows:,} rows)", key="batch_dataset")
]
columns = {c.name: c for c in dataset.columns}
target = st.selectbox("Target column", list(columns), index=len(columns) - 1, key=f"batch_target_{dataset.dataset_id}")
guess = guess_task(columns[target])
task: Task = (
    st.radio("Task", TASKS, index=TASKS.index(guess), horizontal=True, key=f"batch_task_{dataset.dataset_id}_{target}") or guess
)
choices = {m.key: m for m in models_for(task)}

mode = st.radio("What to train", ["Several models", "Parameter sweep of one model"], horizontal=True, key="batch_mode")
items: list[BatchItem] = []
with guard("Building the batch"):
    if mode == "Several models":
        picked = st.multiselect(
            "Models (default parameters)",
            list(choices),
            default=list(choices)[:3],
            format_func=lambda k: choices[k].label,
            key=f"batch_models_{task}",
        )
        items = [BatchItem(k, choices[k].defaults()) for k in picked]
    else:
        keys = list(choices)
        sweepable = next((i for i, k in enumerate(keys) if choices[k].params), 0)  # a model with something to sweep
        spec = choices[
            st.selectbox("Model", keys, index=sweepable, format_func=lambda k: choices[k].label, key=f"sweep_model_{task}")
        ]
        kind = st.radio("Search", ["grid", "random"], horizontal=True, key="sweep_kind")
        budget = int(st.number_input("Trial budget", 1, MAX_TRIALS, 8, key="sweep_budget"))
        swept = [p for p in spec.params if p.type in ("int", "float") or kind == "grid"]
        chosen = st.multiselect(
            "Parameters to sweep", [p.name for p in swept], default=[p.name for p in swept][:2], key=f"sweep_params_{spec.key}"
        )
        if not swept:
            st.info(
                f"{spec.label} has nothing to sweep"
                + (" in a random search (only choices): use a grid." if spec.params else ": it has no parameters.")
                + " Choose another model, or train it once on the Train page."
            )
        elif not chosen:
            st.info("Choose at least one parameter to sweep.")
        space: dict[str, Any] = {}  # a parameter's grid values, or its (low, high) range for a random search
        for p in (p for p in swept if p.name in chosen):
            if kind == "grid":
                hint = ", ".join(map(str, p.choices)) if p.type == "choice" else f"{p.default}, …"
                raw = st.text_input(
                    f"{p.name}: values, comma-separated" + (f" ({allowed(p)})" if p.type != "choice" else ""),
                    hint if p.type == "choice" else str(p.default),
                    key=f"grid_{spec.key}_{p.name}",
                    help=p.help,
                )
                texts = [v.strip() for v in raw.split(",") if v.strip()]
                if p.type == "choice":  # back to the schema's own values: "1.0" means the float 1.0
                    space[p.name] = [next((c for c in p.choices if str(c) == t), t) for t in texts]
                else:
                    space[p.name] = [float(t) if is_number(t) else t for t in texts]
            else:
                assert p.min is not None and p.max is not None  # only numeric parameters get a range
                lo, hi = st.columns(2)
                # no widget bounds: Streamlit silently keeps the old value past them; the sweep checks each trial
                space[p.name] = (
                    lo.number_input(
                        f"{p.name} from ({allowed(p)})", value=float(p.min), key=f"rnd_lo_{spec.key}_{p.name}", format="%g"
                    ),
                    hi.number_input(f"{p.name} to", value=float(p.max), key=f"rnd_hi_{spec.key}_{p.name}", format="%g"),
                )
        try:
            trials = (
                [] if not space else grid(spec, space, budget) if kind == "grid" else random_search(spec, space, budget, seed=42)
            )
            items = [BatchItem(spec.key, t) for t in trials]
            if space and len(trials) < budget:
                st.info(
                    f"{len(trials)} distinct configuration{'s' * (len(trials) != 1)}: these values hold no more, so the "
                    f"budget of {budget} is not all used (a configuration is never trained twice)."
                )
        except (ParamError, ValueError) as exc:
            st.error(f"Sweep: {md(exc)}")

blocked = launch_blocked(svc)  # Temporal cannot be reached: nothing is asked of it, the launch is disabled
default_parallel = svc.default_parallelism()  # the workers alive, from their files (also during an outage)
c1, c2, c3 = st.columns(3)
max_parallel = int(
    c1.number_input(
        "At most this many at once",
        1,
        16,
        default_parallel,
        key="batch_parallel",
        help=f"{default_parallel} worker slot(s) are polling now.",
    )
)
seed = int(c2.number_input("Random seed", 0, 2**31 - 1, 42, key="batch_seed"))
test_pct = c3.slider("Test split (%)", 5, 50, 20, key="batch_test_pct")

# each configuration's data check (the service keeps the answers: only what changed is asked again);
# an error is named by the configurations it concerns (once, unnamed, when it concerns them all: the data's),
# warnings shown once
refused: dict[str, list[str]] = {}  # each error message -> the configurations it concerns
total, warnings = 0.0, set()
with guard("Checking the data"):
    for index, item in enumerate([] if blocked else items):
        report = svc.check_data(user, dataset.dataset_id, target, item.model, item.params, 0, test_pct / 100)
        total += report.estimate_seconds or 0.0
        label = f"Configuration {index + 1} ({choices[item.model].label})" if len(items) > 1 else choices[item.model].label
        for f in report.findings:
            if f.level == "error":
                refused.setdefault(f.message, []).append(label)
        warnings |= {f.message for f in report.findings if f.level == "warning"}
errors = [m if len(labels) == len(items) else f"{', '.join(labels)}: {m}" for m, labels in refused.items()]
for message in errors[:5]:
    st.error(md(message))
if len(errors) > 5:
    st.error(f"… and {len(errors) - 5} more problem(s) with these configurations.")
for message in sorted(warnings):
    st.warning(md(message))
wall = total / max(1, min(max_parallel, len(items) or 1))
if items and not errors:
    st.info(
        f"{len(items)} run(s) will start, at most {max_parallel} at once; rough time: "
        f"{'under a second' if wall < 1 else f'~{wall:.0f} s'} of fitting."
    )
if blocked:
    st.caption("The data check and your quota are read through Temporal: they are shown again once it is back.")
else:
    with guard("Reading your quota"):
        usage = svc.usage(user)
        clamp = 0 < usage.free_slots < min(max_parallel, len(items) or 1)
        st.caption(
            usage.caption
            + (
                f" — a batch holds one slot per run it trains at once, so this one would run at most {usage.free_slots} at once"
                if clamp
                else ""
            )
        )
show_blocked(blocked)
if st.button("Start batch", type="primary", disabled=not items or bool(errors) or bool(blocked), key="start_batch"):
    with guard("Starting the batch"):
        request = BatchRequest(
            user.name,
            dataset.dataset_id,
            target,
            items,
            seed=seed,
            test_size=test_pct / 100,
            max_parallel=max_parallel,
            sweep=mode != "Several models",
        )
        new_id = svc.start_batch(user, request)  # sets request.max_parallel to the slots it was granted
        if request.max_parallel < max_parallel:
            st.session_state["batch_notice"] = (
                f"Started with at most {request.max_parallel} at once instead of {max_parallel}: your other runs hold "
                "the rest of your quota of runs in flight. It does not speed up when they finish."
            )
        st.switch_page(st.session_state["pages"]["batch"], query_params={"batch": new_id})

st.subheader("Your batches")
batches: list[RunSummary] | None = None
with guard("Listing batches"):
    try:
        batches = svc.list_batches(user)
    except Unavailable:  # the list this app last read, at once
        known = svc.known_batches(user)
        st.caption(as_of_text(known) if known else "Your batches are listed again once Temporal is back.")
        batches = known.value if known else None
if batches == []:
    st.caption("No batches yet.")
for b in (batches or [])[:20]:
    st.page_link(
        st.session_state["pages"]["batch"],
        label=f"{when(b.started_at)} · {b.status} · {b.run_id}",
        query_params={"batch": b.run_id},
    )
