"""Stream the shard files into dataset.h5, features.csv and rejected.csv (rule merge_features)."""

from genreflow.dataset import merge_shards
from genreflow.logs import setup_logging

log = setup_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected by Snakemake)
out = snakemake.output  # noqa: F821
n = merge_shards(snakemake.input, out.dataset, out.table, out.rejected)  # noqa: F821
log.info("merged %d accepted tracks from %d shards", n, len(snakemake.input))  # noqa: F821
