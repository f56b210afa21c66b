"""Wall time of the whole classic suite with the study's (``paper``) grids.

    .venv/bin/python benchmarks/classic.py                 # 7 models, paper grids, 2 cores
    .venv/bin/python benchmarks/classic.py --grid fast     # quick look
    .venv/bin/python benchmarks/classic.py --table features_30_sec.csv   # Kaggle's table

The table: 1000 tracks x 57 features, the size of Kaggle's GTZAN table. Without
``--table`` it is grown from real gtzan-mini features (101 tracks, extracted with
``genreflow.features``; cached) by bootstrap with jitter: each synthetic track is a real
track of its genre, blended with a random track of any genre (weight up to 0.6) plus
noise (0.75 within-genre SD), which lands models near the study's GTZAN accuracies.
Without gtzan-mini it falls back to a synthetic Gaussian table (said so in the output).
A table with 1000+ rows is used as it is. The 57 columns are the first 57 ``all_stats``
columns (for genreflow's table: Kaggle's 53 that genreflow computes, then chroma1-2).

Protocol: the study's: a stratified 75/25 hold-out (seed 0), each model tuned with
``genreflow.models.classic.search_model`` (5-fold CV, all cores given) and refitted,
then scored once on the test tracks.

The naive way (plain ``GridSearchCV``: one fit per candidate and fold) is estimated, not
run (it takes hours): for each model that the staged search speeds up, a seeded random
sample of candidates is fitted the plain way on one CV split, in parallel on the same
cores, and its wall time is scaled to all candidates x folds. Models searched the plain
way anyway (knn, logreg, svm) count the same in both.

Every fit is scikit-learn's own estimator (public API only); the search shares fits
only across the number of trees or stages.

The last line prints the suite's wall time and the ratio to the naive estimate.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from genreflow.dataset import input_columns, read_table  # noqa: E402

GTZAN_MINI = ROOT.parent / "shared" / "data" / "gtzan-mini"
N_TRACKS, N_FEATURES = 1000, 57


def gtzan_mini_table(cache_dir):
    """Per-track stats of gtzan-mini with genreflow's extractor (cached per extractor version)."""
    from genreflow import features as features_module

    digest = hashlib.sha256(Path(features_module.__file__).read_bytes()).hexdigest()[:12]
    cache = Path(cache_dir) / f"gtzan-mini-stats-{digest}.csv"
    if cache.exists():
        return pd.read_csv(cache)
    from genreflow.audio import load_audio
    from genreflow.dataset import STATS_COLUMNS, frame_matrix, stats_from_frames

    rows = []
    paths = sorted((GTZAN_MINI / "genres").glob("*/*.wav"))
    start = time.perf_counter()
    for path in paths:
        y, _ = load_audio(path)
        features = features_module.extract_features(y)
        stats = stats_from_frames(frame_matrix(features), features["tempo"], len(y))
        rows.append([path.name, *stats, path.parent.name])
    print(f"extracted gtzan-mini features: {len(rows)} tracks, {time.perf_counter() - start:.0f} s", flush=True)
    table = pd.DataFrame(rows, columns=["filename", *STATS_COLUMNS, "label"])
    cache.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(cache, index=False)
    return table


def grow_table(seed_table, columns, per_genre, rng, blend=0.6, noise=0.75):
    """Bootstrap-jitter a small real table to ``per_genre`` tracks per genre."""
    X_all = seed_table[columns].to_numpy(dtype=float)
    y_all = seed_table["label"].to_numpy()
    parts, labels = [], []
    for genre in sorted(set(y_all)):
        X = X_all[y_all == genre]
        sd = X.std(axis=0, ddof=1)
        base = X[rng.integers(0, len(X), per_genre)]
        other = X_all[rng.integers(0, len(X_all), per_genre)]
        weight = rng.uniform(0, blend, size=(per_genre, 1))
        parts.append((1 - weight) * base + weight * other + rng.normal(size=base.shape) * sd * noise)
        labels += [genre] * per_genre
    return np.vstack(parts), np.array(labels)


def synthetic_table(rng, n_genres=10, per_genre=100, n_features=N_FEATURES):
    """Gaussian genres with overlapping means (a stand-in when no real data is around)."""
    centres = rng.normal(scale=0.6, size=(n_genres, n_features))
    X = np.vstack([c + rng.normal(size=(per_genre, n_features)) for c in centres])
    return X, np.repeat([f"genre{g}" for g in range(n_genres)], per_genre)


