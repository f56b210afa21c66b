"""Train the networks (Keras 3 on TensorFlow): batches, the training loop, the files.

Per fold the validation tracks are carved from the training tracks and drive early stopping; the scaler
is fit on the remaining training tracks only. ``genreflow.jobs.NeuralFamily`` calls these for the one job runner.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from pathlib import Path

import keras
import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from genreflow.models.architectures import build_network

log = logging.getLogger(__name__)

HISTORY_COLUMNS = ["fold", "epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds"]


def configure_tensorflow(threads=None, seed=0, deterministic=True):
    """Bound TensorFlow's thread pools, seed Python, NumPy and TensorFlow, and ask for repeatable ops.

    Call before building any model: thread pools can only be set before TensorFlow starts (when it
    already has, for a second job in one process, the current pools stay). ``threads`` intra-op threads
    and one inter-op thread make a job use about ``threads`` cores; ``deterministic`` gives the same
    results for the same seed on the same machine (see README for GPUs).
    """
    import tensorflow as tf

    from genreflow.devices import bound_tensorflow_threads

    bound_tensorflow_threads(threads)
    for gpu in tf.config.list_physical_devices("GPU"):
        with contextlib.suppress(RuntimeError):  # take GPU memory as needed, not all of it up front
            tf.config.experimental.set_memory_growth(gpu, True)
    keras.utils.set_random_seed(int(seed))
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def carve_validation(train_ids, labels, valid_size, seed=0):
    """Split the fold's training tracks into a fit part and a stratified validation part (lists of str).

    ``valid_size`` is the share of the tracks to validate on, at least one per class; 0: no validation part.
    """
    train_ids = list(train_ids)
    if not valid_size:
        return train_ids, []
    labels = np.asarray(labels, dtype=str)
    n_valid = max(math.ceil(valid_size * len(train_ids)), len(np.unique(labels)))
    try:
        fit_ids, valid_ids = train_test_split(train_ids, test_size=n_valid, stratify=labels, random_state=seed)
    except ValueError as error:
        raise ValueError(
            f"cannot carve a stratified validation part of {n_valid} tracks from "
            f"{len(train_ids)} training tracks ({error}); lower neural.valid_size, "
            "add tracks, or set neural.valid_size: 0 to train without early stopping"
        ) from None
    return sorted(fit_ids), sorted(valid_ids)


class ExampleBatches(keras.utils.PyDataset):
    """Keras batches of examples read from a source on demand.

    Labels become indices into ``classes``; ``shuffle`` reshuffles the order every epoch (seeded);
    batches are ``(x, y)`` (training) or, without ``with_labels``, ``(x,)`` (prediction).
    """

    def __init__(self, source, examples, classes, batch_size, shuffle=False, seed=0, with_labels=True,
                 **kwargs):
        super().__init__(**kwargs)
        self.source, self.index = source, examples.index
        code = {c: i for i, c in enumerate(classes)}  # -1: a label to predict, not learn
        self.y = np.array([code.get(label, -1) for label in examples.labels], dtype=np.int32)
        self.batch_size, self.shuffle, self.with_labels = int(batch_size), shuffle, with_labels
        self._rng = np.random.default_rng(seed)
        self.order = self._rng.permutation(len(self.y)) if shuffle else np.arange(len(self.y))

    def __len__(self):
        return math.ceil(len(self.y) / self.batch_size)

    def __getitem__(self, i):
        pick = self.order[i * self.batch_size : (i + 1) * self.batch_size]
        x = self.source.read(self.index[pick])
        return (x, self.y[pick]) if self.with_labels else (x,)

    def on_epoch_end(self):
        if self.shuffle:
            self.order = self._rng.permutation(len(self.y))


class EpochLog(keras.callbacks.Callback):
    """Keras callback: one log line and one history row per epoch (with its seconds)."""

    def __init__(self, fold=0):
        super().__init__()
        self.fold, self.rows, self._start = fold, [], 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        row = {"fold": self.fold, "epoch": epoch + 1, "seconds": time.perf_counter() - self._start}
        row.update({key: float(logs.get(key, np.nan)) for key in HISTORY_COLUMNS[2:-1]})
        self.rows.append(row)
        log.info("fold %d epoch %d: loss %.4f acc %.4f val_loss %.4f val_acc %.4f (%.1f s)",
                 self.fold, row["epoch"], *(row[k] for k in HISTORY_COLUMNS[2:]))


def compiled_network(settings, input_shape, n_classes, mean=None, variance=None):
    """The job's network (``architectures.build_network``), compiled: Adam, cross-entropy from logits."""
    model = build_network(settings["architecture"], input_shape, n_classes, mean, variance)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=float(settings["training"]["learning_rate"])),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    return model


