"""Classify new audio with a model folder the workflow trained (``genreflow predict``).

Prediction takes the training path on purpose (shard extraction, a scratch ``dataset.h5``, the model's input
settings, :func:`genreflow.jobs.vote_tracks`), so a model sees exactly the features it was trained on and a
training track gets the probabilities of ``predictions.csv``.
"""

from __future__ import annotations

import contextlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import soundfile as sf

from genreflow.audio import AudioError, load_audio
from genreflow.constants import HOP_LENGTH, N_FRAMES, SR
from genreflow.dataset import merge_shards
from genreflow.examples import make_source
from genreflow.features import extract_shard_file
from genreflow.jobs import classic_proba, vote_tracks
from genreflow.provenance import check_manifest

#: Samples of one whole-track excerpt: the N_FRAMES frames a model of whole tracks sees.
EXCERPT_SAMPLES = N_FRAMES * HOP_LENGTH


@dataclass
class TrainedModel:
    """A model folder, checked against its manifest, with its fitted models loaded."""

    folder: Path
    manifest: dict
    models: list  # one fitted pipeline per outer fold (classic), or the Keras network

    @property
    def classes(self):
        return list(self.manifest["classes"])

    def proba(self, source, examples):
        """Class probabilities of ``examples``: the mean over the folder's fitted models."""
        if self.manifest["family"] == "classic":
            X = source.read(examples.index)
            return np.mean([classic_proba(m, X, self.classes) for m in self.models], axis=0)
        from genreflow.models.neural import predict_proba

        batch = int(self.manifest["training"]["batch_size"])
        return np.mean([predict_proba(m, source, examples, self.classes, batch) for m in self.models], axis=0)


def load_trained(folder, trust=False):
    """Load a model folder (``results/models/<model>/<input>``) after checking its manifest with
    :func:`genreflow.provenance.check_manifest`, which raises ``UntrustedModelError``."""
    folder = Path(folder)
    manifest = check_manifest(folder, trust)
    if manifest["family"] == "classic":
        models = joblib.load(folder / "model.joblib")["pipelines"]
    else:
        import keras

        models = [keras.models.load_model(folder / "model.keras")]
    return TrainedModel(folder, manifest, models)


def excerpt_spans(n_samples, min_duration=5.0, sr=SR):
    """(start, stop) samples of the whole-track excerpts of a track of ``n_samples``: the whole track when
    no longer than :data:`EXCERPT_SAMPLES` (as in training), else one excerpt every :data:`EXCERPT_SAMPLES`
    but a last one shorter than ``min_duration`` seconds."""
    if n_samples <= EXCERPT_SAMPLES:
        return [(0, n_samples)]
    spans = [(s, min(s + EXCERPT_SAMPLES, n_samples)) for s in range(0, n_samples, EXCERPT_SAMPLES)]
    return [(a, b) for a, b in spans if b - a >= min_duration * sr]


