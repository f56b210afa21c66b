"""Presorted gradient boosting grows scikit-learn's trees, node for node.

The search of the classic suite fits ``PresortedGradientBoostingClassifier`` in place of
``GradientBoostingClassifier`` (genreflow/models/presorted_gb.py): these tests hold it
to the same trees, values and predictions, on data made to hit the awkward paths
(repeated values, a constant feature, ties across features, two and many classes).
"""

import numpy as np
import pytest
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.tree import DecisionTreeRegressor
from sklearn.utils._sorting import _py_simultaneous_sort

from genreflow.models.classic import make_pipeline, with_presorted_trees, with_sklearn_trees
from genreflow.models.presorted_gb import (
    PresortedGradientBoostingClassifier,
    build_regression_tree,
    presort,
    simultaneous_sort,
)

NODE_FIELDS = ["left_child", "right_child", "feature", "threshold", "impurity",
               "n_node_samples", "weighted_n_node_samples"]


def awkward_problem(n=240, n_classes=4, seed=0):
    """Features with signal, repeats (a tempo-like column, a copy), a constant, noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    X = rng.normal(size=(n, 12))
    X[:, :3] += 0.8 * y[:, None]
    X[:, 3] = rng.choice([80.0, 96.0, 112.0, 120.0, 140.0], size=n) + 5 * y  # repeated values
    X[:, 4] = 7.0  # constant
    X[:, 5] = X[:, 0]  # the same partitions as feature 0: ties between features
    X[:, 6] = np.round(X[:, 1], 1)  # many small runs of equal values
    X[:, 7] = 1e-6 * rng.normal(size=n)  # differences near FEATURE_THRESHOLD
    return X, y


def assert_same_trees(plain, presorted):
    assert plain.estimators_.shape == presorted.estimators_.shape
    for a, b in zip(plain.estimators_.ravel(), presorted.estimators_.ravel()):
        nodes_a, nodes_b = a.tree_.__getstate__()["nodes"], b.tree_.__getstate__()["nodes"]
        for field in NODE_FIELDS:
            assert np.array_equal(nodes_a[field], nodes_b[field]), field
        split = nodes_a["left_child"] != -1  # leaves never read missing_go_to_left
        assert np.array_equal(nodes_a["missing_go_to_left"][split], nodes_b["missing_go_to_left"][split])
        assert np.array_equal(a.tree_.value, b.tree_.value)
        assert a.tree_.max_depth == b.tree_.max_depth
        assert set(vars(a)) == set(vars(b))


@pytest.mark.parametrize(
    "n_classes, params",
    [
        (4, {"learning_rate": 0.1}),
        (4, {"learning_rate": 2.0, "max_depth": 5}),
        (2, {"learning_rate": 0.5, "min_samples_leaf": 3}),
        (3, {"learning_rate": 1.0, "min_samples_split": 9, "min_impurity_decrease": 0.01}),
        (5, {"learning_rate": 0.3, "max_depth": None, "min_samples_leaf": 4}),
    ],
)
def test_same_model_as_gradient_boosting(n_classes, params):
    X, y = awkward_problem(n_classes=n_classes, seed=n_classes)
    X_new = np.random.default_rng(9).normal(size=(50, X.shape[1])) * 2
    kwargs = {"n_estimators": 15, "random_state": 7, **params}
    plain = GradientBoostingClassifier(**kwargs).fit(X, y)
    presorted = PresortedGradientBoostingClassifier(**kwargs).fit(X, y)
    assert_same_trees(plain, presorted)
    assert np.array_equal(plain.decision_function(X_new), presorted.decision_function(X_new))
    for a, b in zip(plain.staged_predict_proba(X_new), presorted.staged_predict_proba(X_new)):
        assert np.array_equal(a, b)
    assert np.array_equal(plain.train_score_, presorted.train_score_)


def test_one_tree_equals_decision_tree_regressor():
    X, _ = awkward_problem(n=300)
    X = X.astype(np.float32)
    rng = np.random.default_rng(3)
    y = rng.normal(size=len(X)) + X[:, 0]
    weight = rng.integers(0, 3, len(X)).astype(np.float64)  # weight 0: left out, as in sklearn
    for seed in range(5):
        state = np.random.RandomState(seed)
        reference = DecisionTreeRegressor(max_depth=6, min_samples_leaf=2, random_state=state)
        reference.fit(X, y, sample_weight=weight)
        drawn = np.random.RandomState(seed).randint(0, 2147483647)
        tree = build_regression_tree(X, y, weight, drawn, max_depth=6, min_samples_split=4, min_samples_leaf=2)
        nodes_a, nodes_b = reference.tree_.__getstate__()["nodes"], tree.__getstate__()["nodes"]
        for field in NODE_FIELDS:
            assert np.array_equal(nodes_a[field], nodes_b[field]), field
        assert np.array_equal(reference.tree_.value, tree.value)


@pytest.mark.parametrize("n", [1, 2, 15, 16, 17, 100, 2000])
def test_introsort_leaves_ties_in_sklearns_order(n):
    rng = np.random.default_rng(n)
    values = rng.integers(0, max(2, n // 10), n).astype(np.float32)  # many ties
    indices = np.arange(n, dtype=np.intp)
    expected_values, expected_indices = values.copy(), indices.copy()
    _py_simultaneous_sort(expected_values, expected_indices, n, use_three_way_partition=True)
    ours_values, ours_indices = values.copy(), indices.astype(np.int64)
    simultaneous_sort(ours_values, ours_indices, 0, n)
    assert np.array_equal(ours_values, expected_values)
    assert np.array_equal(ours_indices, expected_indices)  # not just sorted: the same order


def test_presort_marks_features_with_repeated_values():
    X, _ = awkward_problem(n=100)
    order, repeats = presort(X.astype(np.float32), np.ones(len(X)))
    assert repeats.tolist()[:8] == [False, False, False, True, True, False, True, False]
    assert np.all(np.diff(X[order[0], 0]) > 0)


def test_settings_outside_the_port_fall_back_to_sklearn():
    X, y = awkward_problem()
    for extra in ({"subsample": 0.7}, {"max_features": "sqrt"}, {"max_leaf_nodes": 5}):
        kwargs = {"n_estimators": 8, "random_state": 1, **extra}
        plain = GradientBoostingClassifier(**kwargs).fit(X, y)
        presorted = PresortedGradientBoostingClassifier(**kwargs).fit(X, y)
        assert np.array_equal(plain.decision_function(X), presorted.decision_function(X)), extra


def test_search_pipeline_swaps_the_class_and_the_saved_model_is_sklearns():
    X, y = awkward_problem()
    pipeline = with_presorted_trees(make_pipeline("gboost", seed=0).set_params(model__n_estimators=5))
    assert type(pipeline[-1]) is PresortedGradientBoostingClassifier
    fitted = with_sklearn_trees(pipeline.fit(X, y))
    assert type(fitted[-1]) is GradientBoostingClassifier
    plain = make_pipeline("gboost", seed=0).set_params(model__n_estimators=5).fit(X, y)
    assert np.array_equal(fitted.predict_proba(X), plain.predict_proba(X))
    assert not hasattr(fitted[-1], "_presorted")  # no cached presort in model.joblib
    other = make_pipeline("rf", seed=0)
    assert with_presorted_trees(other) is other