def train_fold(settings, source, classes, fit_ids, valid_ids, fold=0):
    """Fit one network on ``fit_ids``, early-stopped on ``valid_ids``.

    Parameters
    ----------
    settings : dict
        ``genreflow.models.architectures.network_settings`` output.
    source : genreflow.examples source
    valid_ids : sequence of str
        May be empty: fixed epochs.
    fold : int
        For the log, the history and the seed (``seed + fold``).

    Returns
    -------
    model : keras.Model
        With the weights of the best validation epoch (the last one without validation).
    history : pandas.DataFrame
        ``HISTORY_COLUMNS``, one row per epoch run.
    facts : dict
        ``epochs_run``, ``best_epoch``, ``best_cv_score`` (best validation accuracy), ``n_train``,
        ``n_train_examples``, ``n_valid``.
    """
    train = settings["training"]
    seed = int(train["seed"]) + int(fold)
    keras.utils.set_random_seed(seed)
    fit_examples = source.examples(fit_ids)
    mean, variance = source.fit_scaler(fit_ids) if train["scale"] else (None, None)  # training tracks only
    model = compiled_network(settings, source.example_shape, len(classes), mean, variance)
    batch_size = int(train["batch_size"])
    fit_batches = ExampleBatches(source, fit_examples, classes, batch_size, shuffle=True, seed=seed)
    epoch_log = EpochLog(fold)
    callbacks, valid_batches = [epoch_log], None
    if len(valid_ids):
        valid_batches = ExampleBatches(source, source.examples(valid_ids), classes, batch_size)
        callbacks.append(keras.callbacks.EarlyStopping(monitor=train["monitor"], patience=int(train["patience"]),
                                                       restore_best_weights=True))
    log.info("fold %d: %s, %d fit tracks (%d examples), %d validation tracks, input %s",
             fold, model.name, len(fit_ids), len(fit_examples), len(valid_ids), source.example_shape)
    # ExampleBatches reshuffles examples each epoch (seeded); Keras need not shuffle batches
    model.fit(fit_batches, validation_data=valid_batches, epochs=int(train["epochs"]), callbacks=callbacks,
              shuffle=False, verbose=0)
    history = pd.DataFrame(epoch_log.rows, columns=HISTORY_COLUMNS)
    best = len(history) - 1
    if valid_batches is not None:
        scores = history[train["monitor"]]
        best = int(scores.idxmax() if "acc" in train["monitor"] else scores.idxmin())
    return model, history, {
        "epochs_run": len(history), "best_epoch": int(history["epoch"].iloc[best]),
        # the validation part plays the CV's role: the report's "best CV" column
        "best_cv_score": float(history["val_accuracy"].iloc[best]) if valid_batches is not None else None,
        "n_train": len(fit_ids), "n_train_examples": len(fit_examples), "n_valid": len(valid_ids),
    }


def predict_proba(model, source, examples, classes, batch_size=32):
    """Class probabilities of ``examples`` (softmax of the network's logits)."""
    batches = ExampleBatches(source, examples, classes, batch_size, with_labels=False)
    return keras.ops.convert_to_numpy(keras.ops.softmax(model.predict(batches, verbose=0), axis=-1))


def save_network(model, history, outdir, title=""):
    """Write ``model.keras`` (scaler inside, no optimizer), ``history.csv`` and ``curves.png`` (loss and
    accuracy per epoch)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    several = history["fold"].nunique() > 1
    for ax, metric in zip(axes, ("loss", "accuracy")):
        for fold, rows in history.groupby("fold"):
            suffix = f" (fold {fold})" if several else ""
            line = ax.plot(rows["epoch"], rows[metric], label=f"train{suffix}")[0]
            if rows[f"val_{metric}"].notna().any():
                ax.plot(rows["epoch"], rows[f"val_{metric}"], "--", color=line.get_color(), label=f"validation{suffix}")
        ax.set(xlabel="epoch", ylabel=metric)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize="small")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(Path(outdir) / "curves.png", dpi=100)
    plt.close(fig)
    # an uncompiled copy, same layers and weights: the file is for prediction, and Adam's state
    # was 2/3 of it (ann on mel: 340 MB saved in 2-3 s and loaded in 4 s, against 1019 MB, 8-18 s and 13 s)
    inference = type(model).from_config(model.get_config())
    inference.set_weights(model.get_weights())
    inference.save(Path(outdir) / "model.keras")
    history.to_csv(Path(outdir) / "history.csv", index=False)
