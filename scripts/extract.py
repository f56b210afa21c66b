"""Extract the tracks of one shard into its HDF5 file, in one process (rule extract_features)."""

import os
import time

_started = time.perf_counter()
# before TensorFlow starts (musicnn, features.embedding.model): keep its C++ INFO lines out
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

from genreflow.logs import setup_logging  # noqa: E402

# Logging first, so warnings raised while librosa loads land in the job's log too.
log = setup_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected by Snakemake)

from genreflow.features import extract_shard_file  # noqa: E402

params = snakemake.params  # noqa: F821
# track ids are <label>/<stem>
tracks = [(track, track.split("/")[0], audio) for track, audio in zip(params.tracks, snakemake.input)]  # noqa: F821
log.info("shard %s: %d tracks, %d processes (imports took %.1f s)", snakemake.output[0],  # noqa: F821
         len(tracks), min(snakemake.threads, len(tracks)), time.perf_counter() - _started)  # noqa: F821
counts = extract_shard_file(
    tracks,
    snakemake.output[0],  # noqa: F821
    min_duration=float(params.min_duration),
    strict=bool(params.strict),
    embedding=params.embedding,
    threads=snakemake.threads,  # noqa: F821
)
log.info("shard done: %d accepted, %d rejected, %.1f s extracting, %.1f s in this process",
         counts["ok"], counts["rejected"], counts["seconds"], time.perf_counter() - _started)
