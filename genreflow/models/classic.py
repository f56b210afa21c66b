"""Classic genre classifiers: the model catalogue, its grids, and the grid search.

Every model is a ``StandardScaler`` + classifier :class:`~sklearn.pipeline.Pipeline`,
grid-searched by stratified CV on the training tracks only (grouped by track in segment
mode) and refitted on all of them (:func:`search_model`). Grids: :data:`PAPER_GRIDS` (the
study's), :data:`FAST_GRIDS` or the config (:func:`resolve_grid`).

An ensemble with ``n`` trees or stages is the first ``n`` stages of one with more, so
:class:`StagedGridSearchCV` fits each setting of the *other* parameters once, with the
largest ``n``, and scores every ``n`` through public API: the same scores and choice as
``GridSearchCV`` (``tests/test_classic.py``) with up to 26x fewer fits.
"""

from __future__ import annotations

import copy
import logging

import numpy as np
from joblib import Parallel, delayed, parallel_config
from scipy.stats import rankdata
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import (AdaBoostClassifier, GradientBoostingClassifier, HistGradientBoostingClassifier,
                              RandomForestClassifier)
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.model_selection import GridSearchCV, ParameterGrid, StratifiedGroupKFold, StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from threadpoolctl import threadpool_limits

from genreflow.constants import CLASSIC_MODELS

log = logging.getLogger(__name__)

MODELS = CLASSIC_MODELS
#: Models whose CV fits go to worker processes: tree ensembles spend much of a fit in
#: per-tree Python that holds the GIL (rf, paper grid subset on 2 cores: 46 s in threads,
#: 27 s in processes), and histgb runs OpenMP threads of its own.
PROCESS_MODELS = ("rf", "adaboost", "gboost", "histgb")
#: Name of the classifier step in every pipeline; grid keys get the ``model__`` prefix.
STEP = "model"

_STUDY_RATES = [round(0.1 * i, 1) for i in range(1, 21)]  # 0.1 .. 2.0 by 0.1
_STUDY_STAGES = list(range(50, 301, 10))  # 50 .. 300 by 10
#: The C values LogisticRegressionCV tries by default (``Cs=10``: logspace(-4, 4, 10)).
LOGREG_CS = [float(c) for c in np.logspace(-4, 4, 10)]

#: The study's grids as published. ``logreg``: the study let LogisticRegressionCV choose
#: C for each solver; here C runs over LogisticRegressionCV's default candidates in the
#: same CV as the solver (one flat search: same candidates, same accuracy criterion, the
#: folds grouped by track in segment mode, and 5x fewer fits than nesting the CVs).
#: ``svm`` and ``histgb`` are not in the study: grids of comparable reach.
PAPER_GRIDS = {
    "knn": {"n_neighbors": list(range(4, 31)), "weights": ["uniform", "distance"]},
    "logreg": {"solver": ["saga", "lbfgs"], "C": LOGREG_CS},
    "rf": {
        "max_depth": list(range(1, 21)),
        "n_estimators": list(range(100, 501, 100)),
        "criterion": ["gini", "entropy"],
    },
    "adaboost": {"learning_rate": _STUDY_RATES, "n_estimators": _STUDY_STAGES},
    "gboost": {"learning_rate": _STUDY_RATES, "n_estimators": _STUDY_STAGES},
    "svm": {"C": [0.1, 1.0, 10.0, 100.0], "gamma": ["scale", 0.001, 0.01, 0.1]},
    "histgb": {
        "learning_rate": [0.05, 0.1, 0.2],
        "max_leaf_nodes": [15, 31],
        "max_iter": [100, 200, 300],
    },
}
#: Small grids (the default): a few minutes for the whole suite on a laptop.
FAST_GRIDS = {
    "knn": {"n_neighbors": [5, 9, 15], "weights": ["uniform", "distance"]},
    "logreg": {"C": [0.01, 0.1, 1.0, 10.0]},
    "rf": {"n_estimators": [100, 300], "max_depth": [10, None]},
    "adaboost": {"learning_rate": [0.1, 1.0], "n_estimators": [50, 100]},
    "gboost": {"learning_rate": [0.1], "n_estimators": [50, 100, 200]},
    "svm": {"C": [1.0, 10.0], "gamma": ["scale", 0.01]},
    # min_samples_leaf 20 (the default) leaves small datasets (the demo) without splits
    "histgb": {"learning_rate": [0.1], "max_iter": [100, 200], "min_samples_leaf": [5, 20]},
}
PRESET_GRIDS = {"fast": FAST_GRIDS, "paper": PAPER_GRIDS}


