"""Classic genre classifiers: scikit-learn models tuned by grid search on training tracks.

One job = one model x one input. Every job is a :class:`~sklearn.pipeline.Pipeline`
(``StandardScaler`` then the classifier, so CV folds never see test data), tuned by an
exhaustive grid search with stratified CV on the training tracks only, refitted on all
of them and scored once on the held-out tracks (:func:`run_classic_job`).

Grids come in two presets (:data:`PAPER_GRIDS`, the study's grids as published, and
:data:`FAST_GRIDS`, small) or from the config (:func:`resolve_grid`).

The study's ensemble grids mostly vary the number of boosting stages or trees, and an
ensemble with ``n`` stages is exactly the first ``n`` stages of one with more (same seed
sequence). :class:`StagedGridSearchCV` therefore fits each setting of the *other*
parameters once, with the largest ``n``, and scores every ``n`` from staged predictions:
the same candidates, the same CV scores and the same choice as ``GridSearchCV``, with
5x (forests) to 26x (the study's boosting grids) fewer fits; AdaBoost over forests, which
stops after one perfect stage, needs one fit per CV split; a forest's depths keep the
trees that grew less deep than the limit (:func:`shallower_forest`). Gradient boosting, whose
learning rates allow no such sharing, is fitted by
:class:`~genreflow.models.presorted_gb.PresortedGradientBoostingClassifier`: the same
trees as scikit-learn's, grown from features sorted once per fit (about 7x faster); the
saved model is scikit-learn's own class. ``tests/test_classic.py`` and
``tests/test_presorted_gb.py`` check the equalities, ``benchmarks/classic.py`` measures
the time.
"""

from __future__ import annotations

import copy
import logging
import os
import time
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from scipy.stats import rankdata
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import (
    AdaBoostClassifier,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.ensemble._forest import _parallel_build_trees
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.model_selection import (
    GridSearchCV,
    ParameterGrid,
    StratifiedGroupKFold,
    StratifiedKFold,
)
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from threadpoolctl import threadpool_limits

from genreflow.constants import split_input
from genreflow.dataset import FeatureDataset, load_table
from genreflow.evaluate import vote_tracks, write_evaluation
from genreflow.models.presorted_gb import PresortedGradientBoostingClassifier
from genreflow.splits import iter_folds

log = logging.getLogger(__name__)

MODELS = ("knn", "logreg", "rf", "adaboost", "gboost", "svm", "histgb")
GRID_PRESETS = ("fast", "paper")
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


# --------------------------------------------------------------------------------------
# Models and grids
# --------------------------------------------------------------------------------------


def make_estimator(model, seed=0, n_jobs=1):
    """The unfitted classifier of ``model`` with the study's fixed settings.

    Parameters
    ----------
    model : str
        One of :data:`MODELS`.
    seed : int
        ``random_state`` of every randomised part.
    n_jobs : int
        Threads of the models that have them (forests, k-NN).
    """
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
            raise ValueError(f"classic.grid is '{preset}'; use one of {', '.join(GRID_PRESETS)}")
        grid = {key: list(v) for key, v in PRESET_GRIDS[preset][model].items()}
        where = f"the '{preset}' grid of {model}"
    known = make_estimator(model).get_params(deep=True)
    for key, values in grid.items():
        if key not in known:
            valid = ", ".join(sorted(k for k in known if "__" not in k))
            nested = " (and estimator__<random forest parameter>)" if model == "adaboost" else ""
            raise ValueError(
                f"{where}: '{key}' is not a parameter of {type(make_estimator(model)).__name__}; "
                f"valid ones: {valid}{nested}"
            )
        if not values:
            raise ValueError(f"{where}: '{key}' has no values; give at least one")
    return {key: grid[key] for key in sorted(grid)}


def make_cv(n_splits, seed, grouped=False):
    """Stratified, shuffled, seeded CV; grouped by track (segment mode) when ``grouped``."""
    if grouped:
        return StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)


