"""Train, tune and score one classic model on one input (rule train_classic)."""

from pathlib import Path

from genreflow.logs import setup_logging
from genreflow.models.classic import resolve_grid, run_classic_job

setup_logging(snakemake.log[0])  # noqa: F821 (provided by Snakemake)
sm = snakemake  # noqa: F821
run_classic_job(
    model=sm.wildcards.model,
    input_name=sm.wildcards.input,
    grid=resolve_grid(sm.wildcards.model, sm.params.grid["preset"], sm.params.grid["override"]),
    split_csv=sm.input.split,
    outdir=Path(sm.output.metrics).parent,
    table_path=sm.input.get("table"),
    dataset_path=sm.input.get("dataset"),
    cv_folds=sm.params.cv_folds,
    seed=sm.params.seed,
    segments=sm.params.segments,
    threads=sm.threads,
    split_method=sm.params.split_method,
)
