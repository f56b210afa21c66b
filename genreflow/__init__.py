"""genreflow: music genre classification as a reproducible Snakemake workflow."""

__version__ = "0.1.0"

#: The ten GTZAN genres, in GTZAN's (alphabetical) order.
GTZAN_GENRES = (
    "blues",
    "classical",
    "country",
    "disco",
    "hiphop",
    "jazz",
    "metal",
    "pop",
    "reggae",
    "rock",
)