# --------------------------------------------------------------------------------------
# Staged grid search
# --------------------------------------------------------------------------------------

#: The parameter that counts an ensemble's stages (trees / boosting iterations).
STAGED_PARAMS = {
    RandomForestClassifier: "n_estimators",
    AdaBoostClassifier: "n_estimators",
    GradientBoostingClassifier: "n_estimators",
    HistGradientBoostingClassifier: "max_iter",
}


def staged_param(estimator):
    """Name (with pipeline prefix) of the stage-count parameter, or ``None``."""
    final, prefix = _final_step(estimator)
    name = next((STAGED_PARAMS[cls] for cls in type(final).__mro__ if cls in STAGED_PARAMS), None)
    return prefix + name if name else None


def with_presorted_trees(pipeline):
    """An unfitted copy of ``pipeline`` with gradient boosting fitted from presorted features.

    :class:`~genreflow.models.presorted_gb.PresortedGradientBoostingClassifier` fits the
    very model ``GradientBoostingClassifier`` fits (same trees, bit for bit), about 7x
    faster on tables of this size; every other pipeline is returned as it is.
    """
    final, _ = _final_step(pipeline)
    if type(final) is not GradientBoostingClassifier:
        return pipeline
    swapped = clone(pipeline)  # shares no step with the pipeline it came from
    swapped.steps[-1] = (swapped.steps[-1][0], PresortedGradientBoostingClassifier(**final.get_params()))
    return swapped


def with_sklearn_trees(pipeline):
    """Undo :func:`with_presorted_trees` on a fitted pipeline: scikit-learn's own class."""
    final, _ = _final_step(pipeline)
    if isinstance(final, PresortedGradientBoostingClassifier):
        pipeline.steps[-1] = (pipeline.steps[-1][0], final.to_sklearn())
    return pipeline


def staged_predictions(fitted, X, stages):
    """Predictions of a fitted ensemble cut to each stage count in ``stages``.

    A forest cut to its first ``n`` trees, or a boosting model read after ``n`` stages,
    predicts exactly what the same model fitted with ``n`` stages predicts (stages
    draw their seeds in sequence; later stages never change earlier ones). A boosting
    model that stopped early (AdaBoost after a perfect stage) predicts its last stage
    for every larger count, as a fit with that count would.

    Parameters
    ----------
    fitted : estimator or Pipeline
        Fitted with at least ``max(stages)`` stages.
    X : array-like
        Samples to predict (raw: the pipeline's transforms are applied).
    stages : iterable of int

    Returns
    -------
    dict
        ``{n: predictions}``.
    """
    final, _ = _final_step(fitted)
    if isinstance(fitted, Pipeline):
        X = fitted[:-1].transform(X)
    wanted = sorted(set(stages))
    out = {}
    if isinstance(final, RandomForestClassifier):
        for n in wanted:
            part = copy.copy(final)  # shallow: shares the fitted trees
            part.estimators_ = final.estimators_[:n]
            part.n_estimators = n
            out[n] = part.predict(X)
        return out
    last = None
    for count, prediction in enumerate(final.staged_predict(X), start=1):
        last = prediction
        if count in wanted:
            out[count] = prediction
        if count >= wanted[-1]:
            break
    for n in wanted:
        if n not in out:
            out[n] = last
    return out