# ----------------------------------------------------------------------- models and grids


def make_estimator(model, seed=0, n_jobs=1):
    """The unfitted classifier of ``model`` (one of :data:`MODELS`) with the study's
    fixed settings; ``n_jobs``: threads of the models that have them."""
    if model == "knn":
        return KNeighborsClassifier(n_jobs=n_jobs)
    if model == "logreg":
        # L2 (the default); 1000 iterations so saga converges on scaled features
        return LogisticRegression(max_iter=1000, random_state=seed)
    if model == "rf":
        return RandomForestClassifier(random_state=seed, n_jobs=n_jobs)
    if model == "adaboost":
        # the study's AdaBoost boosts random forests (SAMME, scikit-learn's only algorithm)
        return AdaBoostClassifier(estimator=RandomForestClassifier(n_jobs=n_jobs), random_state=seed)
    if model == "gboost":
        return GradientBoostingClassifier(random_state=seed)
    if model == "svm":
        # probabilities come from calibrating the refitted model (see search_model)
        return SVC(kernel="rbf", random_state=seed)
    if model == "histgb":
        # early stopping off: max_iter is then exactly the number of iterations, as searched
        return HistGradientBoostingClassifier(early_stopping=False, random_state=seed)
    raise ValueError(f"unknown classic model '{model}'; use one of {', '.join(MODELS)}")


def make_pipeline(model, seed=0, n_jobs=1):
    """``StandardScaler`` followed by :func:`make_estimator` (step name :data:`STEP`)."""
    return Pipeline([("scale", StandardScaler()), (STEP, make_estimator(model, seed, n_jobs))])


def resolve_grid(model, preset="fast", override=None):
    """The parameter grid a job searches, as plain JSON-able lists.

    Parameters
    ----------
    model : str
        One of :data:`MODELS`.
    preset : {"fast", "paper"}
        Config ``classic.grid``.
    override : dict, optional
        Config ``classic.grids.<model>``: when given (non-empty), it *replaces* the preset
        grid. Keys are the classifier's parameter names (``n_neighbors``,
        ``estimator__max_depth`` for AdaBoost's forest); a scalar value means one value.

    Returns
    -------
    dict
        ``{parameter: [values...]}``, keys sorted.
    """
    if model not in MODELS:
        raise ValueError(f"unknown classic model '{model}' in classic.models; use one of {', '.join(MODELS)}")
    if override:
        if not isinstance(override, dict):
            raise ValueError(
                f"classic.grids.{model} must map parameter names to lists of values, got {override!r}"
            )
        grid = {key: list(v) if isinstance(v, (list, tuple)) else [v] for key, v in override.items()}
        where = f"classic.grids.{model}"
    else:
        if preset not in PRESET_GRIDS:
            raise ValueError(f"classic.grid is '{preset}'; use one of {', '.join(PRESET_GRIDS)}")
        grid = {key: list(v) for key, v in PRESET_GRIDS[preset][model].items()}
        where = f"the '{preset}' grid of {model}"
    estimator = make_estimator(model)
    known = estimator.get_params(deep=True)
    for key, values in grid.items():
        if key not in known:
            valid = ", ".join(sorted(k for k in known if "__" not in k))
            nested = " (and estimator__<random forest parameter>)" if model == "adaboost" else ""
            raise ValueError(
                f"{where}: '{key}' is not a parameter of {type(estimator).__name__}; "
                f"valid ones: {valid}{nested}"
            )
        if not values:
            raise ValueError(f"{where}: '{key}' has no values; give at least one")
    return {key: grid[key] for key in sorted(grid)}