def benchmark_table(args, rng):
    """(X, y, description) of the benchmark table."""
    if args.table:
        table = read_table(args.table)
        columns = input_columns(table.columns, "all_stats")[:N_FEATURES]
        if len(table) >= N_TRACKS:
            return table[columns].to_numpy(float), table["label"].to_numpy(), f"{args.table} as is"
        X, y = grow_table(table, columns, N_TRACKS // table["label"].nunique(), rng)
        return X, y, f"{args.table} grown by bootstrap with jitter"
    if (GTZAN_MINI / "genres").is_dir():
        table = gtzan_mini_table(args.cache)
        columns = input_columns(table.columns, "all_stats")[:N_FEATURES]
        X, y = grow_table(table, columns, N_TRACKS // table["label"].nunique(), rng)
        return X, y, "real gtzan-mini features (101 tracks) grown by bootstrap with jitter"
    X, y = synthetic_table(rng)
    return X, y, f"SYNTHETIC Gaussian table (gtzan-mini not found at {GTZAN_MINI})"


def naive_estimate(model, grid, X, y, cores, seed, samples, cv_folds):
    """Wall time plain GridSearchCV would take, from ``samples`` plain fits per core (seconds)."""
    from joblib import Parallel, delayed
    from sklearn.base import clone
    from sklearn.model_selection import ParameterGrid
    from threadpoolctl import threadpool_limits

    from genreflow.models.classic import STEP, make_cv, make_pipeline

    candidates = list(ParameterGrid({f"{STEP}__{k}": v for k, v in grid.items()}))
    # `samples` fits per core, so that every worker is busy while timed
    size = min(samples * cores, len(candidates))
    picked = np.random.default_rng(seed).choice(len(candidates), size=size, replace=False)
    train, test = next(make_cv(cv_folds, seed).split(X, y))
    pipeline = make_pipeline(model, seed, n_jobs=1)

    def fit_and_score(params):
        fitted = clone(pipeline).set_params(**params).fit(X[train], y[train])
        return fitted.score(X[test], y[test])

    with threadpool_limits(limits=cores):
        Parallel(n_jobs=cores)(delayed(int)(0) for _ in range(cores))  # start the workers first
        start = time.perf_counter()
        Parallel(n_jobs=cores)(delayed(fit_and_score)(candidates[i]) for i in picked)
    seconds = time.perf_counter() - start
    return seconds * len(candidates) * cv_folds / len(picked)


def cpu_seconds():
    """CPU time of this process and its reaped children (joblib's workers, once shut down)."""
    from joblib.externals.loky import get_reusable_executor

    get_reusable_executor().shutdown(wait=True)
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main():
    from genreflow.models.classic import MODELS, resolve_grid, search_model

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--grid", default="paper", choices=["paper", "fast"])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--table", help="a feature table (features.csv or Kaggle's) to use or grow")
    parser.add_argument("--naive-samples", type=int, default=4, help="plain fits timed per model and core (0: skip)")
    parser.add_argument("--cache", default=os.path.expanduser("~/.cache/genreflow"), help="gtzan-mini stats cache")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    # saga at the study's large C values stops at max_iter: expected, and the same both ways
    from sklearn.exceptions import ConvergenceWarning

    warnings.filterwarnings("ignore", category=ConvergenceWarning)

    if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > args.cores:
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[: args.cores])
    rng = np.random.default_rng(args.seed)
    X, y, source = benchmark_table(args, rng)
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(np.arange(len(y)), test_size=0.25, stratify=y, random_state=args.seed)
    print(f"table: {X.shape[0]} x {X.shape[1]}, {len(set(y))} genres: {source}")
    print(f"protocol: 75/25 hold-out ({len(train)}/{len(test)}), 5-fold CV, {args.grid} grids, {args.cores} cores")
    print(f"load average at start: {os.getloadavg()[0]:.1f} (the figures assume {args.cores} idle cores)")
    print(
        f"{'model':9} {'candidates':>10} {'fits':>6} {'plain':>6} {'wall s':>8} {'CPU s':>7} "
        f"{'naive s (est.)':>15} {'CV acc':>7} {'test acc':>8}  best"
    )

    total = naive_total = cpu_total = 0.0
    for model in args.models:
        grid = resolve_grid(model, args.grid)
        cpu_start = cpu_seconds()
        start = time.perf_counter()
        fitted, search = search_model(model, grid, X[train], y[train], cv_folds=5, seed=args.seed, n_jobs=args.cores)
        accuracy = float(np.mean(fitted.predict(X[test]) == y[test]))
        seconds = time.perf_counter() - start
        cpu = cpu_seconds() - cpu_start
        n_candidates = len(search.cv_results_["params"])
        fits = getattr(search, "n_fits_", n_candidates * 5)
        if fits < n_candidates * 5 and args.naive_samples:
            naive = naive_estimate(model, grid, X[train], y[train], args.cores, args.seed, args.naive_samples, 5)
            naive_text = f"{naive:15.0f}"
        else:
            naive = seconds  # searched the plain way: the same work
            naive_text = f"{'same':>15}"
        total += seconds
        cpu_total += cpu
        naive_total += naive
        best = {k.split("__", 1)[1]: v for k, v in search.best_params_.items()}
        print(
            f"{model:9} {n_candidates:10d} {fits:6d} {n_candidates * 5:6d} {seconds:8.1f} {cpu:7.0f} {naive_text} "
            f"{search.best_score_:7.3f} {accuracy:8.3f}  {best}",
            flush=True,
        )
    print(f"load average at end: {os.getloadavg()[0]:.1f}; CPU time {cpu_total:.0f} s = {cpu_total / args.cores:.0f} s on {args.cores} idle cores")
    print(
        f"classic suite ({len(args.models)} models, {args.grid} grids, {X.shape[0]} x {X.shape[1]}, "
        f"{args.cores} cores): {total:.0f} s wall ({total / 60:.1f} min); plain GridSearchCV estimated "
        f"{naive_total:.0f} s ({naive_total / 60:.0f} min): {naive_total / total:.1f}x"
    )


if __name__ == "__main__":
    main()