def predict_files(trained, paths, min_duration=5.0, progress=None):
    """Classify audio files (any format the extraction decodes, any rate, mono or stereo).

    A whole-track model scores each excerpt (:func:`excerpt_spans`), a segment model (``_seg``) each window
    of each; a file's genre is their mean probability, the vote of training. ``min_duration`` is the shortest
    usable file or excerpt, in seconds; ``progress`` wraps the list of files being extracted (``tqdm.tqdm``).

    Returns
    -------
    files : pandas.DataFrame
        One row per classified file: ``file``, ``genre``, ``probability``, ``p_<genre>``.
    timeline : pandas.DataFrame
        One row per excerpt or window: ``file``, ``start``, ``end`` (seconds), ``genre``, ``probability``.
    errors : dict
        ``{file: reason}`` for files that could not be classified.
    """
    manifest, classes = trained.manifest, trained.classes
    # musicnn inputs: the embedding model the job's extraction used (its rule's params)
    embedding = ((manifest.get("provenance") or {}).get("settings") or {}).get("embedding")
    errors, offsets, names = {}, {}, {}
    with tempfile.TemporaryDirectory(prefix="genreflow-predict-") as scratch:
        scratch = Path(scratch)
        shards = []
        for i, path in enumerate(progress(list(paths)) if progress else paths):
            try:
                entries = _excerpt_entries(i, Path(path), scratch, min_duration, offsets)
            except AudioError as error:
                errors[str(path)] = error.reason
                continue
            if not entries:
                errors[str(path)] = f"too short: less than {min_duration:g} s of audio"
                continue
            names[f"f{i:06d}"] = str(path)
            shards.append(scratch / f"{i}.h5")
            extract_shard_file(entries, shards[-1], min_duration, embedding=embedding)
        if shards:  # none: no file gave an excerpt, so nothing is kept
            rejected = scratch / "rejected.csv"
            with contextlib.suppress(ValueError):  # every file rejected: the reasons are in rejected.csv
                merge_shards(shards, scratch / "dataset.h5", scratch / "features.csv", rejected)
            for row in pd.read_csv(rejected).itertuples():
                errors.setdefault(names[row.track.split("/")[0]], row.reason)
        kept = sorted(t for t in offsets if names.get(t.split("/")[0]) not in errors)
        if not kept:
            return pd.DataFrame(columns=["file", "genre", "probability"]), pd.DataFrame(), errors
        source = make_source(
            manifest["input"], scratch / "dataset.h5", scratch / "features.csv", manifest.get("segments"),
            (manifest.get("training") or {}).get("max_frames", 0),
        )
        examples = source.examples(kept)
        proba = trained.proba(source, examples)
        source.close()
        length = source.segments["length"] if source.segments else None
        starts = source.window_starts(kept) if length else np.zeros(len(examples))
    tracks = examples.tracks
    timeline = pd.DataFrame({
        "file": [names[t.split("/")[0]] for t in tracks],
        "start": [offsets[t][0] + s for t, s in zip(tracks, starts)],
        "end": [offsets[t][0] + s + length if length else offsets[t][1] for t, s in zip(tracks, starts)],
        "genre": np.asarray(classes)[proba.argmax(axis=1)],
        "probability": proba.max(axis=1),
    })
    files = vote_tracks(proba, timeline["file"], classes).rename(columns={"predicted": "genre"})
    files.insert(1, "probability", files[[f"p_{c}" for c in classes]].max(axis=1))
    return files.rename_axis("file").reset_index(), timeline, errors


def _excerpt_entries(i, path, scratch, min_duration, offsets):
    """Shard entries ``(track, label, audio)`` of one file, recording each excerpt's span."""
    if not path.is_file():
        raise AudioError(path, "no such file")
    y, _ = load_audio(path, sr=SR)
    spans = excerpt_spans(y.size, min_duration)
    entries = []
    for k, (start, stop) in enumerate(spans):
        track = f"f{i:06d}/x{k:04d}"
        offsets[track] = (start / SR, stop / SR)
        audio = path  # one excerpt: the file, decoded as in training
        if len(spans) > 1:  # a float WAV of the excerpt's samples exactly
            audio = scratch / f"{i}-{k}.wav"
            sf.write(audio, y[start:stop], SR, subtype="FLOAT")
        entries.append((track, "unknown", audio))
    return entries


def top_genres(files, classes, n=3):
    """``genre (p), ...`` of the ``n`` most probable genres of each file."""
    p = files[[f"p_{c}" for c in classes]].to_numpy()
    order = np.argsort(-p, axis=1)[:, :n]
    return [", ".join(f"{classes[j]} ({row[j]:.2f})" for j in idx) for row, idx in zip(p, order)]


def predictions_table(manifest_path, paths, min_duration=5.0):
    """Predictions of ``paths`` by the model whose folder holds ``manifest_path``, as one table: ``file,
    genre, probability, top_3, p_<genre>..., error`` (``error`` names why a file was not classified)."""
    trained = load_trained(Path(manifest_path).parent)
    files, _, errors = predict_files(trained, paths, min_duration)
    files.insert(3, "top_3", top_genres(files, trained.classes) if len(files) else [])
    failed = pd.DataFrame({"file": list(errors), "error": list(errors.values())})
    return pd.concat([files.assign(error=""), failed], ignore_index=True)