def make_cv(n_splits, seed, grouped=False):
    """Stratified, shuffled, seeded CV; grouped by track (segment mode) when ``grouped``."""
    kind = StratifiedGroupKFold if grouped else StratifiedKFold
    return kind(n_splits=n_splits, shuffle=True, random_state=seed)


# ----------------------------------------------------------------------- staged grid search

#: The parameter that counts an ensemble's stages (trees / boosting iterations).
STAGED_PARAMS = {
    RandomForestClassifier: "n_estimators",
    AdaBoostClassifier: "n_estimators",
    GradientBoostingClassifier: "n_estimators",
    HistGradientBoostingClassifier: "max_iter",
}


def _final_step(estimator):
    if isinstance(estimator, Pipeline):
        return estimator.steps[-1][1], f"{estimator.steps[-1][0]}__"
    return estimator, ""


def staged_param(estimator):
    """Name (with pipeline prefix) of the stage-count parameter, or ``None``."""
    final, prefix = _final_step(estimator)
    name = next((STAGED_PARAMS[cls] for cls in type(final).__mro__ if cls in STAGED_PARAMS), None)
    return prefix + name if name else None


def staged_predictions(fitted, X, stages):
    """``{n: predictions}`` of a fitted ensemble (or pipeline) cut to each of ``stages``.

    A forest cut to its first ``n`` trees, or a boosting model read after ``n`` stages,
    predicts what the same model fitted with ``n`` stages predicts (stages draw their
    seeds in sequence; later stages never change earlier ones). A boosting model that
    stopped early (AdaBoost after a perfect stage) predicts its last stage for every
    larger count, as a fit with that count would.
    """
    final, _ = _final_step(fitted)
    if isinstance(fitted, Pipeline):
        X = fitted[:-1].transform(X)
    wanted = sorted(set(stages))
    out = {}
    if isinstance(final, RandomForestClassifier):
        for n in wanted:
            part = copy.copy(final)  # shallow: shares the fitted trees
            part.estimators_, part.n_estimators = final.estimators_[:n], n
            out[n] = part.predict(X)
        return out
    for count, prediction in enumerate(final.staged_predict(X), start=1):
        if count in wanted:
            out[count] = prediction
        if count >= wanted[-1]:
            break
    return {n: out.get(n, prediction) for n in wanted}


