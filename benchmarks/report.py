"""The figures as a table: printed (fixed-width) and written to BENCHMARKS.md (Markdown) with the machine line."""

from __future__ import annotations

from pathlib import Path

from benchmarks.harness import Figure

HEADER = ("figure", "TrainEasy", "baseline", "ratio", "spread (n)", "target", "met?")
HOW = """How each figure is measured (`python -m benchmarks`, modules in `benchmarks/`): both sides run in the same
invocation, interleaved repeat by repeat (A, B, A, B) so that they share the machine's load; the TrainEasy column
and the baseline are medians, the ratio is the median of the per-repeat ratios and the spread is their min–max.
A ratio target is checked on the ratio; an absolute one (`progress` < 100 ms, history < 64 KB) on the TrainEasy
column. For the tiny run, the TrainEasy column is TrainEasy's added time (its run − the direct work).
The TrainEasy side goes through the real path: a Temporal dev server, one `python -m workers` process per core,
the service layer (`TrainEasyService.upload_dataset`, `start_training`, `start_batch`). Data is generated at
run time. Workers fit with one thread (OMP_NUM_THREADS=1); the plain script and the fresh-process baselines are
given the same; the in-process direct fits use scikit-learn's defaults.

- batch: 8 random-forest jobs as one TrainEasy batch vs joblib `Parallel(n_jobs=cores)` over the same
  computation (prepare, split, fit, metrics, permutation importance) from the stored Parquet.
- tiny run: (TrainEasy run − the same work in this process) / an empty workflow of 6 no-op activities.
- random forest: a run from launch to result vs one `fit` of the same pipeline + the same evaluation, in process.
- 1M rows: upload (ingest) + run, vs `benchmarks/plain_script.py` (read_csv, split, one fit, metrics and the same
  permutation importance) in a fresh process; its time excludes interpreter start and imports.
- ingest: the worker's ingest activity vs read_csv + to_parquet, each in a fresh process with pandas and pyarrow
  imported before its timer; memory is that process's own peak RSS (its VmHWM: wait4's ru_maxrss would carry over
  the benchmark process's own high-water mark).
- worker peak memory: the highest VmHWM of any one process of freshly started workers' trees (a worker and the fit
  children it forks), sampled every 0.2 s during the 1M-row upload + run, vs the plain script's own peak (its VmHWM).
- history: bytes of the 1M-row run's fetched history (events, serialised) vs the tiny run's.
- `progress` query: p95 of the query while the forest's run is in its fit stage, vs describe() (a server round
  trip without a worker) timed right after each query; the run is queried every 0.25 s, as eight open run pages.
- The Temporal dev server runs with make run's settings (orchestration/dev_server.py: its queues read unpaced). The
  figures that need none of it (ingest, the child-fit extra) are measured first, before it and the workers start:
  their idle processes are not the fresh ingest processes' to share the two cores with."""


def _num(value: float, unit: str) -> str:
    return f"{value:.0f} {unit}" if value >= 100 else f"{value:.3g} {unit}"


def _met(figure: Figure) -> str:
    return "—" if figure.met is None else ("yes" if figure.met else "no")


def rows(figures: list[Figure]) -> list[tuple[str, ...]]:
    return [
        (
            f.name,
            _num(f.traineasy, f.unit),
            _num(f.baseline, f.unit),
            f"{f.ratio:.2f}",
            f"{f.ratios.spread()} ({f.repeats})",
            f.target,
            _met(f),
        )
        for f in figures
    ]


def render_text(figures: list[Figure]) -> str:
    table = [HEADER, *rows(figures)]
    widths = [max(len(r[i]) for r in table) for i in range(len(HEADER))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    notes = [f"- {f.name}: {f.note}" for f in figures if f.note]  # where the time went: printed, not only written
    return "\n".join([*lines, *([""] + notes if notes else [])])


def render_markdown(figures: list[Figure], machine: str, wall_s: float, command: str, when: str) -> str:
    out = [
        "# TrainEasy benchmarks",
        "",
        f"`{command}` on {when}, {wall_s / 60:.1f} min wall time.",
        "",
        f"Machine: {machine}.",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "---|" * len(HEADER),
        *("| " + " | ".join(r) + " |" for r in rows(figures)),
        "",
        "Notes:",
        "",
        *(f"- {f.name}: {f.note}" for f in figures if f.note),
        "",
        HOW,
        "",
    ]
    return "\n".join(out)


def write_markdown(path: Path, text: str) -> None:
    path.write_text(text)
