"""Train and score one network, model x input (rule train_neural)."""

import os
from pathlib import Path

# before TensorFlow starts: keep its C++ INFO chatter out of the job's output
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

from genreflow.logs import setup_logging  # noqa: E402

log = setup_logging(snakemake.log[0])  # noqa: F821 (Snakemake provides `snakemake`)

from genreflow.models.neural import run_network_job  # noqa: E402

sm = snakemake  # noqa: F821
run_network_job(
    settings=sm.params.settings,
    split_csv=sm.input.split,
    outdir=Path(sm.output.metrics).parent,
    dataset_path=sm.input.get("dataset"),
    table_path=sm.input.get("table"),
    threads=sm.threads,
    split_method=sm.params.split_method,
)
