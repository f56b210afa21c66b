"""One table of every shard's predictions (rule collect_predictions)."""

import pandas as pd

from genreflow.logs import setup_logging

setup_logging(snakemake.log[0])  # noqa: F821 (provided by Snakemake)
frames = [pd.read_csv(path, keep_default_na=False) for path in snakemake.input]  # noqa: F821
pd.concat(frames, ignore_index=True).sort_values("file").to_csv(snakemake.output[0], index=False)  # noqa: F821