class StagedGridSearchCV:
    """Exhaustive grid search over an ensemble that fits each stage count from one fit.

    Scores, ranks, ties and choice are those of ``GridSearchCV(estimator, param_grid,
    cv=cv, error_score="raise")`` (accuracy); per CV split it fits each setting of the
    other parameters once, with the largest stage count (:func:`staged_predictions`).
    An AdaBoost fit whose first stage is perfect (a forest on its own training data
    usually is) stops there before its learning rate enters: it serves every rate.

    Parameters
    ----------
    estimator : estimator or Pipeline
        Its final step is one of :data:`STAGED_PARAMS`.
    param_grid : dict or list of dict
    cv : cross-validation splitter
    n_jobs : int
        Parallel (setting x split) tasks.

    Attributes
    ----------
    cv_results_ : dict
        ``params``, ``mean_test_score``, ``std_test_score``, ``rank_test_score``,
        ``split<i>_test_score``.
    best_index_, best_params_, best_score_
        As ``GridSearchCV`` (``refit=False``: refit with :func:`search_model`).
    n_fits_, n_plain_fits_ : int
        Fits done, and fits ``GridSearchCV`` would do.
    """

    def __init__(self, estimator, param_grid, cv, n_jobs=1):
        self.estimator = estimator
        self.param_grid = param_grid
        self.cv = cv
        self.n_jobs = n_jobs

    def fit(self, X, y, groups=None):
        X, y = np.asarray(X), np.asarray(y)
        final, prefix = _final_step(self.estimator)
        staged = staged_param(self.estimator)
        if staged is None:
            raise ValueError(f"{type(final).__name__} has no stage-count parameter")
        shared = prefix + "learning_rate" if isinstance(final, AdaBoostClassifier) else None
        candidates = list(ParameterGrid(self.param_grid))
        splits = list(self.cv.split(X, y, groups))
        # one task a batch: a task takes seconds, so batching saves nothing, and batches
        # grown on quick settings could leave one worker the slowest ones at the end
        tasks = Parallel(n_jobs=self.n_jobs, batch_size=1)(
            delayed(_score_plan)(self.estimator, X, y, train, test, base, plan, staged, shared)
            for base, plan in _fit_plans(candidates, staged, shared)
            for train, test in splits
        )
        scores = np.full((len(candidates), len(splits)), np.nan)
        for k, (found, fits) in enumerate(tasks):
            for index, score in found.items():
                scores[index, k % len(splits)] = score
        self.n_fits_ = sum(fits for _, fits in tasks)
        self.n_plain_fits_ = len(candidates) * len(splits)
        # GridSearchCV's own arithmetic (mean, std, rank 'min'), so ranks and ties match
        means = np.average(scores, axis=1)
        stds = np.sqrt(np.average((scores - means[:, np.newaxis]) ** 2, axis=1))
        results = {"params": candidates, "mean_test_score": means, "std_test_score": stds}
        results["rank_test_score"] = rankdata(-means, method="min").astype(np.int32)
        for split in range(len(splits)):
            results[f"split{split}_test_score"] = scores[:, split]
        self.cv_results_ = results
        self.best_index_ = int(results["rank_test_score"].argmin())
        self.best_params_ = candidates[self.best_index_]
        self.best_score_ = float(means[self.best_index_])
        return self


def _fit_plans(candidates, staged, shared):
    """Group candidates into fits: ``[(base params, [(shared value, [(stages, index)])])]``."""
    plans = {}
    for index, params in enumerate(candidates):
        base = {k: v for k, v in params.items() if k not in (staged, shared)}
        _, by_shared = plans.setdefault(repr(sorted(base.items())), (base, {}))
        shared_value = params.get(shared) if shared else None
        by_shared.setdefault(repr(shared_value), (shared_value, []))[1].append((params.get(staged), index))
    return [(base, list(by_shared.values())) for base, by_shared in plans.values()]


def _score_plan(estimator, X, y, train, test, base, plan, staged, shared):
    """Accuracy of every candidate of one fit plan on one CV split, and the fits done."""
    scores, fits, reusable = {}, 0, None
    for shared_value, members in plan:
        stages = [n for n, _ in members if n is not None]
        if reusable is not None:
            predictions = {n: reusable for n, _ in members}
        else:
            params = dict(base)
            if shared is not None and shared_value is not None:
                params[shared] = shared_value
            if stages:
                params[staged] = max(stages)
            fitted = clone(estimator).set_params(**params).fit(X[train], y[train])
            fits += 1
            predictions = staged_predictions(fitted, X[test], stages) if stages else {}
            if len(stages) < len(members):  # a candidate without a stage count: plain predict
                predictions[None] = fitted.predict(X[test])
            # AdaBoost stops after a stage with no training error; that stage gets weight 1
            # and was fitted before the learning rate is used, so every rate gives this model
            final, _ = _final_step(fitted)
            if shared is not None and len(final.estimators_) == 1 and final.estimator_errors_[0] == 0.0:
                reusable = fitted.predict(X[test])
        for n, index in members:
            scores[index] = accuracy_score(y[test], predictions[n])
    return scores, fits


# ----------------------------------------------------------------------- one model: search, refit


