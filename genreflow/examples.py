"""Model inputs of both model families: whole tracks, windows or table rows, read by index.

A source turns track ids into examples (windows are cut after the split) and reads any batch on demand, so
only one batch of ``dataset.h5`` is in memory at a time. Sequences come time first, ``(frames, features)``,
whatever layout the file stores; ``mfcc+mel`` puts the two side by side, frame by frame.
"""

from __future__ import annotations

import h5py
import numpy as np
from sklearn.preprocessing import StandardScaler

from genreflow.constants import (
    EMBEDDING_GROUP,
    EMBEDDING_INPUTS,
    HOP_LENGTH,
    MUSICNN_WINDOW_SECONDS,
    SEGMENT_SECONDS,
    SR,
    TABLE_INPUTS,
    split_input,
)
from genreflow.dataset import FeatureDataset, load_table, seconds_to_frames

#: Time axis, in its stored rows, of each sequence part (a dataset of dataset.h5).
SEQUENCE_PARTS = {"mfcc": 0, "mel": 1}


class Examples:
    """The examples of a set of tracks.

    Attributes
    ----------
    index : numpy.ndarray
        What the source reads per example: dataset rows, ``(row, start)`` pairs (windows) or table rows.
    labels, tracks : numpy.ndarray of str
    """

    def __init__(self, index, labels, tracks):
        self.index = np.asarray(index)
        self.labels = np.asarray(labels, dtype=str)
        self.tracks = np.asarray(tracks, dtype=str)

    def __len__(self):
        return len(self.index)


def _moments(scaler):
    return scaler.mean_.astype(np.float32), scaler.var_.astype(np.float32)


class _Source:
    """What every source shares: frame windows of ``self.data`` and nothing to close."""

    def window_starts(self, tracks):
        """Start of each window example of ``tracks`` in its track, in seconds, in :meth:`examples` order."""
        return self.data.windows(list(tracks), self.segments["length"], self.segments["hop"])[1] * HOP_LENGTH / SR

    def close(self):
        pass


class SequenceSource(_Source):
    """Whole-track or windowed sequences of ``mfcc``, ``mel`` or ``mfcc+mel`` from ``dataset.h5``.

    ``segments`` (``{"length", "hop"}`` in seconds) gives one example per full window; without it, whole
    tracks, cut to their first ``max_frames`` frames when set (to shrink networks for quick runs).
    """

    def __init__(self, dataset_path, base_input, segments=None, max_frames=0):
        self.data = FeatureDataset(dataset_path)
        self.parts = base_input.split("+")
        if any(p not in SEQUENCE_PARTS for p in self.parts):
            raise ValueError(f"unknown sequence input '{base_input}'; use mfcc, mel or mfcc+mel")
        self.segments = segments
        # features per part (mfcc 20, mel 128), read once: shape() opens the file
        self._features = {part: self.data.shape(part)[2 - SEQUENCE_PARTS[part]] for part in self.parts}
        self.stored_frames = stored = self.data.shape("mfcc")[1]
        self.width = seconds_to_frames(segments["length"]) if segments else min(stored, max_frames or stored)
        self._file = None

    @property
    def example_shape(self):
        return (self.width, sum(self._features.values()))

    def examples(self, tracks):
        """Examples of ``tracks``: one per track, or one per full window of each track."""
        tracks = list(tracks)
        rows = self.data.rows(tracks)
        if not self.segments:
            return Examples(rows, self.data.labels[rows], tracks)
        win_rows, starts, names, _ = self.data.windows(tracks, self.segments["length"], self.segments["hop"])
        if len(tracks) and not len(win_rows):
            raise ValueError(f"no track is as long as one {self.segments['length']} s window; "
                             "lower segments.length in config.yaml")
        return Examples(np.stack([win_rows, starts], axis=1), self.data.labels[win_rows], names)

    def read(self, index):
        """The examples at ``index`` as (n, frames, features) float32."""
        index = np.asarray(index)
        rows, starts = (index[:, 0], index[:, 1]) if self.segments else (index, np.zeros(len(index), dtype=int))
        return self._read_spans(rows, starts, self.width)

    def _read_spans(self, rows, starts, width):
        """``width`` frames from ``starts`` of each row, the parts side by side, time first."""
        if self._file is None:  # opened on first use and kept: one open per process, not per batch
            self._file = h5py.File(self.data.path, "r")
        blocks = []
        for part in self.parts:
            dataset, time_axis = self._file[part], SEQUENCE_PARTS[part]
            block = np.empty((len(rows), width, self._features[part]), dtype=np.float32)
            for i, (row, start) in enumerate(zip(rows, starts)):
                # row by row: h5py's fancy indexing is ~20-40x slower on scattered rows
                span = slice(int(start), int(start) + width)
                block[i] = dataset[int(row), span] if time_axis == 0 else dataset[int(row), :, span].T
            blocks.append(block)
        return blocks[0] if len(blocks) == 1 else np.concatenate(blocks, axis=2)

    def fit_scaler(self, tracks, chunk=16):
        """Per-feature float32 ``mean, variance`` of ``tracks`` (training ones only), ``chunk`` tracks at a time.

        Only real frames count: not the zero padding past a track's ``n_frames``, nor frames past ``max_frames``.
        """
        rows = self.data.rows(list(tracks))
        # segment mode: every frame of the track may fall in a window
        width = self.stored_frames if self.segments else self.width
        scaler = StandardScaler()
        for i in range(0, len(rows), chunk):
            block = rows[i : i + chunk]
            x = self._read_spans(block, np.zeros(len(block), dtype=int), width)
            real = [matrix[: min(int(n), width)] for matrix, n in zip(x, self.data.n_frames[block])]
            scaler.partial_fit(np.concatenate(real))
        return _moments(scaler)

    def close(self):
        if self._file is not None:
            self._file.close()
            self._file = None


