"""Stream per-track feature files into dataset.h5 and features.csv (rule merge_features)."""

from genreflow.dataset import merge_tracks
from genreflow.logs import setup_logging

log = setup_logging(snakemake.log[0])
out = snakemake.output
n = merge_tracks(snakemake.input, out.dataset, out.table, out.rejected)
log.info("merged %d accepted tracks of %d", n, len(snakemake.input))
