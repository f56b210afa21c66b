"""Track-level splits: stratified hold-out, k-fold, and published list files.

Everything is decided per track, so no track's windows or frames land on both sides. A split
is a DataFrame ``track, label, part, fold`` sorted by track.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold, train_test_split

from genreflow.constants import AUDIO_EXTENSIONS


def stratified_split(tracks, labels, test_size=0.25, valid_size=0.0, seed=0):
    """Hold out a stratified, seeded share of tracks for testing (the study's 75/25); all in fold 0.

    Parameters
    ----------
    valid_size : float
        Share of the *training* tracks moved to a ``valid`` part (0: none; the
        networks then carve their own validation part from ``train``).
    """
    tracks, labels = np.asarray(tracks), np.asarray(labels)
    _check_stratifiable(labels, 2, "stratified")
    train, test = train_test_split(np.arange(len(tracks)), test_size=test_size, stratify=labels, random_state=seed)
    part = np.full(len(tracks), "train", dtype=object)
    part[test] = "test"
    if valid_size > 0:
        _, valid = train_test_split(train, test_size=valid_size, stratify=labels[train], random_state=seed)
        part[valid] = "valid"
    return _frame(tracks, labels, part, np.zeros(len(tracks), dtype=int))


def kfold_split(tracks, labels, n_folds=5, seed=0):
    """Assign each track to one of ``n_folds`` stratified folds (its test fold); ``part`` is ``"cv"``."""
    tracks, labels = np.asarray(tracks), np.asarray(labels)
    _check_stratifiable(labels, n_folds, "kfold")
    fold = np.zeros(len(tracks), dtype=int)
    folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for k, (_, test) in enumerate(folds.split(tracks, labels)):
        fold[test] = k
    return _frame(tracks, labels, np.full(len(tracks), "cv", dtype=object), fold)


def read_list_file(path):
    """Track ids from a list file such as ``train_filtered.txt``, one ``<label>/<file>`` a line.

    An audio extension is dropped, so ``blues/blues.00000.au`` names the same track as ``blues/blues.00000.wav``.
    """
    lines = [line.strip() for line in Path(path).read_text().splitlines()]
    files = [Path(line) for line in lines if line and not line.startswith("#")]
    return [f"{f.parent.name}/{f.stem if f.suffix.lstrip('.') in AUDIO_EXTENSIONS else f.name}" for f in files]


def lists_split(tracks, labels, list_files):
    """Split by published list files (e.g. the artist-filtered GTZAN split).

    Parameters
    ----------
    list_files : dict
        ``{"train": path, "valid": path, "test": path}``; ``valid`` may be absent.

    Returns
    -------
    split : pandas.DataFrame
        The tracks found in both the data and a list.
    report : dict
        Sorted track ids: ``missing_from_data`` (listed, not in the data) and ``not_in_lists``.
    """
    label_of = dict(zip(tracks, labels))
    part_of = {}
    for part, path in list_files.items():
        for track in read_list_file(path):
            if track in part_of and part_of[track] != part:
                raise ValueError(
                    f"{path}: track {track} is already listed in the {part_of[track]} list; "
                    "a track may be in one list only"
                )
            part_of[track] = part
    kept = sorted(t for t in part_of if t in label_of)
    report = {
        "missing_from_data": sorted(t for t in part_of if t not in label_of),
        "not_in_lists": sorted(t for t in label_of if t not in part_of),
    }
    columns = (np.asarray(c, dtype=object) for c in (kept, [label_of[t] for t in kept], [part_of[t] for t in kept]))
    return _frame(*columns, np.zeros(len(kept), dtype=int)), report


def iter_folds(split):
    """Yield ``(fold, train_ids, valid_ids, test_ids)`` for a split table.

    One fold for a hold-out split; for a k-fold split, fold ``f`` tests the tracks whose
    ``fold`` is ``f`` and trains on the rest (``valid_ids`` empty).
    """
    if (split["part"] == "cv").all():
        for fold in sorted(split["fold"].unique()):
            test = split["fold"] == fold
            yield int(fold), split.loc[~test, "track"].tolist(), [], split.loc[test, "track"].tolist()
        return
    yield 0, *(split.loc[split["part"] == p, "track"].tolist() for p in ("train", "valid", "test"))


def split_summary(split):
    """Counts of tracks per label (rows) and part (columns), with totals."""
    return pd.crosstab(split["label"], split["part"], margins=True, margins_name="total")


def _check_stratifiable(labels, needed, method):
    counts = pd.Series(labels).value_counts()
    thin = counts[counts < needed]
    if len(thin):
        raise ValueError(
            f"split method '{method}' needs at least {needed} tracks per label; "
            f"too few for: {', '.join(f'{k} ({v})' for k, v in thin.items())}. "
            "Add tracks or choose another split.method in config.yaml"
        )


def _frame(tracks, labels, part, fold):
    frame = pd.DataFrame({"track": tracks, "label": labels, "part": part, "fold": fold})
    return frame.sort_values("track", kind="stable").reset_index(drop=True)


def make_split(tracks, labels, settings):
    """Split by the configured method (config section ``split``).

    Returns
    -------
    split : pandas.DataFrame
    unmatched : pandas.DataFrame
        ``track, problem`` for list entries missing from the data and data tracks no list
        names (empty for the other methods).
    """
    method = settings.get("method", "stratified")
    seed = settings.get("seed", 0)
    unmatched = pd.DataFrame(columns=["track", "problem"])
    if method == "stratified":
        split = stratified_split(tracks, labels, settings.get("test_size", 0.25), settings.get("valid_size", 0.0), seed)
    elif method == "kfold":
        split = kfold_split(tracks, labels, settings.get("n_folds", 5), seed)
    elif method == "lists":
        files = {part: path for part, path in settings.get("lists", {}).items() if path}
        split, report = lists_split(tracks, labels, files)
        unmatched = pd.DataFrame(
            [(t, "listed but not in the data") for t in report["missing_from_data"]]
            + [(t, "in the data but in no list") for t in report["not_in_lists"]],
            columns=["track", "problem"],
        )
        if not (split["part"] == "train").any() or not (split["part"] == "test").any():
            raise ValueError(
                f"split.lists: no data track is in the train or test list ({files}); "
                "check the list files name tracks as <label>/<file>"
            )
    else:
        raise ValueError(f"split.method '{method}' is unknown; use stratified, kfold or lists")
    return split, unmatched