class StagedGridSearchCV:
    """Exhaustive grid search over an ensemble that fits each stage count from one fit.

    Scores, ranks, tie-breaking and the chosen parameters are those of
    ``GridSearchCV(estimator, param_grid, cv=cv, error_score="raise")`` (accuracy); only
    the work differs: per CV split, one fit per setting of the other parameters, with
    the largest stage count (see :func:`staged_predictions`). For AdaBoost, a fit whose
    first stage is already perfect (a random forest on its own training data usually
    is) stops there, so its learning rate never enters: that fit serves every learning
    rate of the setting. For a random forest, the settings that differ only in
    ``max_depth`` are fitted deepest first, and each shallower forest keeps every tree
    that grew less deep than its limit (see :func:`shallower_forest`).

    Parameters
    ----------
    estimator : estimator or Pipeline
        Its final step is one of :data:`STAGED_PARAMS`.
    param_grid : dict or list of dict
        As for ``GridSearchCV``.
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
        Fits done, and fits ``GridSearchCV`` would do. A forest regrown at a smaller
        depth counts as the share of its trees that had to be grown again.
    """

    def __init__(self, estimator, param_grid, cv, n_jobs=1):
        self.estimator = estimator
        self.param_grid = param_grid
        self.cv = cv
        self.n_jobs = n_jobs

    def fit(self, X, y, groups=None):
        X = np.asarray(X)
        y = np.asarray(y)
        staged = staged_param(self.estimator)
        if staged is None:
            raise ValueError(f"{type(_final_step(self.estimator)[0]).__name__} has no stage-count parameter")
        final, prefix = _final_step(self.estimator)
        shared = prefix + "learning_rate" if isinstance(final, AdaBoostClassifier) else None
        candidates = list(ParameterGrid(self.param_grid))
        splits = list(self.cv.split(X, y, groups))
        depth = prefix + "max_depth" if isinstance(final, RandomForestClassifier) else None
        chains = _depth_chains(_fit_plans(candidates, staged, shared), depth)
        tasks = Parallel(n_jobs=self.n_jobs)(
            delayed(_score_chain)(self.estimator, X, y, train, test, chain, staged, shared, depth)
            for chain in chains
            for train, test in splits
        )
        scores = np.full((len(candidates), len(splits)), np.nan)
        fits_done = 0.0
        for k, (found, fits) in enumerate(tasks):
            split = k % len(splits)
            for index, score in found.items():
                scores[index, split] = score
            fits_done += fits
        self.n_fits_ = int(round(fits_done))
        self.n_plain_fits_ = len(candidates) * len(splits)
        # the arithmetic of GridSearchCV._format_results, so ranks and ties match
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
        self.n_splits_ = len(splits)
        return self


def _final_step(estimator):
    if isinstance(estimator, Pipeline):
        return estimator.steps[-1][1], f"{estimator.steps[-1][0]}__"
    return estimator, ""


def _fit_plans(candidates, staged, shared):
    """Group candidates into fits: ``[(base params, [(shared value, [(stages, index)])])]``."""
    plans = {}
    for index, params in enumerate(candidates):
        base = {k: v for k, v in params.items() if k not in (staged, shared)}
        key = repr(sorted(base.items()))
        _, by_shared = plans.setdefault(key, (base, {}))
        shared_value = params.get(shared) if shared else None
        by_shared.setdefault(repr(shared_value), (shared_value, []))[1].append((params.get(staged), index))
    return [(base, list(by_shared.values())) for base, by_shared in plans.values()]


def _depth_chains(plans, depth):
    """Group fit plans that differ only in ``depth`` (a forest's ``max_depth``), deepest first."""
    if depth is None:
        return [[plan] for plan in plans]
    chains = {}
    for base, plan in plans:
        rest = {k: v for k, v in base.items() if k != depth}
        chains.setdefault(repr(sorted(rest.items())), []).append((base, plan))

    def deepest_first(item):
        value = item[0].get(depth)
        return -np.inf if value is None else -value

    return [sorted(chain, key=deepest_first) for chain in chains.values()]


def _score_chain(estimator, X, y, train, test, chain, staged, shared, depth):
    """Accuracy of every candidate of a chain of fit plans on one CV split."""
    scores, fits, deeper = {}, 0.0, None
    for base, plan in chain:
        found, plan_fits, deeper = _score_plan(estimator, X, y, train, test, base, plan, staged, shared, deeper, depth)
        scores.update(found)
        fits += plan_fits
    return scores, fits


