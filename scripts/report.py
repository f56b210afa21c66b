"""Aggregate every model x input into results/report/ (rule report)."""

import pandas as pd

from genreflow.logs import setup_logging
from genreflow.report import collect_model_results, write_report

log = setup_logging(snakemake.log[0])
jobs = [tuple(job.split("/", 1)) for job in snakemake.params.jobs]
skipped = {tuple(job.split("/", 1)): why for job, why in snakemake.params.skipped.items()}
results = collect_model_results(
    jobs, snakemake.params.models_root, skipped, logs_root=snakemake.params.logs_root
)
for (model, input_name), reason in sorted(results.missing.items()):
    log.warning("missing %s/%s: %s", model, input_name, reason)

summary = write_report(
    results,
    rejected=pd.read_csv(snakemake.input.rejected),
    split=pd.read_csv(snakemake.input.split),
    outputs=dict(snakemake.output.items()),
    dataset=snakemake.params.dataset,
)
log.info(
    "report of %d model x inputs (%d missing):\n%s",
    len(summary),
    len(results.missing),
    summary[["model", "input", "accuracy", "status"]].to_string(index=False),
)
