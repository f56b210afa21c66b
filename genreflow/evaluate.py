"""Score held-out predictions and write the files every model job leaves behind.

:mod:`genreflow.jobs` calls :func:`write_evaluation` for every model family, so the report
reads one layout (``docs/contracts.md``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score, recall_score


def score_predictions(y_true, y_pred, classes):
    """``accuracy``, ``balanced_accuracy``, ``macro_f1`` and ``per_genre_recall`` (by class of ``classes``)."""
    classes = list(classes)
    recall = recall_score(y_true, y_pred, labels=classes, average=None, zero_division=0)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=classes, average="macro", zero_division=0)),
        "per_genre_recall": {c: float(r) for c, r in zip(classes, recall)},
    }


def confusion_table(y_true, y_pred, classes):
    """Confusion counts: rows true genre, columns predicted genre."""
    classes = list(classes)
    return pd.DataFrame(confusion_matrix(y_true, y_pred, labels=classes),
                        index=pd.Index(classes, name="true"), columns=pd.Index(classes, name="predicted"))


def draw_confusion(ax, table, title="", fontsize=None):
    """Draw a confusion table on ``ax``: colour = row-normalised rate (0..1), counts in cells.

    The one drawing of a confusion matrix (each job's ``confusion.png``, every panel of the
    report's grid). Returns the image, for a colour bar.
    """
    counts = table.to_numpy()
    totals = counts.sum(axis=1, keepdims=True)
    rates = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    image = ax.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(len(table.columns)), table.columns, rotation=90, fontsize=fontsize)
    ax.set_yticks(range(len(table.index)), table.index, fontsize=fontsize)
    ax.set_xlabel("predicted", fontsize=fontsize)
    ax.set_ylabel("true", fontsize=fontsize)
    ax.set_title(title, fontsize=fontsize)
    for i, j in zip(*np.nonzero(counts)):
        colour = "white" if rates[i, j] > 0.5 else "black"
        ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=fontsize, color=colour)
    return image


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend: figures go to files, never to a display."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(table, path, title=""):
    """Save one confusion matrix as a PNG."""
    plt = pyplot()
    n = len(table)
    fig, ax = plt.subplots(figsize=(1.0 + 0.55 * n, 0.8 + 0.5 * n), layout="constrained")
    fig.colorbar(draw_confusion(ax, table, title), ax=ax, label="share of the true genre's tracks")
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_evaluation(outdir, predictions, classes, extra):
    """Write ``metrics.json``, ``predictions.csv``, ``confusion.csv`` and ``confusion.png``.

    Parameters
    ----------
    outdir : path-like
        The model job's folder, ``results/models/<model>/<input>/``.
    predictions : pandas.DataFrame
        One row per scored test track: ``track``, ``fold``, ``true``, ``predicted`` and,
        where the model gives them, ``p_<genre>`` probabilities.
    classes : sequence of str
        Every genre, in report order.
    extra : dict
        Facts about the job for ``metrics.json`` (``model``, ``input``, ``best_params``, ...).

    Returns
    -------
    dict
        The metrics written.
    """
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    if predictions.empty:
        raise ValueError(f"{outdir}: no test predictions to score")
    metrics = {**extra, **score_predictions(predictions["true"], predictions["predicted"], classes),
               "n_test": len(predictions)}
    table = confusion_table(predictions["true"], predictions["predicted"], classes)
    predictions.to_csv(outdir / "predictions.csv", index=False)
    table.to_csv(outdir / "confusion.csv")
    title = f"{metrics.get('model', '')} on {metrics.get('input', '')}: accuracy {metrics['accuracy']:.1%}"
    plot_confusion(table, outdir / "confusion.png", title=title)
    (outdir / "metrics.json").write_text(json.dumps(metrics, indent=2, default=_json_default) + "\n")
    return metrics


def _json_default(value):
    # numpy scalars and arrays from best_params and friends
    if isinstance(value, np.generic):
        return value.item()
    return value.tolist() if isinstance(value, np.ndarray) else str(value)