def _score_plan(estimator, X, y, train, test, base, plan, staged, shared, deeper=None, depth=None):
    """Accuracy of every candidate of one fit plan on one CV split.

    ``deeper``: the fitted pipeline of the previous plan of a depth chain, from which a
    forest of smaller ``max_depth`` is regrown (:func:`shallower_forest`). Returns the
    scores, the fits done, and the last fitted pipeline.
    """
    scores, fits, reusable, fitted = {}, 0.0, None, None
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
            model = clone(estimator).set_params(**params)
            if deeper is not None and _same_but_depth(deeper, model, depth):
                fitted, share = shallower_forest(deeper, params[depth], X[train], y[train])
                fits += share
            else:
                fitted = model.fit(X[train], y[train])
                fits += 1
            predictions = staged_predictions(fitted, X[test], stages) if stages else {}
            if len(stages) < len(members):  # a candidate without a stage count: plain predict
                predictions[None] = fitted.predict(X[test])
            if shared is not None and _stopped_at_perfect_first_stage(fitted):
                reusable = fitted.predict(X[test])  # a one-stage model: any stage count
        for n, index in members:
            scores[index] = accuracy_score(y[test], predictions[n])
    return scores, fits, fitted


def _same_but_depth(fitted, unfitted, depth):
    """Whether ``unfitted`` is ``fitted`` (a pipeline) with another ``depth`` value only."""
    def plain(params):  # values only: step objects and the steps list repeat them
        return {k: repr(v) for k, v in params.items() if k not in (depth, "steps") and not hasattr(v, "get_params")}

    return plain(fitted.get_params(deep=True)) == plain(unfitted.get_params(deep=True))


def shallower_forest(deeper, max_depth, X, y):
    """A fitted forest pipeline regrown at a smaller ``max_depth``, reusing what it can.

    A tree grows depth-first and decides each node from that node's samples and the
    random draws made so far; ``max_depth`` only enters when a node reaches it. A tree
    that grew to depth ``d`` with a larger limit never met it, so any limit above ``d``
    grows the very same tree: it is kept. The others are grown again, each as
    ``RandomForestClassifier.fit`` grows it (same seed, same bootstrap sample). The
    result equals a forest fitted with ``max_depth`` (``tests/test_classic.py``).

    Parameters
    ----------
    deeper : Pipeline
        Fitted, its final step a ``RandomForestClassifier`` with a larger ``max_depth``.
    max_depth : int
    X, y : array-like
        The training examples ``deeper`` was fitted on.

    Returns
    -------
    fitted : Pipeline
        Sharing ``deeper``'s other steps and kept trees.
    share : float
        Share of the trees grown again.
    """
    forest = deeper[-1]
    # the inputs RandomForestClassifier.fit hands its trees
    X_trees = np.asarray(deeper[:-1].transform(X), dtype=np.float32)
    y_trees = np.ascontiguousarray(np.searchsorted(forest.classes_, y).reshape(-1, 1), dtype=np.float64)
    missing = type(forest.estimator)(criterion=forest.criterion)._compute_missing_values_in_feature_mask(
        X_trees, estimator_name=type(forest).__name__
    )
    trees, grown = [], 0
    for i, tree in enumerate(forest.estimators_):
        if tree.tree_.max_depth >= max_depth:
            tree = _parallel_build_trees(
                clone(tree).set_params(max_depth=max_depth), forest.bootstrap, X_trees, y_trees,
                forest._sample_weight, i, len(forest.estimators_), class_weight=forest.class_weight,
                n_samples_bootstrap=forest._n_samples_bootstrap, missing_values_in_feature_mask=missing,
            )
            grown += 1
        trees.append(tree)
    shallow = copy.copy(forest)
    shallow.max_depth = max_depth
    shallow.estimators_ = trees
    return Pipeline([*deeper.steps[:-1], (deeper.steps[-1][0], shallow)]), grown / max(1, len(trees))


def _stopped_at_perfect_first_stage(fitted):
    # AdaBoost stops when a stage makes no training error; that stage gets weight 1 and
    # was fitted before the learning rate is ever used, so every rate gives this model
    final, _ = _final_step(fitted)
    return len(final.estimators_) == 1 and final.estimator_errors_[0] == 0.0