def search_model(model, grid, X, y, groups=None, cv_folds=5, seed=0, n_jobs=1):
    """Grid-search ``model`` by CV on (X, y), then refit the best setting on all of it.

    Parameters
    ----------
    model : str
    grid : dict
        ``{parameter: [values]}`` (:func:`resolve_grid`).
    X, y : array-like
        Training examples (tracks, or windows in segment mode) and labels.
    groups : array-like, optional
        Track of each example (segment mode): CV folds then never split a track.
    cv_folds, seed : int
        Stratified CV folds and the seed of their shuffle (and of the models).
    n_jobs : int
        Parallel CV fits; the refit uses as many threads where the model has them.

    Returns
    -------
    fitted : Pipeline
        Refitted on all of (X, y) with the best parameters. For ``svm``, the SVC is
        wrapped in ``CalibratedClassifierCV(ensemble=False)`` (Platt scaling on the same
        CV folds), what ``SVC(probability=True)`` did before scikit-learn 1.9 deprecated it.
    search : GridSearchCV or StagedGridSearchCV
        The search (``best_params_``, ``best_score_``, ``cv_results_``).
    """
    labels = np.asarray(y)
    tracks = np.asarray(groups) if groups is not None else np.arange(len(labels))
    most = max(len(np.unique(tracks[labels == label])) for label in np.unique(labels))
    if most < cv_folds:  # scikit-learn's own message names neither the setting nor the fix
        fix = f"set classic.cv_folds to {most} or less, or add tracks" if most >= 2 else "add tracks"
        raise ValueError(f"classic.cv_folds is {cv_folds}, but no genre has that many training tracks "
                         f"(at most {most}): {fix}")
    cv = make_cv(cv_folds, seed, grouped=groups is not None)
    if model == "knn" and "n_neighbors" in grid:
        grid = _feasible_neighbours(grid, min(len(train) for train, _ in cv.split(X, y, groups)))
    pipeline = make_pipeline(model, seed, n_jobs=1)  # parallel over fits, not inside them
    param_grid = {f"{STEP}__{key}": values for key, values in grid.items()}
    if staged_param(pipeline) in param_grid:
        search = StagedGridSearchCV(pipeline, param_grid, cv=cv, n_jobs=n_jobs)
    else:
        search = GridSearchCV(pipeline, param_grid, cv=cv, n_jobs=n_jobs, refit=False, error_score="raise")
    # n_jobs cores in all. k-NN, logreg and SVM fit in threads (their C code releases the
    # GIL), which saves a job the start of worker processes (~5 s); the PROCESS_MODELS in
    # processes, whose OpenMP threads joblib limits to one each (histgb in threads: 173 s
    # against 23 s, docs/benchmarks.md). The limit keeps OpenMP from oversubscribing in
    # sequential runs and refits.
    backend = "loky" if model in PROCESS_MODELS else "threading"
    with threadpool_limits(limits=n_jobs), parallel_config(backend=backend):
        search.fit(X, y, groups=groups)
        fitted = make_pipeline(model, seed, n_jobs).set_params(**search.best_params_)
        if model == "svm":
            # the search scores SVC's own predictions (its decision function), so it needs no
            # probabilities; the final model gets them, calibrated on folds that keep tracks whole
            folds = list(cv.split(X, y, groups))
            calibrated = CalibratedClassifierCV(fitted[-1], method="sigmoid", cv=folds, ensemble=False)
            fitted.steps[-1] = (STEP, calibrated)
        fitted.fit(X, y)
    return fitted, search


def _feasible_neighbours(grid, n_train):
    """Drop k-NN sizes larger than a CV training part (they cannot be evaluated)."""
    kept = [k for k in grid["n_neighbors"] if k <= n_train]
    if not kept:
        raise ValueError(
            f"knn: every n_neighbors in {grid['n_neighbors']} exceeds the {n_train} examples of "
            "a CV training part; give smaller values in classic.grids.knn or add tracks"
        )
    if len(kept) < len(grid["n_neighbors"]):
        log.warning(
            "knn: n_neighbors %s exceed the %d examples of a CV training part; searching %s",
            sorted(set(grid["n_neighbors"]) - set(kept)), n_train, kept,
        )
    return {**grid, "n_neighbors": kept}
