"""Train and score the networks (Keras 3 on TensorFlow), one model x input per job.

Honest by construction: per fold of ``split.csv`` the validation tracks are carved from
the training tracks (stratified, seeded) and drive early stopping; the scaler is fit on
the remaining training tracks only; the test tracks are predicted once, at the end. In
segment mode windows are cut after the split and tracks are scored by the mean
probability of their windows.
"""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path

import keras
import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from genreflow.evaluate import vote_tracks, write_evaluation
from genreflow.models.architectures import build_network, describe
from genreflow.models.batches import ExampleBatches, make_source
from genreflow.splits import iter_folds

log = logging.getLogger(__name__)

HISTORY_COLUMNS = ["fold", "epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds"]


def configure_tensorflow(threads=None, seed=0, deterministic=True):
    """Bound TensorFlow's thread pools, seed every generator and ask for repeatable ops.

    Call before building any model. Thread pools can only be set before TensorFlow
    starts; when it already has (a second job in one process), the current pools stay.

    Parameters
    ----------
    threads : int, optional
        Intra-op threads (inter-op: 1, so a job uses about ``threads`` cores).
    seed : int
        Seeds Python, NumPy and TensorFlow (``keras.utils.set_random_seed``).
    deterministic : bool
        ``tf.config.experimental.enable_op_determinism``: same results for the same
        seed on the same machine (see README for GPUs).
    """
    import tensorflow as tf

    if threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(int(threads))
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:
            log.debug("TensorFlow already started; keeping its thread pools")
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            # take GPU memory as needed, not all of it up front
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:
            pass
    keras.utils.set_random_seed(int(seed))
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def device_name():
    """The GPU TensorFlow will use (its name), or ``"CPU"``."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "CPU"
    details = tf.config.experimental.get_device_details(gpus[0])
    return details.get("device_name", gpus[0].name)


def carve_validation(train_ids, labels, valid_size, seed=0):
    """Split training tracks into a fit part and a stratified validation part.

    Parameters
    ----------
    train_ids : sequence of str
        The fold's training tracks.
    labels : sequence of str
        Their labels.
    valid_size : float
        Share of ``train_ids`` to validate on; at least one track per class is taken so
        the validation part is stratified. 0 means no validation part.
    seed : int

    Returns
    -------
    fit_ids, valid_ids : list of str
    """
    train_ids = list(train_ids)
    if not valid_size:
        return train_ids, []
    labels = np.asarray(labels, dtype=str)
    n_classes = len(np.unique(labels))
    n_valid = max(math.ceil(valid_size * len(train_ids)), n_classes)
    try:
        fit_ids, valid_ids = train_test_split(
            train_ids, test_size=n_valid, stratify=labels, random_state=seed
        )
    except ValueError as error:
        raise ValueError(
            f"cannot carve a stratified validation part of {n_valid} tracks from "
            f"{len(train_ids)} training tracks ({error}); lower neural.valid_size, "
            "add tracks, or set neural.valid_size: 0 to train without early stopping"
        ) from None
    return sorted(fit_ids), sorted(valid_ids)


def window_scores(window_proba, window_tracks, window_labels, classes):
    """Track predictions from window probabilities, and the window-level accuracy.

    Parameters
    ----------
    window_proba : numpy.ndarray, shape (n_windows, n_classes)
    window_tracks, window_labels : array-like of str, shape (n_windows,)
    classes : sequence of str

    Returns
    -------
    tracks : pandas.DataFrame
        ``genreflow.evaluate.vote_tracks``: one row per track (index), ``p_<genre>``
        (mean window probability) and ``predicted``.
    window_accuracy : float
        Share of windows whose most probable class is their track's genre.
    """
    window_proba = np.asarray(window_proba)
    predicted = np.asarray(classes)[window_proba.argmax(axis=1)]
    accuracy = float(np.mean(predicted == np.asarray(window_labels, dtype=str)))
    return vote_tracks(window_proba, window_tracks, classes), accuracy


class EpochLog(keras.callbacks.Callback):
    """Keras callback: one log line and one history row per epoch (with its seconds)."""

    def __init__(self, fold=0):
        super().__init__()
        self.fold = fold
        self.rows = []
        self._start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        row = {"fold": self.fold, "epoch": epoch + 1, "seconds": time.perf_counter() - self._start}
        for key in HISTORY_COLUMNS[2:-1]:
            row[key] = float(logs[key]) if key in logs else float("nan")
        self.rows.append(row)
        log.info(
            "fold %d epoch %d: loss %.4f acc %.4f val_loss %.4f val_acc %.4f (%.1f s)",
            self.fold,
            epoch + 1,
            row["loss"],
            row["accuracy"],
            row["val_loss"],
            row["val_accuracy"],
            row["seconds"],
        )


def compiled_network(settings, input_shape, n_classes, mean=None, variance=None):
    """The job's network, compiled: Adam at the configured rate, cross-entropy from logits.

    Parameters are those of ``genreflow.models.architectures.build_network``.
    """
    model = build_network(settings["architecture"], input_shape, n_classes, mean, variance)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=float(settings["training"]["learning_rate"])),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def train_fold(settings, source, classes, fit_ids, valid_ids, fold=0):
    """Fit one network on ``fit_ids``, early-stopped on ``valid_ids``.

    Parameters
    ----------
    settings : dict
        ``genreflow.models.architectures.network_settings`` output.
    source : SequenceSource or TableSource
        Where examples come from (``genreflow.models.batches.make_source``).
    classes : sequence of str
    fit_ids, valid_ids : sequence of str
        Tracks to fit on and to validate on (may be empty: fixed epochs).
    fold : int
        Fold number, for the log, the history and the seed (``seed + fold``).

    Returns
    -------
    model : keras.Model
        With the weights of the best validation epoch (the last one without validation).
    history : pandas.DataFrame
        ``HISTORY_COLUMNS``, one row per epoch run.
    facts : dict
        ``epochs_run``, ``best_epoch``, ``best_val_accuracy``, ``fit_seconds``,
        ``n_train`` (tracks), ``n_train_examples``, ``n_valid``.
    """
    train = settings["training"]
    seed = int(train["seed"]) + int(fold)
    keras.utils.set_random_seed(seed)
    fit_examples = source.examples(fit_ids)
    mean = variance = None
    if train["scale"]:
        mean, variance = source.fit_scaler(fit_ids)  # training tracks only, never test
    model = compiled_network(settings, source.example_shape, len(classes), mean, variance)
    batch_size = int(train["batch_size"])
    fit_batches = ExampleBatches(source, fit_examples, classes, batch_size, shuffle=True, seed=seed)
    epoch_log = EpochLog(fold)
    callbacks = [epoch_log]
    valid_batches = None
    if len(valid_ids):
        valid_batches = ExampleBatches(source, source.examples(valid_ids), classes, batch_size)
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=train["monitor"], patience=int(train["patience"]), restore_best_weights=True
            )
        )
    log.info(
        "fold %d: %s, %d fit tracks (%d examples), %d validation tracks, input %s",
        fold,
        model.name,
        len(fit_ids),
        len(fit_examples),
        len(valid_ids),
        source.example_shape,
    )
    start = time.perf_counter()
    # ExampleBatches reshuffles examples each epoch (seeded); Keras need not shuffle batches
    model.fit(
        fit_batches,
        validation_data=valid_batches,
        epochs=int(train["epochs"]),
        callbacks=callbacks,
        shuffle=False,
        verbose=0,
    )
    fit_seconds = time.perf_counter() - start
    history = pd.DataFrame(epoch_log.rows, columns=HISTORY_COLUMNS)
    if valid_batches is not None:
        scores = history[train["monitor"]]
        best = int(scores.idxmax() if "acc" in train["monitor"] else scores.idxmin())
    else:
        best = len(history) - 1
    facts = {
        "epochs_run": int(len(history)),
        "best_epoch": int(history["epoch"].iloc[best]),
        "best_val_accuracy": float(history["val_accuracy"].iloc[best]) if valid_batches is not None else None,
        "fit_seconds": fit_seconds,
        "n_train": len(fit_ids),
        "n_train_examples": len(fit_examples),
        "n_valid": len(valid_ids),
    }
    return model, history, facts


def predict_tracks(model, settings, source, classes, test_ids, fold=0):
    """Score ``test_ids`` once: track predictions (by window vote in segment mode).

    Returns
    -------
    predictions : pandas.DataFrame
        ``track, fold, true, predicted, p_<genre>...`` in ``test_ids`` order.
    window_hits : tuple of int or None
        Segment mode: (correct windows, windows); None for whole tracks.
    """
    examples = source.examples(test_ids)
    batches = ExampleBatches(
        source, examples, classes, int(settings["training"]["batch_size"]), with_labels=False
    )
    logits = model.predict(batches, verbose=0)
    proba = keras.ops.convert_to_numpy(keras.ops.softmax(logits, axis=-1))
    truth = dict(zip(examples.tracks, examples.labels))
    if settings["mode"] == "segments":
        tracks, _ = window_scores(proba, examples.tracks, examples.labels, classes)
        codes = {c: i for i, c in enumerate(classes)}
        hits = proba.argmax(axis=1) == np.array([codes[label] for label in examples.labels])
        window_hits = (int(hits.sum()), len(examples))
        tracks = tracks.reindex(list(test_ids))
    else:
        tracks = pd.DataFrame(proba, columns=[f"p_{c}" for c in classes], index=list(examples.tracks))
        tracks["predicted"] = np.asarray(classes)[proba.argmax(axis=1)]
        window_hits = None
    missing = tracks["predicted"].isna()
    if missing.any():
        raise ValueError(
            f"test track(s) {tracks.index[missing].tolist()[:5]} have no full window; "
            "lower segments.length in config.yaml"
        )
    predictions = pd.DataFrame(
        {
            "track": tracks.index,
            "fold": fold,
            "true": [truth[t] for t in tracks.index],
            "predicted": tracks["predicted"].to_numpy(),
        }
    )
    for c in classes:
        predictions[f"p_{c}"] = tracks[f"p_{c}"].to_numpy()
    return predictions, window_hits


def plot_curves(history, path, title=""):
    """Save training curves: loss and accuracy per epoch, training and validation, per fold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for fold, rows in history.groupby("fold"):
        suffix = f" (fold {fold})" if history["fold"].nunique() > 1 else ""
        for ax, metric in zip(axes, ("loss", "accuracy")):
            line = ax.plot(rows["epoch"], rows[metric], label=f"train{suffix}")[0]
            if rows[f"val_{metric}"].notna().any():
                ax.plot(
                    rows["epoch"],
                    rows[f"val_{metric}"],
                    "--",
                    color=line.get_color(),
                    label=f"validation{suffix}",
                )
    for ax, metric in zip(axes, ("loss", "accuracy")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize="small")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run_network_job(
    settings, split_csv, outdir, dataset_path=None, table_path=None, threads=None, split_method=None
):
    """Train and score one network over every fold of a split and write its outputs.

    Parameters
    ----------
    settings : dict
        ``genreflow.models.architectures.network_settings`` output.
    split_csv : path-like
        ``results/splits/split.csv``.
    outdir : path-like
        ``results/models/<model>/<input>/``; receives ``metrics.json``,
        ``predictions.csv``, ``confusion.csv/png`` (``genreflow.evaluate``),
        ``model.keras`` (the last fold's network), ``history.csv`` and ``curves.png``.
    dataset_path, table_path : path-like, optional
        ``dataset.h5`` (sequences, segment statistics) and ``features.csv`` (tables).
    threads : int, optional
        Bound on TensorFlow's thread pools.
    split_method : str, optional
        Recorded in ``metrics.json`` (config ``split.method``).

    Returns
    -------
    dict
        The metrics written.
    """
    train = settings["training"]
    configure_tensorflow(threads, train["seed"], train["deterministic"])
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    split = pd.read_csv(split_csv)
    classes = sorted(split["label"].unique())
    label_of = dict(zip(split["track"], split["label"]))
    folds = list(iter_folds(split))
    device = device_name()
    log.info(
        "%s on %s (%s): %s, %d fold(s), device %s",
        settings["model"],
        settings["input"],
        settings["mode"],
        describe(settings["architecture"]),
        len(folds),
        device,
    )

    predictions, histories, facts = [], [], []
    window_hits = [0, 0]
    model = None
    for fold, train_ids, valid_ids, test_ids in folds:
        if not len(test_ids):
            raise ValueError(f"{split_csv}: fold {fold} has no test tracks; check split.* in config.yaml")
        if not len(valid_ids):
            labels = [label_of[t] for t in train_ids]
            train_ids, valid_ids = carve_validation(
                train_ids, labels, train["valid_size"], train["seed"] + fold
            )
        source = make_source(settings, dataset_path=dataset_path, table_path=table_path)
        try:
            model, history, fold_facts = train_fold(settings, source, classes, train_ids, valid_ids, fold)
            fold_predictions, hits = predict_tracks(model, settings, source, classes, test_ids, fold)
        finally:
            source.close()
        if hits:
            window_hits = [window_hits[0] + hits[0], window_hits[1] + hits[1]]
        predictions.append(fold_predictions)
        histories.append(history)
        facts.append(fold_facts)
        log.info(
            "fold %d: test accuracy %.3f on %d tracks (best epoch %d of %d)",
            fold,
            np.mean(fold_predictions["true"] == fold_predictions["predicted"]),
            len(test_ids),
            fold_facts["best_epoch"],
            fold_facts["epochs_run"],
        )

    history = pd.concat(histories, ignore_index=True)
    val_scores = [f["best_val_accuracy"] for f in facts if f["best_val_accuracy"] is not None]
    extra = {
        "model": settings["model"],
        "input": settings["input"],
        "mode": settings["mode"],
        "best_cv_score": float(np.mean(val_scores)) if val_scores else None,
        "best_params": {**settings["architecture"], "summary": describe(settings["architecture"])},
        "fit_seconds": float(sum(f["fit_seconds"] for f in facts)),
        "n_train": int(round(np.mean([f["n_train"] for f in facts]))),
        "n_valid": int(round(np.mean([f["n_valid"] for f in facts]))),
        "n_folds": len(folds),
        "split_method": split_method,
        "device": device,
        # one fold: its epochs; k folds: the rounded mean (per fold in the lists)
        "epochs_run": int(round(np.mean([f["epochs_run"] for f in facts]))),
        "best_epoch": int(round(np.mean([f["best_epoch"] for f in facts]))),
        "epochs_per_fold": [f["epochs_run"] for f in facts],
        "best_epoch_per_fold": [f["best_epoch"] for f in facts],
        "training": dict(train),
        "saved_model_fold": folds[-1][0],  # model.keras is the last fold's network
    }
    if settings["mode"] == "segments":
        extra["window_accuracy"] = window_hits[0] / window_hits[1]
        extra["n_train_windows"] = int(round(np.mean([f["n_train_examples"] for f in facts])))
        extra["segments"] = settings["segments"]

    _save_model(model, outdir / "model.keras")
    history.to_csv(outdir / "history.csv", index=False)
    plot_curves(history, outdir / "curves.png", title=f"{settings['model']} on {settings['input']}")
    metrics = write_evaluation(outdir, pd.concat(predictions, ignore_index=True), classes, extra)
    log.info("%s on %s: accuracy %.3f", settings["model"], settings["input"], metrics["accuracy"])
    return metrics


def _save_model(model, path):
    # Keras wants the .keras suffix: write model.tmp.keras, then rename into place
    tmp = Path(path).with_suffix(".tmp.keras")
    model.save(tmp)
    os.replace(tmp, path)
