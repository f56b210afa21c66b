"""Generate one demo track (rule make_demo_track)."""

import os
from pathlib import Path

import soundfile as sf

from genreflow.constants import SR
from genreflow.demo import generate_track
from genreflow.logs import setup_logging

log = setup_logging(snakemake.log[0])
out = Path(snakemake.output[0])
genre, index = snakemake.wildcards.genre, int(snakemake.wildcards.index)
audio = generate_track(genre, index, snakemake.params.duration, snakemake.params.seed)
tmp = out.with_name(out.name + ".part.wav")
sf.write(tmp, audio, SR, subtype="PCM_16")
os.replace(tmp, out)
log.info("generated %s (%.1f s)", out, len(audio) / SR)
