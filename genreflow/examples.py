"""Model inputs: whole tracks, windows or table rows of a set of tracks, read by index.

A source turns track ids into examples (one per track, or one per window in segment
mode, cut after the split) and reads any batch of them on demand, so only one batch of
``dataset.h5`` is in memory at a time. Both model families read their inputs here.
Sequences come time first, ``(frames, features)``: ``mfcc`` (T, 20), ``mel`` (T, 128)
and ``mfcc+mel`` (T, 148, the two aligned frame by frame), whatever layout the file
stores. Embeddings (``musicnn``) are vectors: the mean of a track's 3-s windows, or one
per window (``musicnn_seg``).
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

#: dataset.h5 name and time axis (in the stored row) of each sequence part.
SEQUENCE_PARTS = {"mfcc": ("mfcc", 0), "mel": ("mel", 1)}


class Examples:
    """The examples of a set of tracks: what to read, their labels and tracks.

    Attributes
    ----------
    index : numpy.ndarray
        What the source reads per example: dataset rows (tracks), ``(row, start)``
        pairs (windows) or table rows.
    labels : numpy.ndarray of str
    tracks : numpy.ndarray of str
        The track each example belongs to (several per track in segment mode).
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
        """Start of each window example of ``tracks`` in its track, in seconds (the
        order :meth:`examples` cuts them)."""
        starts = self.data.windows(list(tracks), self.segments["length"], self.segments["hop"])[1]
        return starts * HOP_LENGTH / SR

    def close(self):
        pass


class SequenceSource(_Source):
    """Whole-track or windowed sequences of ``mfcc``, ``mel`` or ``mfcc+mel`` from ``dataset.h5``.

    Parameters
    ----------
    dataset_path : path-like
        The merged dataset (``docs/contracts.md``).
    base_input : {"mfcc", "mel", "mfcc+mel"}
    segments : dict, optional
        ``{"length": seconds, "hop": seconds}``: one example per full window; None for
        whole tracks.
    max_frames : int
        Whole-track mode: keep only the first ``max_frames`` frames (0 keeps all);
        shrinks networks for quick runs.
    """

    def __init__(self, dataset_path, base_input, segments=None, max_frames=0):
        self.data = FeatureDataset(dataset_path)
        self.parts = base_input.split("+")
        if any(p not in SEQUENCE_PARTS for p in self.parts):
            raise ValueError(f"unknown sequence input '{base_input}'; use mfcc, mel or mfcc+mel")
        self.segments = segments
        # features per part (mfcc 20, mel 128), read once: shape() opens the file
        self._features = {}
        for part in self.parts:
            name, time_axis = SEQUENCE_PARTS[part]
            self._features[part] = self.data.shape(name)[1:][1 - time_axis]
        self.stored_frames = stored = self.data.shape("mfcc")[1]
        if segments:
            self.width = seconds_to_frames(segments["length"])
        else:
            self.width = min(stored, max_frames) if max_frames else stored
        self._file = None

    @property
    def example_shape(self):
        """Shape of one example, ``(frames, features)``."""
        return (self.width, sum(self._features.values()))

    def examples(self, tracks):
        """Examples of ``tracks``: one per track, or one per full window of each track."""
        tracks = list(tracks)
        rows = self.data.rows(tracks)
        if not self.segments:
            return Examples(rows, self.data.labels[rows], tracks)
        win_rows, starts, names, _ = self.data.windows(tracks, self.segments["length"], self.segments["hop"])
        if len(tracks) and not len(win_rows):
            raise ValueError(
                f"no track is as long as one {self.segments['length']} s window; "
                "lower segments.length in config.yaml"
            )
        return Examples(np.stack([win_rows, starts], axis=1), self.data.labels[win_rows], names)

    def read(self, index):
        """The examples at ``index`` (rows or ``(row, start)`` pairs) as (n, frames, features) float32."""
        index = np.asarray(index)
        if self.segments:
            return self._read_spans(index[:, 0], index[:, 1], self.width)
        return self._read_spans(index, np.zeros(len(index), dtype=int), self.width)

    def _read_spans(self, rows, starts, width):
        """``width`` frames from ``start`` of each row, every part side by side (time first)."""
        if self._file is None:  # opened on first use and kept: one open per process, not per batch
            self._file = h5py.File(self.data.path, "r")
        blocks = []
        for part in self.parts:
            name, time_axis = SEQUENCE_PARTS[part]
            dataset, n_features = self._file[name], self._features[part]
            stored = (width, n_features) if time_axis == 0 else (n_features, width)
            block = np.empty((len(rows), *stored), dtype=np.float32)
            for i, (row, start) in enumerate(zip(rows, starts)):
                # row by row: h5py's fancy indexing is ~20-40x slower on scattered rows
                span = slice(int(start), int(start) + width)
                block[i] = dataset[int(row), span] if time_axis == 0 else dataset[int(row), :, span]
            blocks.append(block if time_axis == 0 else block.transpose(0, 2, 1))
        return np.ascontiguousarray(blocks[0] if len(blocks) == 1 else np.concatenate(blocks, axis=2))

    def fit_scaler(self, tracks, chunk=16):
        """Per-feature mean and variance over the real frames of ``tracks`` (training ones only).

        Streams ``chunk`` tracks at a time through ``StandardScaler.partial_fit``; frames
        past a track's ``n_frames`` (zero padding) and past ``max_frames`` are left out.

        Returns
        -------
        mean, variance : numpy.ndarray, shape (n_features,)
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
    """A source small enough to hold in memory (tracks or windows x a few hundred numbers):
    ``_rows(tracks)`` gives ``(x, labels, tracks, ...)``; examples are appended to a table."""

    _x = np.zeros((0, 0), dtype=np.float32)

    @property
    def example_shape(self):
        """Shape of one example, ``(features,)`` (for tables known once ``examples`` has run)."""
        return (self._x.shape[1],)

    def examples(self, tracks):
        """Examples of ``tracks``; their rows are appended to the in-memory table."""
        x, y, names = self._rows(tracks)[:3]
        start = len(self._x)
        self._x = x if not start else np.concatenate([self._x, x])
        return Examples(np.arange(start, start + len(x)), y, names)

    def read(self, index):
        """The examples at ``index`` as (n, features) float32."""
        return self._x[np.asarray(index, dtype=int)]

    def fit_scaler(self, tracks):
        """Per-column mean and variance of the examples of ``tracks`` (training ones only)."""
        return _moments(StandardScaler().fit(self._rows(tracks)[0]))


class TableSource(_InMemorySource):
    """Statistics per track (``features.csv``) or per window (from ``dataset.h5``).

    Parameters
    ----------
    base_input : {"all_stats", "mfcc_stats"}
    table_path : path-like, optional
        ``features.csv`` (whole-track mode).
    dataset_path : path-like, optional
        ``dataset.h5`` (segment mode: window statistics from the frame matrix).
    segments : dict, optional
        ``{"length", "hop"}`` in seconds for segment mode.
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
    """musicnn embeddings from ``dataset.h5``, per track (mean of its windows) or per window.

    A track with no full musicnn window (shorter than about 3 s, possible when
    ``features.min_duration`` is lower) has no example: it is left out of training and
    not scored, as a track with no full window is in any segment input.

    Parameters
    ----------
    dataset_path : path-like
        The merged dataset, with its ``musicnn`` and ``n_musicnn_windows`` datasets.
    base_input : {"musicnn"}
    windowed : bool
        One example per window (``musicnn_seg``) instead of one per track. The windows
        are musicnn's own (non-overlapping, :data:`MUSICNN_WINDOW_SECONDS`), whatever
        the ``segments`` config says.
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
        window = MUSICNN_WINDOW_SECONDS
        self.segments = {"length": window, "hop": window} if windowed else None
        self._x = np.zeros((0, self.width), dtype=np.float32)

    def _rows(self, tracks):
        """Examples of ``tracks`` as (x, labels, tracks, window numbers)."""
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
            raise ValueError(
                f"no track is as long as one musicnn window ({MUSICNN_WINDOW_SECONDS:.2f} s); "
                "raise features.min_duration in config.yaml or add longer tracks"
            )
        names = np.asarray(tracks, dtype=str)[track_of]
        return x.astype(np.float32), self.data.labels[rows][track_of], names, window

    def window_starts(self, tracks):
        """Start of each example of :meth:`examples`'s ``tracks`` in its track, in seconds."""
        return self._rows(tracks)[3] * MUSICNN_WINDOW_SECONDS