class _InMemorySource(_Source):
    """A source small enough to hold in memory; ``_rows(tracks)`` gives ``(x, labels, tracks, ...)``."""

    _x = np.zeros((0, 0), dtype=np.float32)

    @property
    def example_shape(self):
        """``(features,)``; for tables known once ``examples`` has run."""
        return (self._x.shape[1],)

    def examples(self, tracks):
        """Examples of ``tracks``, appended to the in-memory table."""
        x, y, names = self._rows(tracks)[:3]
        start = len(self._x)
        self._x = x if not start else np.concatenate([self._x, x])
        return Examples(np.arange(start, start + len(x)), y, names)

    def read(self, index):
        return self._x[np.asarray(index, dtype=int)]

    def fit_scaler(self, tracks):
        """Per-column mean and variance of the examples of ``tracks`` (training ones only)."""
        return _moments(StandardScaler().fit(self._rows(tracks)[0]))


class TableSource(_InMemorySource):
    """``all_stats`` or ``mfcc_stats`` per track (``features.csv``) or per window (from ``dataset.h5``).

    ``table_path`` is read for whole tracks, ``dataset_path`` for ``segments`` (``{"length", "hop"}`` in s).
    """

    def __init__(self, base_input, table_path=None, dataset_path=None, segments=None):
        if not segments and table_path is None:
            raise ValueError(f"table input '{base_input}' needs features.csv")
        self.base_input, self.table_path, self.segments = base_input, table_path, segments
        self.data = FeatureDataset(dataset_path) if segments else None

    def _rows(self, tracks):
        tracks = list(tracks)
        if self.segments:
            x, y, names = self.data.segment_stats(tracks, self.segments["length"], self.segments["hop"],
                                                  self.base_input)
        else:
            x, y, _ = load_table(self.table_path, self.base_input, tracks)
            names = np.asarray(tracks, dtype=str)
        return x.astype(np.float32), y, names


