"""What musicnn embeddings are worth: gtzan-mini, 5-fold stratified CV, linear probe.

Usage: python benchmarks/musicnn_cv.py [AUDIO_DIR] [--model MSD_musicnn|MTT_musicnn]
       [--repeats 5] [--cache FILE.npz]

Every track under AUDIO_DIR (default gtzan-mini, ../shared/data/gtzan-mini; the label
is the parent folder) is decoded as the workflow decodes it (``load_audio``, 22050 Hz)
and described two ways:
- ``musicnn``: the mean over the track's 3-s windows of musicnn's 200-wide penultimate
  embedding (``genreflow.embeddings.embed``), and the same mean of its 753-wide
  max-pool features;
- ``mfcc_stats``: the means and variances of 20 MFCCs (librosa's defaults), the
  hand-made baseline.
Each feature set is scored by logistic regression (and an RBF SVM), standardised on the
training folds only, with 5-fold stratified CV repeated ``--repeats`` times with other
shuffles; the figure is the mean accuracy over repeats (and their spread).
``--cache`` keeps the features in an .npz so a rerun skips extraction.
Goal: logistic regression on ``musicnn`` >= 0.90 (on ``mfcc_stats``: about 0.80).
Last line: the two logistic-regression accuracies and the goal.
"""

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import librosa  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import StratifiedKFold, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.svm import SVC  # noqa: E402

from genreflow import embeddings  # noqa: E402
from genreflow.audio import load_audio  # noqa: E402
from genreflow.constants import AUDIO_EXTENSIONS, MUSICNN_MODELS, N_MFCC  # noqa: E402

GOAL = 0.90
GTZAN_MINI = Path(__file__).resolve().parents[2] / "shared" / "data" / "gtzan-mini"
CLASSIFIERS = {
    "logreg": lambda: LogisticRegression(max_iter=5000),
    "svm": lambda: SVC(kernel="rbf"),
}


def track_features(path, model):
    """``{"musicnn": (200,), "musicnn_pool": (753,), "mfcc_stats": (40,)}`` of one track."""
    y, sr = load_audio(path)
    out = embeddings.embed(y, sr, model=model)
    if len(out["penultimate"]) == 0:
        raise ValueError(f"{path}: shorter than one 3-s window")
    mfcc = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=N_MFCC)
    return {
        "musicnn": out["penultimate"].mean(axis=0),
        "musicnn_pool": out["max_pool"].mean(axis=0),
        "mfcc_stats": np.concatenate([mfcc.mean(axis=1), mfcc.var(axis=1)]),
    }


def extract(audio_dir, model):
    files = sorted(p for p in Path(audio_dir).rglob("*") if p.suffix.lower().lstrip(".") in AUDIO_EXTENSIONS)
    if not files:
        sys.exit(f"no audio files under {audio_dir}")
    rows = []
    for i, path in enumerate(files, 1):
        rows.append(track_features(path, model))
        if i % 20 == 0 or i == len(files):
            print(f"extracted {i}/{len(files)}", flush=True)
    data = {name: np.stack([row[name] for row in rows]) for name in rows[0]}
    data["label"] = np.array([p.parent.name for p in files])
    data["track"] = np.array([p.name for p in files])
    return data


def cv_accuracy(X, y, make_classifier, repeats):
    """Mean accuracy of 5-fold stratified CV, per reshuffle."""
    scores = []
    for seed in range(repeats):
        folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
        pipe = make_pipeline(StandardScaler(), make_classifier())
        scores.append(cross_val_score(pipe, X, y, cv=folds, scoring="accuracy").mean())
    return np.array(scores)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("audio_dir", nargs="?", default=GTZAN_MINI)
    parser.add_argument("--model", choices=MUSICNN_MODELS, default="MSD_musicnn")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cache", type=Path, help="npz to keep the features in")
    args = parser.parse_args()

    if args.cache and args.cache.exists():
        with np.load(args.cache) as cached:
            data = {key: cached[key] for key in cached.files}
    else:
        data = extract(args.audio_dir, args.model)
        if args.cache:
            np.savez(args.cache, **data)

    y = data["label"]
    print(
        f"{len(y)} tracks, {len(set(y))} labels, {args.model}, 5-fold stratified CV x {args.repeats} shuffles"
    )
    logreg = {}
    for features in ("musicnn", "musicnn_pool", "mfcc_stats"):
        for name, make_classifier in CLASSIFIERS.items():
            scores = cv_accuracy(data[features], y, make_classifier, args.repeats)
            print(
                f"{features:13s} ({data[features].shape[1]:3d}) {name:6s} accuracy {scores.mean():.3f} "
                f"(min {scores.min():.3f}, max {scores.max():.3f})",
                flush=True,
            )
            if name == "logreg":
                logreg[features] = scores.mean()
    print(
        f"logistic regression, 5-fold CV: musicnn {logreg['musicnn']:.3f} (goal >= {GOAL:.2f}: "
        f"{'met' if logreg['musicnn'] >= GOAL else 'NOT met'}), mfcc_stats {logreg['mfcc_stats']:.3f}"
    )


if __name__ == "__main__":
    main()
