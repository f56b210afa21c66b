"""Extract one track's features into its HDF5 file (rule extract_features)."""

from genreflow.logs import setup_logging

# Logging first, so warnings raised while librosa loads land in the job's log too.
setup_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected by Snakemake)

from genreflow.features import extract_track_file  # noqa: E402

params = snakemake.params  # noqa: F821
extract_track_file(
    snakemake.input.audio,  # noqa: F821
    snakemake.output.h5,  # noqa: F821
    track=params.track,
    label=params.label,
    min_duration=float(params.min_duration),
    strict=bool(params.strict),
)
