"""Train and score one network, model x input (rule train_neural)."""

import os
from pathlib import Path

# before TensorFlow starts: keep its C++ INFO chatter out of the job's output
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

from genreflow.logs import setup_logging  # noqa: E402

setup_logging(snakemake.log[0])  # noqa: F821 (Snakemake provides `snakemake`)

from genreflow.examples import make_source  # noqa: E402
from genreflow.provenance import run_provenance  # noqa: E402
from genreflow.jobs import NeuralFamily, run_model_job  # noqa: E402

sm = snakemake  # noqa: F821
settings = sm.params.settings
run_model_job(
    NeuralFamily(settings, threads=sm.threads, allow_cpu=sm.params.allow_cpu),
    make_source(
        sm.wildcards.input, sm.input.get("dataset"), sm.input.get("table"),
        settings["segments"], settings["training"]["max_frames"],
    ),
    split_csv=sm.input.split,
    outdir=Path(sm.output.metrics).parent,
    extra={"model": sm.wildcards.model, "input": sm.wildcards.input, "split_method": sm.params.split_method},
    provenance=run_provenance(dict(sm.input.items()), settings=dict(sm.params.items())),
)
