"""Classify one shard of the files of config `predict` (rule predict_shard)."""

from genreflow.logs import setup_logging

log = setup_logging(snakemake.log[0])  # noqa: F821 (provided by Snakemake)

from genreflow.predict import predictions_table  # noqa: E402

sm = snakemake  # noqa: F821
table = predictions_table(sm.input.manifest, sm.params.files, sm.params.min_duration)
table.to_csv(sm.output[0], index=False)
log.info("%d files, %d not classified", len(table), table["error"].astype(bool).sum())
