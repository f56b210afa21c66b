"""The merged feature dataset: summary statistics, the HDF5 layout, and its readers.

Layout and column names are documented in ``docs/contracts.md``. The merge streams
shard files into pre-sized HDF5 datasets, ``MERGE_BLOCK`` rows at a time, so peak
memory does not grow with the number of tracks.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from genreflow.constants import (
    EMBEDDING_GROUP,
    HOP_LENGTH,
    MUSICNN_MAX_WINDOWS,
    N_CHROMA,
    N_FRAMES,
    N_MELS,
    N_MFCC,
    NO_EMBEDDING,
    SR,
    TABLE_INPUTS,
    split_input,
)
from genreflow.files import atomic_path

log = logging.getLogger(__name__)

#: Tracks merged in memory before one write per dataset (~30 MB).
MERGE_BLOCK = 32
#: The musicnn output ``dataset.h5`` keeps per window (``musicnn``), and its width.
EMBEDDING_OUTPUT = "penultimate"
EMBEDDING_WIDTH = 200

SCALAR_FRAME_FEATURES = (
    "rms",
    "spectral_centroid",
    "spectral_bandwidth",
    "rolloff",
    "zero_crossing_rate",
)
FRAME_COLUMNS = (
    [f"chroma{i}" for i in range(1, N_CHROMA + 1)]
    + list(SCALAR_FRAME_FEATURES)
    + [f"mfcc{i}" for i in range(1, N_MFCC + 1)]
)
#: Kaggle GTZAN column order (features_30_sec.csv) for the features we compute,
#: followed by the study's per-pitch-class chroma statistics.
STATS_COLUMNS = (
    ["length", "chroma_stft_mean", "chroma_stft_var"]
    + [f"{name}_{stat}" for name in SCALAR_FRAME_FEATURES for stat in ("mean", "var")]
    + ["tempo"]
    + [f"mfcc{i}_{stat}" for i in range(1, N_MFCC + 1) for stat in ("mean", "var")]
    + [f"chroma{i}_{stat}" for i in range(1, N_CHROMA + 1) for stat in ("mean", "var")]
)


def input_columns(columns, input_name):
    """The feature columns a table input uses, in table order.

    Parameters
    ----------
    columns : sequence of str
        Columns of a stats table (``features.csv`` or a Kaggle-like table).
    input_name : {"mfcc_stats", "all_stats"}
        ``mfcc_stats``: the ``mfccN_mean``/``mfccN_var`` columns; ``all_stats``: every
        feature column except ``length`` (and the id/label columns).
    """
    base, _ = split_input(input_name)
    if base == "mfcc_stats":
        chosen = [c for c in columns if c.startswith("mfcc") and c.endswith(("_mean", "_var"))]
    elif base == "all_stats":
        chosen = [c for c in columns if c not in ("filename", "length", "label", "track")]
    else:
        raise KeyError(f"unknown table input '{input_name}'; use one of {TABLE_INPUTS}")
    if not chosen:
        raise ValueError(f"no columns for input '{input_name}' among {list(columns)[:8]}...")
    return chosen


def frame_matrix(features):
    """Stack per-track frame features (librosa layout, frames last) into (T, 37)."""
    parts = [features["chroma"]]
    parts += [np.asarray(features[name])[np.newaxis, :] for name in SCALAR_FRAME_FEATURES]
    parts.append(features["mfcc"])
    return np.concatenate(parts, axis=0).T.astype(np.float32)


def stats_from_frames(frames, tempo, length):
    """Means and variances over frames in ``STATS_COLUMNS`` order, as the Kaggle table
    and the study compute them (``chroma_stft_mean``/``_var`` pool all 12 pitch classes).

    Parameters
    ----------
    frames : numpy.ndarray, shape (T, 37)
        Frame features in ``FRAME_COLUMNS`` order.
    tempo : float
    length : int
        Samples of the decoded track (or window).

    Returns
    -------
    numpy.ndarray, shape (len(STATS_COLUMNS),), float64
    """
    frames = np.asarray(frames, dtype=np.float64)
    chroma = frames[:, :N_CHROMA]
    scalars = frames[:, N_CHROMA : N_CHROMA + len(SCALAR_FRAME_FEATURES)]
    mfcc = frames[:, N_CHROMA + len(SCALAR_FRAME_FEATURES) :]

    def mean_var(block):
        return np.stack([block.mean(axis=0), block.var(axis=0)], axis=1).ravel()

    return np.concatenate(
        [
            [length, chroma.mean(), chroma.var()],
            mean_var(scalars),
            [tempo],
            mean_var(mfcc),
            mean_var(chroma),
        ]
    )


def track_arrays(features, tempo, n_samples):
    """One track's rows of ``dataset.h5``, from its frame-level features (the merge's
    and so ``genreflow predict``'s: a model is fed what it was trained on).

    Parameters
    ----------
    features : dict
        ``genreflow.features.extract_features`` output (frames last).
    tempo : float
    n_samples : int
        Samples of the decoded track.

    Returns
    -------
    dict
        ``stats`` (``STATS_COLUMNS``), ``frames`` (N_FRAMES x 37), ``mfcc``
        (N_FRAMES x 20), ``mel`` (128 x N_FRAMES, dB over -80..0 rescaled to 0..1),
        ``n_frames`` (real frames, at most N_FRAMES); padded with zeros or cut.
    """
    frames = frame_matrix(features)
    return {
        "stats": stats_from_frames(frames, tempo, n_samples),
        "frames": fit_length(frames),
        "mfcc": fit_length(np.asarray(features["mfcc"]).T),
        "mel": fit_length(((np.asarray(features["mel_db"]) + 80.0) / 80.0).T).T,
        "n_frames": min(frames.shape[0], N_FRAMES),
    }


def window_starts(n_frames, window, hop):
    """Start frames of the full windows of ``window`` frames every ``hop`` frames."""
    if n_frames < window:
        return np.zeros(0, dtype=int)
    return np.arange(0, n_frames - window + 1, hop)


def seconds_to_frames(seconds, sr=SR, hop_length=HOP_LENGTH):
    """Frames covering ``seconds`` of audio (3 s -> 129 frames)."""
    return max(1, int(round(seconds * sr / hop_length)))


def fit_length(matrix, n_frames=N_FRAMES):
    """Cut or zero-pad a (T, D) matrix to ``n_frames`` rows."""
    out = np.zeros((n_frames, matrix.shape[1]), dtype=np.float32)
    n = min(n_frames, matrix.shape[0])
    out[:n] = matrix[:n]
    return out


def merge_shards(shard_files, dataset_path, features_csv, rejected_csv):
    """Stream shard files into ``dataset.h5``, the Kaggle-like table and ``rejected.csv``.

    Rows are in sorted track-id order, so the outputs do not depend on the sharding.

    Parameters
    ----------
    shard_files : sequence of path-like
        As :func:`genreflow.features.extract_shard_file` writes them.
    dataset_path, features_csv, rejected_csv : path-like
        Outputs, each written under a temporary name and renamed when complete.

    Returns
    -------
    int
        Number of accepted tracks.
    """
    entries = []  # (shard file, track id, the track's attributes)
    for path in shard_files:
        with h5py.File(path, "r") as f:
            for track in map(_text, f.attrs["tracks"]):
                entries.append((path, track, {k: _text(v) for k, v in f[track].attrs.items()}))
    entries.sort(key=lambda entry: entry[1])
    accepted = [entry for entry in entries if entry[2]["status"] == "ok"]
    rejected = [attrs for _, _, attrs in entries if attrs["status"] != "ok"]
    embedding = _embedding_model([attrs for _, _, attrs in accepted])
    rejected_frame = pd.DataFrame(
        [(a["track"], a["source"], a["reason"]) for a in rejected],
        columns=["track", "source", "reason"],
    )
    with atomic_path(rejected_csv) as tmp:
        rejected_frame.to_csv(tmp, index=False)
    for attrs in rejected:
        log.warning("rejected %s (%s): %s", attrs["track"], attrs["source"], attrs["reason"])
    if not accepted:
        raise ValueError(
            f"all {len(rejected)} tracks were rejected (see {rejected_csv}); "
            "check dataset.* in config.yaml points at audio files"
        )

    n = len(accepted)
    genres = sorted({attrs["label"] for _, _, attrs in accepted})
    stats = np.empty((n, len(STATS_COLUMNS)))  # float64 in features.csv, as computed
    string = h5py.string_dtype()
    with atomic_path(dataset_path) as tmp, h5py.File(tmp, "w") as out, contextlib.ExitStack() as stack:
        out.attrs["genres"] = genres
        out.create_dataset("track", data=[attrs["track"] for _, _, attrs in accepted], dtype=string)
        out.create_dataset("label", data=[attrs["label"] for _, _, attrs in accepted], dtype=string)
        out.create_dataset("tempo", data=[attrs["tempo"] for _, _, attrs in accepted], dtype="f4")
        per_track = {
            "n_frames": out.create_dataset("n_frames", (n,), dtype="i4"),
            "frames": out.create_dataset("frames", (n, N_FRAMES, len(FRAME_COLUMNS)), dtype="f4",
                                         chunks=(1, N_FRAMES, len(FRAME_COLUMNS))),
            "mfcc": out.create_dataset("mfcc", (n, N_FRAMES, N_MFCC), dtype="f4",
                                       chunks=(1, N_FRAMES, N_MFCC)),
            "mel": out.create_dataset("mel", (n, N_MELS, N_FRAMES), dtype="f4", chunks=(1, N_MELS, N_FRAMES)),
        }
        per_track["frames"].attrs["columns"] = FRAME_COLUMNS
        if embedding != NO_EMBEDDING:
            shape = (MUSICNN_MAX_WINDOWS, EMBEDDING_WIDTH)
            per_track[EMBEDDING_GROUP] = out.create_dataset(EMBEDDING_GROUP, (n, *shape), dtype="f4",
                                                            chunks=(1, *shape))
            per_track[EMBEDDING_GROUP].attrs["model"] = embedding
            per_track["n_musicnn_windows"] = out.create_dataset("n_musicnn_windows", (n,), dtype="i4")
        paths = dict.fromkeys(path for path, _, _ in accepted)
        shards = {path: stack.enter_context(h5py.File(path, "r")) for path in paths}
        block = {name: [] for name in per_track}  # consecutive rows, written together
        for i, (path, track, attrs) in enumerate(accepted):
            group = shards[path][track]
            features = {name: d[()] for name, d in group.items() if isinstance(d, h5py.Dataset)}
            arrays = track_arrays(features, attrs["tempo"], attrs["n_samples"])
            stats[i] = arrays["stats"]
            if embedding != NO_EMBEDDING:
                windows = group[EMBEDDING_GROUP][EMBEDDING_OUTPUT][:MUSICNN_MAX_WINDOWS]
                arrays[EMBEDDING_GROUP] = fit_length(windows, MUSICNN_MAX_WINDOWS)
                arrays["n_musicnn_windows"] = len(windows)
            for name, rows_so_far in block.items():
                rows_so_far.append(arrays[name])
            if len(block["mel"]) == MERGE_BLOCK or i == n - 1:
                # one write per dataset and block: row by row, HDF5's per-call cost dominated
                first = i + 1 - len(block["mel"])
                for name, rows_so_far in block.items():
                    per_track[name][first : i + 1] = np.asarray(rows_so_far)
                    rows_so_far.clear()
                log.info("merged %d/%d tracks", i + 1, n)
        out.create_dataset("stats", data=stats, dtype="f4").attrs["columns"] = STATS_COLUMNS
    rows = [[Path(attrs["source"]).name, *row, attrs["label"], attrs["track"]]
            for (_, _, attrs), row in zip(accepted, stats)]
    table = pd.DataFrame(rows, columns=["filename", *STATS_COLUMNS, "label", "track"])
    table["length"] = table["length"].astype(int)
    with atomic_path(features_csv) as tmp:
        table.to_csv(tmp, index=False)
    return n


def _embedding_model(track_attrs):
    """The one ``features.embedding.model`` the accepted tracks were extracted with."""
    models = sorted({attrs.get("embedding", NO_EMBEDDING) for attrs in track_attrs})
    if len(models) > 1:
        raise ValueError(
            f"the shard files were extracted with different features.embedding.model ({', '.join(models)}); "
            "rerun the extraction (snakemake --forcerun extract_features)"
        )
    return models[0] if models else NO_EMBEDDING


def read_table(path):
    """Read a stats table (``features.csv`` or a Kaggle-like table) with a ``track`` id.

    Tables without a ``track`` column (Kaggle's own) get ``<label>/<stem of filename>``.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"feature table {path} does not exist; set dataset.table in config.yaml")
    table = pd.read_csv(path)
    missing = {"filename", "label"} - set(table.columns)
    if missing:
        raise ValueError(
            f"{path}: missing column(s) {sorted(missing)}; a feature table needs "
            "'filename', 'label' and numeric feature columns"
        )
    if "track" not in table.columns:
        stems = table["filename"].astype(str).str.replace(r"\.(wav|au|flac|ogg|mp3)$", "", regex=True)
        table["track"] = table["label"].astype(str) + "/" + stems
    duplicated = table["track"][table["track"].duplicated()]
    if len(duplicated):
        raise ValueError(f"{path}: duplicate track(s) {duplicated.tolist()[:5]}; each filename must appear once per label")
    return table


def load_table(path, input_name, tracks):
    """Feature matrix and labels of ``tracks`` for a table input.

    Returns
    -------
    X : numpy.ndarray, shape (len(tracks), n_features)
    y : numpy.ndarray of str
    columns : list of str
    """
    table = read_table(path).set_index("track")
    columns = input_columns(table.columns, input_name)
    unknown = [t for t in tracks if t not in table.index]
    if unknown:
        raise KeyError(f"{path}: no rows for track(s) {unknown[:5]}; rerun the split after changing the data")
    rows = table.loc[list(tracks)]
    return rows[columns].to_numpy(dtype=np.float64), rows["label"].to_numpy(dtype=str), columns


class FeatureDataset:
    """Read access to ``dataset.h5`` by track id.

    Parameters
    ----------
    path : path-like
        The merged dataset.

    Attributes
    ----------
    tracks, labels : numpy.ndarray of str
    genres : list of str
    """

    def __init__(self, path):
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"{self.path} does not exist; run the merge_features rule first")
        with h5py.File(self.path, "r") as f:
            self.tracks = f["track"].asstr()[()]
            self.labels = f["label"].asstr()[()]
            self.genres = [_text(g) for g in f.attrs["genres"]]
            self.n_frames = f["n_frames"][()]
            self.tempo = f["tempo"][()]
        self._row = {t: i for i, t in enumerate(self.tracks)}

    def rows(self, tracks):
        """Row indices of ``tracks``, with a clear error for unknown ones."""
        unknown = [t for t in tracks if t not in self._row]
        if unknown:
            raise KeyError(f"{self.path}: no track(s) {unknown[:5]}; rerun the split after changing the data")
        return np.array([self._row[t] for t in tracks], dtype=int)

    def read(self, name, rows):
        """Rows of dataset ``name`` (``mfcc``, ``mel``, ``frames``, ``stats``), in the given order."""
        rows = np.asarray(rows, dtype=int)
        order = np.argsort(rows)
        out = np.empty((len(rows),) + self.shape(name)[1:], dtype=np.float32)
        with h5py.File(self.path, "r") as f:
            # h5py fancy indexing needs increasing indices
            out[order] = f[name][rows[order]] if len(rows) else out[order]
        return out

    def shape(self, name):
        with h5py.File(self.path, "r") as f:
            return f[name].shape

    def windows(self, tracks, seconds, hop_seconds):
        """Segment index: one ``(row, start_frame)`` per full window of each track.

        Returns
        -------
        rows, starts : numpy.ndarray of int
        window_tracks : numpy.ndarray of str
        width : int
            Frames per window.
        """
        width = seconds_to_frames(seconds)
        hop = seconds_to_frames(hop_seconds)
        rows, starts, names = [], [], []
        for track, row in zip(tracks, self.rows(tracks)):
            for start in window_starts(int(self.n_frames[row]), width, hop):
                rows.append(row)
                starts.append(start)
                names.append(track)
        return np.array(rows, dtype=int), np.array(starts, dtype=int), np.array(names, dtype=str), width

    def segment_stats(self, tracks, seconds, hop_seconds, input_name):
        """Summary statistics of each window, for the classic models' segment mode.

        Tempo is the whole track's (one estimate per 3 s window would be noise).

        Returns
        -------
        X : numpy.ndarray, shape (n_windows, n_features)
        y : numpy.ndarray of str
        window_tracks : numpy.ndarray of str
        """
        rows, starts, names, width = self.windows(tracks, seconds, hop_seconds)
        columns = input_columns(STATS_COLUMNS, input_name)
        keep = [STATS_COLUMNS.index(c) for c in columns]
        X = np.empty((len(rows), len(keep)))
        labels = np.empty(len(rows), dtype=object)
        length = width * HOP_LENGTH
        # open the file once, not once per track
        with h5py.File(self.path, "r") as f:
            frames_ds = f["frames"]
            for row in np.unique(rows):
                frames = frames_ds[row]
                for i in np.flatnonzero(rows == row):
                    window = frames[starts[i] : starts[i] + width]
                    X[i] = stats_from_frames(window, self.tempo[row], length)[keep]
                    labels[i] = self.labels[row]
        return X, labels.astype(str), names


def _text(value):
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value
