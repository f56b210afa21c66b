"""Every fixed number and name genreflow shares between modules.

Analysis parameters are the study's (librosa's defaults); changing one changes every
feature, so a model trained with other values cannot be fed by this version.
"""

#: Sampling rate of every waveform (GTZAN's own rate).
SR = 22050
#: STFT size and hop: 30 s -> 1293 frames.
N_FFT = 2048
HOP_LENGTH = 512
#: Fixed sequence length of whole-track inputs (30 s at SR, HOP_LENGTH).
N_FRAMES = 1293
N_MFCC = 20
N_MELS = 128
N_CHROMA = 12

#: Audio file extensions every source and the split lists accept.
AUDIO_EXTENSIONS = ("wav", "au", "flac", "ogg", "mp3")
#: The ten GTZAN genres, in GTZAN's (alphabetical) order.
GTZAN_GENRES = ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock")
#: The classic models: names a network may not take, since both families write ``results/models/<model>/<input>/``.
CLASSIC_MODELS = ("knn", "logreg", "rf", "adaboost", "gboost", "svm", "histgb")

#: Model inputs: summary-statistic tables, frame sequences, pretrained embeddings (one vector
#: per track or window), and the suffix that cuts any of them into windows voted per track.
TABLE_INPUTS = ("mfcc_stats", "all_stats")
SEQUENCE_INPUTS = ("mfcc", "mel", "mfcc+mel")
EMBEDDING_INPUTS = ("musicnn",)
SEGMENT_SUFFIX = "_seg"
#: Default window length and hop of segment inputs, in seconds (config ``segments``).
SEGMENT_SECONDS = 3.0


def split_input(name):
    """``("mel", True)`` for ``"mel_seg"``: the base input and whether it is segment mode."""
    base = name.removesuffix(SEGMENT_SUFFIX)
    return base, base != name


#: musicnn (``genreflow.embeddings``): the input its weights were trained on, 3-s log-mel windows.
MUSICNN_SR = 16000
MUSICNN_N_FFT = 512
MUSICNN_HOP_LENGTH = 256
MUSICNN_N_MELS = 96
MUSICNN_N_FRAMES = 187
#: The musicnn checkpoints shipped in the PyPI package ``musicnn==0.1.0``.
MUSICNN_MODELS = ("MSD_musicnn", "MTT_musicnn")
#: Config ``features.embedding.model`` that turns the embedding off.
NO_EMBEDDING = "none"
#: A track's musicnn subgroup in a shard file (one row per window), and the ``dataset.h5``
#: dataset of their ``penultimate`` rows.
EMBEDDING_GROUP = "musicnn"
#: Seconds of one musicnn window (2.992 s).
MUSICNN_WINDOW_SECONDS = MUSICNN_N_FRAMES * MUSICNN_HOP_LENGTH / MUSICNN_SR
#: Windows per track kept in ``dataset.h5``: those of the first N_FRAMES frames (30 s), the span
#: every other input sees (10; ``genreflow.embeddings.n_windows`` of it).
MUSICNN_MAX_WINDOWS = (1 + -(-N_FRAMES * HOP_LENGTH * MUSICNN_SR // SR) // MUSICNN_HOP_LENGTH) // MUSICNN_N_FRAMES
