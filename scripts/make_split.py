"""Assign tracks to train/valid/test (rule make_split)."""

import pandas as pd

from genreflow.logs import setup_logging
from genreflow.splits import make_split, split_summary

log = setup_logging(snakemake.log[0])
table = pd.read_csv(snakemake.input.table, usecols=["track", "label"])
split, unmatched = make_split(table["track"], table["label"], snakemake.params.split)
split.to_csv(snakemake.output.split, index=False)
split_summary(split).to_csv(snakemake.output.summary)
unmatched.to_csv(snakemake.output.unmatched, index=False)
for problem, group in unmatched.groupby("problem"):
    log.warning("%d tracks %s, e.g. %s", len(group), problem, ", ".join(group["track"][:5]))
log.info("split %d tracks:\n%s", len(split), split_summary(split).to_string())