# --------------------------------------------------------------------------------------
# One model: search, refit
# --------------------------------------------------------------------------------------


def search_model(model, grid, X, y, groups=None, cv_folds=5, seed=0, n_jobs=1):
    """Grid-search ``model`` by CV on (X, y), then refit the best setting on all of it.

    Parameters
    ----------
    model : str
        One of :data:`MODELS`.
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
    cv = make_cv(cv_folds, seed, grouped=groups is not None)
    grid = _feasible_grid(model, grid, _smallest_cv_train(cv, X, y, groups))
    # parallel over fits, not inside them
    pipeline = with_presorted_trees(make_pipeline(model, seed, n_jobs=1))
    param_grid = {f"{STEP}__{key}": values for key, values in grid.items()}
    staged = staged_param(pipeline)
    if staged is not None and staged in param_grid:
        search = StagedGridSearchCV(pipeline, param_grid, cv=cv, n_jobs=n_jobs)
    else:
        search = GridSearchCV(pipeline, param_grid, cv=cv, n_jobs=n_jobs, refit=False, error_score="raise")
    # n_jobs cores in all: parallel workers get one thread each (joblib sees to that); the
    # limit keeps OpenMP models (histgb) from oversubscribing in sequential runs and refits
    with threadpool_limits(limits=n_jobs):
        search.fit(X, y, groups=groups)
        fitted = with_presorted_trees(make_pipeline(model, seed, n_jobs)).set_params(**search.best_params_)
        if model == "svm":
            # the search scores SVC's own predictions (its decision function), so it needs no
            # probabilities; the final model gets them, calibrated on folds that keep tracks whole
            folds = list(cv.split(X, y, groups))
            fitted.steps[-1] = (STEP, CalibratedClassifierCV(fitted[-1], method="sigmoid", cv=folds, ensemble=False))
        fitted.fit(X, y)
    return with_sklearn_trees(fitted), search


def _smallest_cv_train(cv, X, y, groups):
    return min(len(train) for train, _ in cv.split(X, y, groups))


def _feasible_grid(model, grid, n_train):
    """Drop k-NN sizes larger than a CV training part (they cannot be evaluated)."""
    if model != "knn" or "n_neighbors" not in grid:
        return grid
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


def check_training_data(y, model, input_name, fold=0, groups=None, cv_folds=5):
    """Fail with a clear message when a job cannot be trained on these examples.

    Raises
    ------
    ValueError
        No examples, one genre only, or fewer training tracks than CV folds.
    """
    where = f"classic model '{model}' on '{input_name}' (fold {fold})"
    y = np.asarray(y)
    if len(y) == 0:
        raise ValueError(
            f"{where}: no training data (0 training {'windows' if groups is not None else 'tracks'}). "
            "Check results/splits/split.csv and split.* in config.yaml (test_size, lists), "
            "and that the dataset has tracks"
            + (" at least segments.length seconds long" if groups is not None else "")
        )
    genres = np.unique(y)
    if len(genres) < 2:
        raise ValueError(
            f"{where}: all {len(y)} training examples are '{genres[0]}'; a classifier needs "
            "at least two genres. Add tracks of other genres to the dataset or use a split "
            "(split.method) that trains on several"
        )
    n_tracks = len(np.unique(groups)) if groups is not None else len(y)
    if n_tracks < cv_folds:
        raise ValueError(
            f"{where}: {n_tracks} training tracks cannot fill classic.cv_folds = {cv_folds} "
            "CV folds; lower classic.cv_folds in config.yaml or add tracks"
        )


# --------------------------------------------------------------------------------------
# The job
# --------------------------------------------------------------------------------------


def load_examples(input_name, tracks, table_path=None, dataset_path=None, segments=None):
    """Features of ``tracks``: one row per track, or per window in segment mode.

    Returns
    -------
    X : numpy.ndarray
    y : numpy.ndarray of str
    owners : numpy.ndarray of str
        The track of each row.
    """
    _, windowed = split_input(input_name)
    if not windowed:
        X, y, _ = load_table(table_path, input_name, tracks)
        return X, y, np.asarray(tracks, dtype=str)
    if dataset_path is None:
        raise ValueError(
            f"input '{input_name}' needs frame-level features (results/features/dataset.h5); "
            "a feature table (dataset.source: table) has none: use mfcc_stats or all_stats"
        )
    segments = segments or {}
    return FeatureDataset(dataset_path).segment_stats(
        list(tracks), segments.get("length", 3.0), segments.get("hop", 3.0), input_name
    )


def run_classic_job(
    model,
    input_name,
    grid,
    split_csv,
    outdir,
    table_path=None,
    dataset_path=None,
    cv_folds=5,
    seed=0,
    segments=None,
    threads=1,
    split_method=None,
):
    """Train, tune and score one model x input over every fold of a split; write outputs.

    Training tracks are the split's ``train`` and ``valid`` parts (the CV validates).
    In segment mode (input ``<name>_seg``) the model learns from window statistics,
    the CV keeps each track's windows in one fold, and a test track's genre is the
    mean of its windows' probabilities (``metrics.json`` adds ``window_accuracy``).

    Parameters
    ----------
    model : str
        One of :data:`MODELS`.
    input_name : str
        ``mfcc_stats``, ``all_stats``, or either with ``_seg``.
    grid : dict
        :func:`resolve_grid` output.
    split_csv, outdir : path-like
        ``results/splits/split.csv``; ``results/models/<model>/<input>/``.
    table_path, dataset_path : path-like, optional
        ``features.csv`` (whole-track inputs), ``dataset.h5`` (segment inputs).
    cv_folds, seed : int
        Config ``classic.cv_folds`` and ``classic.seed``.
    segments : dict, optional
        Config ``segments`` (``length``, ``hop`` in seconds).
    threads : int
        Parallel fits (the rule's ``threads``).
    split_method : str, optional
        Recorded in ``metrics.json``.

    Returns
    -------
    dict
        The metrics written (``genreflow.evaluate.write_evaluation``), plus
        ``model.joblib``: ``{"model", "input", "classes", "segments", "pipelines"}``
        with one fitted pipeline per outer fold.
    """
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    split = pd.read_csv(split_csv)
    classes = sorted(split["label"].unique())
    label_of = dict(zip(split["track"], split["label"]))
    _, windowed = split_input(input_name)
    folds = list(iter_folds(split))
    log.info(
        "%s on %s (%s): grid %s, %d-fold CV, %d outer fold(s), %d thread(s)",
        model, input_name, "segments" if windowed else "track", grid, cv_folds, len(folds), threads,
    )

    predictions, facts, pipelines = [], [], []
    window_hits = [0, 0]
    with threadpool_limits(limits=threads):  # BLAS/OpenMP: the job's threads, no more
        for fold, train_ids, valid_ids, test_ids in folds:
            train_ids = list(train_ids) + list(valid_ids)
            if not test_ids:
                raise ValueError(f"{split_csv}: fold {fold} has no test tracks; check split.* in config.yaml")
            X, y, owners = load_examples(input_name, train_ids, table_path, dataset_path, segments)
            groups = owners if windowed else None
            check_training_data(y, model, input_name, fold, groups, cv_folds)
            start = time.perf_counter()
            fitted, search = search_model(model, grid, X, y, groups, cv_folds, seed, threads)
            seconds = time.perf_counter() - start
            n_fits = getattr(search, "n_fits_", len(search.cv_results_["params"]) * cv_folds)
            log.info(
                "fold %d: best %s, CV accuracy %.3f (%d candidates, %d fits), %.1f s",
                fold, _plain_params(search.best_params_), search.best_score_,
                len(search.cv_results_["params"]), n_fits, seconds,
            )

            X_test, y_test, test_owners = load_examples(input_name, test_ids, table_path, dataset_path, segments)
            frame, hits = _predict_tracks(fitted, X_test, y_test, test_owners, classes, windowed)
            missing = sorted(set(test_ids) - set(frame.index))
            if missing:
                log.warning("fold %d: %d test track(s) have no full window, not scored: %s", fold, len(missing), missing[:5])
            frame.insert(0, "true", [label_of[t] for t in frame.index])
            frame.insert(0, "fold", fold)
            predictions.append(frame.rename_axis("track").reset_index())
            window_hits = [window_hits[0] + hits[0], window_hits[1] + hits[1]]
            log.info("fold %d: test accuracy %.3f on %d tracks", fold, np.mean(frame["true"] == frame["predicted"]), len(frame))
            facts.append(
                {
                    "best_params": _plain_params(search.best_params_),
                    "best_cv_score": float(search.best_score_),
                    "seconds": seconds,
                    "n_train": len(train_ids),
                    "n_train_windows": len(y),
                    "n_fits": int(n_fits),
                }
            )
            pipelines.append(fitted)

    extra = {
        "model": model,
        "input": input_name,
        "mode": "segments" if windowed else "track",
        # one fold: its figures; k folds: the mean (and per fold in the lists)
        "best_cv_score": float(np.mean([f["best_cv_score"] for f in facts])),
        "best_params": facts[0]["best_params"] if len(facts) == 1 else [f["best_params"] for f in facts],
        "fit_seconds": float(sum(f["seconds"] for f in facts)),
        "n_train": int(round(np.mean([f["n_train"] for f in facts]))),
        "n_folds": len(folds),
        "cv_folds": cv_folds,
        "split_method": split_method,
        "device": "CPU",
        "grid": grid,
        "n_candidates": int(np.prod([len(v) for v in grid.values()])),
        "n_fits": int(sum(f["n_fits"] for f in facts)),
        "best_cv_score_per_fold": [f["best_cv_score"] for f in facts],
    }
    if windowed:
        extra["window_accuracy"] = window_hits[0] / window_hits[1] if window_hits[1] else None
        extra["n_train_windows"] = int(round(np.mean([f["n_train_windows"] for f in facts])))
        extra["segments"] = dict(segments or {})
    bundle = {
        "model": model,
        "input": input_name,
        "classes": classes,
        "segments": extra.get("segments"),
        "pipelines": pipelines,
    }
    _atomic_dump(bundle, outdir / "model.joblib")
    metrics = write_evaluation(outdir, pd.concat(predictions, ignore_index=True), classes, extra)
    log.info("%s on %s: accuracy %.3f", model, input_name, metrics["accuracy"])
    return metrics


def _predict_tracks(fitted, X, y, owners, classes, windowed):
    """Per-track predictions (indexed by track) and window hits (correct, total)."""
    proba = fitted.predict_proba(X)
    model_classes = list(fitted.classes_)
    if windowed:
        frame = vote_tracks(proba, owners, model_classes)
        hits = (int(np.sum(fitted.predict(X) == y)), len(y))
    else:
        frame = pd.DataFrame(proba, columns=[f"p_{c}" for c in model_classes], index=pd.Index(owners))
        frame["predicted"] = fitted.predict(X)
        hits = (0, 0)
    # genres the training tracks lacked get probability 0; columns in report order
    columns = [f"p_{c}" for c in classes]
    frame = frame.reindex(columns=["predicted", *columns], fill_value=0.0)
    return frame, hits


def _plain_params(params):
    """Grid-search parameters without the pipeline prefix, JSON-friendly."""
    out = {}
    for key, value in params.items():
        if isinstance(value, np.generic):
            value = value.item()
        out[key.removeprefix(f"{STEP}__")] = value
    return out


def _atomic_dump(obj, path):
    tmp = Path(f"{path}.tmp")
    joblib.dump(obj, tmp)
    os.replace(tmp, path)