def make_source(input_name, dataset_path=None, table_path=None, segments=None, max_frames=0):
    """The source of one model input and the files it reads.

    Parameters
    ----------
    input_name : str
        ``mfcc_stats``, ``all_stats``, ``mfcc``, ``mel``, ``mfcc+mel`` or ``musicnn``,
        with ``_seg`` for windows of ``segments["length"]`` seconds every
        ``segments["hop"]`` (``musicnn_seg``: musicnn's own 3-s windows).
    dataset_path, table_path : path-like, optional
        ``dataset.h5`` (sequences, windows) and ``features.csv`` (whole-track tables).
    segments : dict, optional
        The ``segments`` config section; used for ``_seg`` inputs only.
    max_frames : int
        Whole-track sequences: keep the first ``max_frames`` frames (0: all).
    """
    base, windowed = split_input(input_name)
    if dataset_path is None and (windowed or base not in TABLE_INPUTS):
        raise ValueError(
            f"input '{input_name}' needs frame-level features (results/features/dataset.h5); "
            "a feature table (dataset.source: table) has none: use mfcc_stats or all_stats"
        )
    segments = segments or {"length": SEGMENT_SECONDS, "hop": SEGMENT_SECONDS}
    window = {"length": float(segments["length"]), "hop": float(segments["hop"])} if windowed else None
    if base in TABLE_INPUTS:
        return TableSource(base, table_path=table_path, dataset_path=dataset_path, segments=window)
    if base in EMBEDDING_INPUTS:
        return EmbeddingSource(dataset_path, base, windowed)
    return SequenceSource(dataset_path, base, window, max_frames)