class EmbeddingSource(_InMemorySource):
    """musicnn embeddings from ``dataset.h5``, per track (mean of its windows) or, ``windowed``, per window.

    The windows are musicnn's own (non-overlapping, :data:`MUSICNN_WINDOW_SECONDS`), whatever the
    ``segments`` config says. A track with no full window (shorter than about 3 s, possible with a lower
    ``features.min_duration``) has no example: it is left out of training and not scored, as in any
    segment input.
    """

    def __init__(self, dataset_path, base_input="musicnn", windowed=False):
        if base_input not in EMBEDDING_INPUTS:
            raise ValueError(f"unknown embedding input '{base_input}'; use one of {EMBEDDING_INPUTS}")
        self.data = FeatureDataset(dataset_path)
        with h5py.File(self.data.path, "r") as f:
            if EMBEDDING_GROUP not in f:
                raise ValueError(
                    f"input '{base_input}' needs musicnn embeddings, and {self.data.path} has none: "
                    "set features.embedding.model in config.yaml (MSD_musicnn or MTT_musicnn) and rerun"
                )
            self.model = str(f[EMBEDDING_GROUP].attrs["model"])
            self.width = f[EMBEDDING_GROUP].shape[2]
            self.n_windows = f["n_musicnn_windows"][()]
        self.segments = {"length": MUSICNN_WINDOW_SECONDS, "hop": MUSICNN_WINDOW_SECONDS} if windowed else None
        self._x = np.zeros((0, self.width), dtype=np.float32)

    def _rows(self, tracks):
        """``(x, labels, tracks, window numbers)`` of the examples of ``tracks``."""
        tracks = list(tracks)
        rows = self.data.rows(tracks)
        counts = self.n_windows[rows]
        embedded = self.data.read(EMBEDDING_GROUP, rows)  # (tracks, windows, 200), zero padded
        if self.segments:  # every real window of each track, in order
            track_of = np.repeat(np.arange(len(rows)), counts)
            window = np.concatenate([np.arange(n) for n in counts]).astype(int) if len(rows) else track_of
            x = embedded[track_of, window]
        else:  # the mean of each track's real windows
            track_of = np.flatnonzero(counts > 0)
            window = np.zeros(len(track_of), dtype=int)
            x = embedded[track_of].sum(axis=1) / counts[track_of, np.newaxis]
        if len(tracks) and not len(track_of):
            raise ValueError(f"no track is as long as one musicnn window ({MUSICNN_WINDOW_SECONDS:.2f} s); "
                             "raise features.min_duration in config.yaml or add longer tracks")
        return x.astype(np.float32), self.data.labels[rows][track_of], np.asarray(tracks, dtype=str)[track_of], window

    def window_starts(self, tracks):
        """Start of each example of ``tracks`` in its track, in seconds, in :meth:`examples` order."""
        return self._rows(tracks)[3] * MUSICNN_WINDOW_SECONDS


def make_source(input_name, dataset_path=None, table_path=None, segments=None, max_frames=0):
    """The source of one model input.

    Parameters
    ----------
    input_name : str
        ``mfcc_stats``, ``all_stats``, ``mfcc``, ``mel``, ``mfcc+mel`` or ``musicnn``, with ``_seg`` for
        windows of ``segments["length"]`` seconds every ``segments["hop"]`` (``musicnn_seg``: its own 3-s windows).
    dataset_path, table_path : path-like, optional
        ``dataset.h5`` (sequences, windows, embeddings) and ``features.csv`` (whole-track tables).
    """
    base, windowed = split_input(input_name)
    if dataset_path is None and (windowed or base not in TABLE_INPUTS):
        raise ValueError(f"input '{input_name}' needs frame-level features (results/features/dataset.h5); "
                         "a feature table (dataset.source: table) has none: use mfcc_stats or all_stats")
    segments = segments or {"length": SEGMENT_SECONDS, "hop": SEGMENT_SECONDS}
    window = {"length": float(segments["length"]), "hop": float(segments["hop"])} if windowed else None
    if base in TABLE_INPUTS:
        return TableSource(base, table_path=table_path, dataset_path=dataset_path, segments=window)
    if base in EMBEDDING_INPUTS:
        return EmbeddingSource(dataset_path, base, windowed)
    return SequenceSource(dataset_path, base, window, max_frames)
