"""Train, tune and score one classic model on one input (rule train_classic)."""

from pathlib import Path

from genreflow.logs import setup_logging

setup_logging(snakemake.log[0])  # noqa: F821 (provided by Snakemake)

from genreflow.examples import make_source  # noqa: E402
from genreflow.provenance import run_provenance  # noqa: E402
from genreflow.jobs import ClassicFamily, run_model_job  # noqa: E402
from genreflow.models.classic import resolve_grid  # noqa: E402

sm = snakemake  # noqa: F821
grid = resolve_grid(sm.wildcards.model, sm.params.grid["preset"], sm.params.grid["override"])
run_model_job(
    ClassicFamily(sm.wildcards.model, grid, sm.params.cv_folds, sm.params.seed, sm.threads),
    make_source(sm.wildcards.input, sm.input.get("dataset"), sm.input.get("table"), sm.params.segments),
    split_csv=sm.input.split,
    outdir=Path(sm.output.metrics).parent,
    extra={"model": sm.wildcards.model, "input": sm.wildcards.input, "split_method": sm.params.split_method},
    provenance=run_provenance(dict(sm.input.items()), settings=dict(sm.params.items())),
)
