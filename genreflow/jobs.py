"""One model job, whatever the model family: folds, windows, the vote, the outputs.

A family supplies only:

- ``fit(source, train, valid, classes, fold) -> (model, facts)``: ``train``, ``valid`` are
  ``pandas.Series`` track -> genre; ``facts``, the fold's figures, are combined by :func:`combine_folds`;
- ``predict_proba(model, source, examples, classes) -> ndarray``, a column per class;
- ``save(models, facts, outdir)``; ``files`` and ``family`` for ``manifest.json``; ``info``, job-wide facts.

In segment mode (``<input>_seg``) each example is a window, cut after the split, and a
track is scored by the mean probability of its windows (:func:`vote_tracks`).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import joblib
import numpy as np
import pandas as pd

from genreflow.evaluate import write_evaluation
from genreflow.models import classic
from genreflow.provenance import write_manifest
from genreflow.splits import iter_folds

log = logging.getLogger(__name__)


def vote_tracks(window_proba, window_tracks, classes):
    """Average window probabilities (rows of ``window_proba``) per track; pick the most probable genre.

    Returns
    -------
    pandas.DataFrame
        Indexed by track (first-seen order): ``predicted``, ``p_<genre>`` (mean over windows).
    """
    classes = list(classes)
    frame = pd.DataFrame(np.asarray(window_proba, dtype=float), columns=[f"p_{c}" for c in classes])
    frame["track"] = np.asarray(window_tracks)
    means = frame.groupby("track", sort=False).mean()
    means.insert(0, "predicted", np.asarray(classes)[means.to_numpy().argmax(axis=1)])
    return means


def combine_folds(facts):
    """Fold facts as one dict: over several folds the mean of numbers (rounded for ints,
    ``fit_seconds`` summed) or the list of other values, plus ``per_fold`` lists."""
    if len(facts) == 1:
        return dict(facts[0])
    combined = {"per_fold": {key: [f[key] for f in facts] for key in facts[0]}}
    for key, values in combined["per_fold"].items():
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        if key == "fit_seconds":
            combined[key] = float(sum(values))
        elif numbers and all(isinstance(v, int) for v in values):
            combined[key] = int(round(np.mean(values)))
        elif numbers:
            combined[key] = float(np.mean(values))
        else:
            combined[key] = values
    return combined


def run_model_job(family, source, split_csv, outdir, extra=None, provenance=None):
    """Train and score one model x input over every fold of a split; write and return its metrics.

    Parameters
    ----------
    family : ClassicFamily or NeuralFamily
        See the module docstring.
    source : genreflow.examples source
        The job's input; ``source.segments`` set means segment mode.
    extra : dict, optional
        Facts copied into ``metrics.json`` (``model``, ``input``, ...).
    provenance : dict, optional
        :func:`genreflow.provenance.run_provenance`, for ``metrics.json`` and ``manifest.json``.
    """
    outdir, extra = Path(outdir), extra or {}
    outdir.mkdir(parents=True, exist_ok=True)
    split = pd.read_csv(split_csv)
    classes = sorted(split["label"].unique())
    label_of = split.drop_duplicates("track").set_index("track")["label"]
    windowed = bool(source.segments)
    folds = list(iter_folds(split))
    predictions, models, facts = [], [], []
    window_hits = np.zeros(2, dtype=int)
    for fold, train_ids, valid_ids, test_ids in folds:
        if not len(test_ids):
            raise ValueError(f"{split_csv}: fold {fold} has no test tracks; check split.* in config.yaml")
        train, valid = label_of[list(train_ids)], label_of[list(valid_ids)]
        labels, where = [*train, *valid], f"{extra.get('model')} on '{extra.get('input')}' (fold {fold})"
        if not labels:
            raise ValueError(f"{where}: no training tracks. Check results/splits/split.csv and split.* in "
                             "config.yaml (test_size, lists), and that the dataset has tracks")
        if len(set(labels)) < 2:
            raise ValueError(f"{where}: all {len(labels)} training tracks are '{labels[0]}'; a classifier needs "
                             "at least two genres. Add tracks of other genres or use a split (split.method) "
                             "that trains on several")
        start = time.perf_counter()
        model, fold_facts = family.fit(source, train, valid, classes, fold)
        fold_facts["fit_seconds"] = time.perf_counter() - start
        test = source.examples(list(test_ids))
        proba = family.predict_proba(model, source, test, classes)
        tracks = vote_tracks(proba, test.tracks, classes)
        if windowed:
            hits = np.asarray(classes)[proba.argmax(axis=1)] == test.labels
            window_hits += (int(hits.sum()), len(hits))
        unscored = sorted(set(test_ids) - set(tracks.index))
        if unscored:
            log.warning("fold %d: %d test track(s) have no full window, not scored: %s",
                        fold, len(unscored), unscored[:5])
        tracks.insert(0, "true", [label_of[t] for t in tracks.index])
        tracks.insert(0, "fold", fold)
        predictions.append(tracks.rename_axis("track").reset_index())
        log.info("fold %d: test accuracy %.3f on %d tracks",
                 fold, np.mean(tracks["true"] == tracks["predicted"]), len(tracks))
        models.append(model)
        facts.append(fold_facts)

    metrics = {**extra, **family.info, "mode": "segments" if windowed else "track", "n_folds": len(folds)}
    metrics.update(combine_folds(facts))
    if windowed:
        metrics["window_accuracy"] = float(window_hits[0] / window_hits[1]) if window_hits[1] else None
        metrics["segments"] = dict(source.segments)
    metrics["provenance"] = provenance or {}
    family.save(models, facts, outdir)
    card = {key: metrics.get(key) for key in ("model", "input", "mode", "segments", "device", "provenance")}
    write_manifest(outdir, family.files, {"family": family.family, **card, "classes": classes, **family.info})
    metrics = write_evaluation(outdir, pd.concat(predictions, ignore_index=True), classes, metrics)
    log.info("%s on %s: accuracy %.3f", metrics.get("model"), metrics.get("input"), metrics["accuracy"])
    return metrics


def classic_proba(fitted, X, classes):
    """``fitted.predict_proba(X)`` with a column per class of ``classes`` (0 where training lacked it)."""
    proba = fitted.predict_proba(X)
    out = np.zeros((len(proba), len(classes)))
    out[:, [list(classes).index(c) for c in fitted.classes_]] = proba
    return out


class ClassicFamily:
    """One scikit-learn model x grid (:mod:`genreflow.models.classic`) for :func:`run_model_job`.

    Trains on ``train`` and ``valid`` tracks together (the CV validates), keeping each track's
    windows in one CV fold. Parameters as ``classic.search_model`` takes them.
    """

    family, files = "classic", ["model.joblib"]

    def __init__(self, model, grid, cv_folds=5, seed=0, threads=1):
        self.model, self.grid, self.cv_folds, self.seed, self.threads = model, grid, cv_folds, seed, threads
        n_candidates = int(np.prod([len(v) for v in grid.values()]))
        self.info = {"device": "CPU", "grid": grid, "cv_folds": cv_folds, "n_candidates": n_candidates}

    def fit(self, source, train, valid, classes, fold):
        train_ids = [*train.index, *valid.index]
        train = source.examples(train_ids)
        n_tracks = len(set(train.tracks))
        if n_tracks < self.cv_folds:
            raise ValueError(f"classic model '{self.model}' (fold {fold}): {n_tracks} training tracks with a "
                             f"full window cannot fill classic.cv_folds = {self.cv_folds} CV folds; lower "
                             "classic.cv_folds in config.yaml or add tracks")
        groups = train.tracks if source.segments else None
        fitted, search = classic.search_model(self.model, self.grid, source.read(train.index), train.labels,
                                              groups, self.cv_folds, self.seed, self.threads)
        n_fits = getattr(search, "n_fits_", len(search.cv_results_["params"]) * self.cv_folds)
        best = {key.removeprefix(f"{classic.STEP}__"): v.item() if isinstance(v, np.generic) else v
                for key, v in search.best_params_.items()}  # JSON-friendly, no pipeline prefix
        log.info("fold %d: best %s, CV accuracy %.3f, %d fits", fold, best, search.best_score_, n_fits)
        return fitted, {"best_params": best, "best_cv_score": float(search.best_score_), "n_fits": int(n_fits),
                        "n_train": len(train_ids), "n_train_windows": len(train)}

    def predict_proba(self, fitted, source, examples, classes):
        return classic_proba(fitted, source.read(examples.index), classes)

    def save(self, fitted, facts, outdir):
        joblib.dump({"model": self.model, "classes": list(fitted[0].classes_), "pipelines": fitted},
                    outdir / "model.joblib")  # one pipeline per fold


class NeuralFamily:
    """One Keras network (:mod:`genreflow.models.neural`) for :func:`run_model_job`.

    Each fold stops early on the split's ``valid`` tracks, or on a stratified, seeded part
    of its training tracks (``training.valid_size``).

    Parameters
    ----------
    settings : dict
        From ``genreflow.models.architectures.network_settings``.
    threads : int, optional
        Bound on TensorFlow's thread pools.
    allow_cpu : bool
        Train on the CPU although the job was given a GPU TensorFlow cannot see.
    """

    family, files = "neural", ["model.keras"]

    def __init__(self, settings, threads=None, allow_cpu=False):
        from genreflow.devices import training_device
        from genreflow.models import architectures, neural  # Keras only for network jobs

        self.neural, self.settings, self.histories = neural, settings, []
        self.training = train = settings["training"]
        neural.configure_tensorflow(threads, train["seed"], train["deterministic"])
        arch = {**settings["architecture"], "summary": architectures.describe(settings["architecture"])}
        self.info = {"device": training_device(allow_cpu), "best_params": arch, "training": dict(train)}
        log.info("%s on %s: %s, device %s", settings["model"], settings["input"], arch["summary"], self.info["device"])

    def fit(self, source, train, valid, classes, fold):
        fit_ids, valid_ids = list(train.index), list(valid.index)
        if not valid_ids:
            fit_ids, valid_ids = self.neural.carve_validation(fit_ids, train.to_numpy(), self.training["valid_size"],
                                                              self.training["seed"] + fold)
        model, history, facts = self.neural.train_fold(self.settings, source, classes, fit_ids, valid_ids, fold)
        self.histories.append(history)
        return model, facts

    def predict_proba(self, model, source, examples, classes):
        return self.neural.predict_proba(model, source, examples, classes, int(self.training["batch_size"]))

    def save(self, models, facts, outdir):
        # model.keras is the last fold's network (metrics.json: saved_model_fold)
        title = f"{self.settings['model']} on {self.settings['input']}"
        self.neural.save_network(models[-1], pd.concat(self.histories, ignore_index=True), outdir, title)
