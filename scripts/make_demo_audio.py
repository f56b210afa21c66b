"""Generate the demo tracks of one genre, in one process (rule make_demo_audio)."""

from pathlib import Path

import soundfile as sf

from genreflow.constants import SR
from genreflow.demo import generate_track
from genreflow.files import atomic_path
from genreflow.logs import setup_logging

log = setup_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected by Snakemake)
params = snakemake.params  # noqa: F821
for out in map(Path, snakemake.output):  # noqa: F821
    index = int(out.stem.rsplit(".", 1)[1])  # <genre>.NNNNN.wav
    audio = generate_track(snakemake.wildcards.genre, index, params.duration, params.seed)  # noqa: F821
    with atomic_path(out) as tmp:
        sf.write(tmp, audio, SR, subtype="PCM_16", format="WAV")
    log.info("generated %s (%.1f s)", out, len(audio) / SR)
