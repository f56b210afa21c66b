"""Extract one track's features into its HDF5 file (rule extract_features)."""

from genreflow.features import extract_track_file
from genreflow.logs import setup_logging

setup_logging(snakemake.log[0])
params = snakemake.params
extract_track_file(
    snakemake.input.audio,
    snakemake.output.h5,
    track=params.track,
    label=params.label,
    min_duration=params.min_duration,
    strict=params.strict,
)
