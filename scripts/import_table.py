"""Normalise a precomputed feature table into features.csv (rule import_table)."""

import pandas as pd

from genreflow.dataset import read_table
from genreflow.logs import setup_logging

log = setup_logging(snakemake.log[0])
table = read_table(snakemake.input[0])
table.to_csv(snakemake.output.table, index=False)
pd.DataFrame(columns=["track", "source", "reason"]).to_csv(snakemake.output.rejected, index=False)
log.info("imported %d rows x %d columns from %s", len(table), table.shape[1], snakemake.input[0])
