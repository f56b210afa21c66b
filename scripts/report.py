"""Aggregate every model x input into results/report/ (rule report)."""

import pandas as pd

from genreflow.logs import setup_logging
from genreflow.report import collect_model_results, write_report

log = setup_logging(snakemake.log[0])  # noqa: F821 (provided by Snakemake)
sm = snakemake  # noqa: F821
jobs = [tuple(job.split("/", 1)) for job in sm.params.jobs]
skipped = {tuple(job.split("/", 1)): why for job, why in sm.params.skipped.items()}
results = collect_model_results(sm.input.models, jobs, skipped)
for (model, input_name), reason in sorted(results.missing.items()):
    log.warning("missing %s/%s: %s", model, input_name, reason)

summary = write_report(
    results,
    rejected=pd.read_csv(sm.input.rejected),
    split=pd.read_csv(sm.input.split),
    outputs=dict(sm.output.items()),
    dataset=sm.params.dataset,
)
log.info(
    "report of %d model x inputs (%d missing):\n%s",
    len(summary),
    len(results.missing),
    summary[["model", "input", "accuracy", "status"]].to_string(index=False),
)
