"""Gradient boosting with presorted features: scikit-learn's model, fitted faster.

scikit-learn's ``GradientBoostingClassifier`` grows every regression tree depth-first
with its ``"best"`` splitter, which sorts the node's samples by each feature at every
node of every tree. For the study's grid (10 genres x 300 stages, 3000 trees per fit,
100 fits) growing trees is about 83% of a fit, and gradient boosting was 79% of the
classic suite's wall time (``benchmarks/classic.py``). The features never change
during a fit, only the residuals do, so the sorted order can be computed once per fit
and carried down each tree by a stable partition (what scikit-learn's removed
``presort=True`` did).

:class:`PresortedGradientBoostingClassifier` is ``GradientBoostingClassifier`` with only
the tree growing replaced by :func:`build_regression_tree`, a port of scikit-learn
1.9's ``DepthFirstTreeBuilder`` + ``BestSplitter`` + ``MSE`` criterion that keeps every
step that decides the result: the same random feature order (its xorshift generator,
seeded from the model's ``RandomState`` as scikit-learn seeds it), the same sample order
(a feature with repeated values is sorted by the same introsort; a feature without
repeats has only one sorted order), the same floating-point sums in the same order. The
trees, and so every prediction, are bit-identical to scikit-learn's
(``tests/test_presorted_gb.py`` compares them node by node; ``benchmarks/classic.py``
times both). Settings the port does not cover (subsampling, sparse input, ``max_leaf_nodes``,
fractional ``max_features`` and friends) fall back to scikit-learn's own tree code.
"""

from __future__ import annotations

import numbers

import numpy as np
from numba import njit
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.ensemble._gb import _update_terminal_regions
from sklearn.tree import DecisionTreeRegressor
from sklearn.tree._tree import NODE_DTYPE, Tree

#: scikit-learn's constants (sklearn/tree/_partitioner.pxd, _tree.pyx, utils/_random.pxd)
FEATURE_THRESHOLD = np.float32(1e-7)
EPSILON = np.finfo(np.float64).eps
RAND_R_MAX = 2147483647
TREE_LEAF = -1
TREE_UNDEFINED = -2


# --------------------------------------------------------------------------------------
# scikit-learn's helpers, ported as they are
# --------------------------------------------------------------------------------------


@njit(cache=True)
def _rand_int(low, high, state):
    """``rand_int`` of sklearn/tree/_utils.pyx: xorshift32 (``our_rand_r``) modulo the range."""
    s = state[0]
    if s == 0:
        s = np.uint32(1)
    s ^= np.uint32(s << np.uint32(13))
    s ^= np.uint32(s >> np.uint32(17))
    s ^= np.uint32(s << np.uint32(5))
    state[0] = s
    return low + np.int64(s % np.uint32(RAND_R_MAX + 1)) % (high - low)


@njit(cache=True)
def _swap(values, indices, i, j):
    values[i], values[j] = values[j], values[i]
    indices[i], indices[j] = indices[j], indices[i]


@njit(cache=True)
def _median3(values, lo, n):
    a, b, c = values[lo], values[lo + n // 2], values[lo + n - 1]
    if a < b:
        if b < c:
            return b
        elif a < c:
            return c
        return a
    elif b < c:
        if a < c:
            return a
        return c
    return b


@njit(cache=True)
def _insertion_sort(values, indices, lo, n):
    for i in range(lo + 1, lo + n):
        temp_val = values[i]
        temp_idx = indices[i]
        j = i
        while j > lo and values[j - 1] > temp_val:
            values[j] = values[j - 1]
            indices[j] = indices[j - 1]
            j -= 1
        values[j] = temp_val
        indices[j] = temp_idx


@njit(cache=True)
def _sift_down(values, indices, lo, start, end):
    root = start
    while True:
        child = root * 2 + 1
        maxind = root
        if child < end and values[lo + maxind] < values[lo + child]:
            maxind = child
        if child + 1 < end and values[lo + maxind] < values[lo + child + 1]:
            maxind = child + 1
        if maxind == root:
            break
        _swap(values, indices, lo + root, lo + maxind)
        root = maxind


@njit(cache=True)
def _heapsort(values, indices, lo, n):
    start = (n - 2) // 2
    end = n
    while True:
        _sift_down(values, indices, lo, start, end)
        if start == 0:
            break
        start -= 1
    end = n - 1
    while end > 0:
        _swap(values, indices, lo, lo + end)
        _sift_down(values, indices, lo, 0, end)
        end -= 1


@njit(cache=True)
def simultaneous_sort(values, indices, lo, n):
    """``simultaneous_sort(..., use_three_way_partition=True)`` of sklearn/utils/_sorting.pyx.

    Sorts ``values[lo:lo + n]`` and moves ``indices`` alike, leaving equal values in the
    very order scikit-learn's introsort leaves them. The recursion on the left part is a
    stack here; parts are disjoint, so the order they are sorted in changes nothing.
    """
    if n == 0:
        return
    # every push is a partition step that settles at least its pivot: n pushes at most
    stack = np.empty((n + 1, 3), dtype=np.int64)
    stack[0, 0], stack[0, 1], stack[0, 2] = lo, n, 2 * int(np.log2(n))
    top = 1
    while top > 0:
        top -= 1
        base, m, maxd = stack[top, 0], stack[top, 1], stack[top, 2]
        done = False
        while m > 15:
            if maxd <= 0:
                _heapsort(values, indices, base, m)
                done = True
                break
            maxd -= 1
            pivot = _median3(values, base, m)
            i = 0
            left = 0
            right = m
            while i < right:
                if values[base + i] < pivot:
                    _swap(values, indices, base + i, base + left)
                    i += 1
                    left += 1
                elif values[base + i] > pivot:
                    right -= 1
                    _swap(values, indices, base + i, base + right)
                else:
                    i += 1
            stack[top, 0], stack[top, 1], stack[top, 2] = base, left, maxd
            top += 1
            base += right
            m -= right
        if not done:
            _insertion_sort(values, indices, base, m)


# --------------------------------------------------------------------------------------
# The tree builder
# --------------------------------------------------------------------------------------


@njit(cache=True)
def _node_sums(y, w, samples, start, end):
    """``RegressionCriterion.init``: weighted sum, sum of squares and weight of a node."""
    sum_total = 0.0
    sq_sum_total = 0.0
    weight = 0.0
    for p in range(start, end):
        i = samples[p]
        w_y = w[i] * y[i]
        sum_total += w_y
        sq_sum_total += w_y * y[i]
        weight += w[i]
    return sum_total, sq_sum_total, weight


@njit(cache=True)
def _move_left(y, w, samples, start, end, pos, new_pos, sum_left, weight_left, sum_total, weight_node):
    """``RegressionCriterion.update``: move ``samples[pos:new_pos]`` to the left child."""
    if (new_pos - pos) <= (end - new_pos):
        for p in range(pos, new_pos):
            i = samples[p]
            sum_left += w[i] * y[i]
            weight_left += w[i]
    else:  # reverse_reset, then subtract from the end
        sum_left = sum_total
        weight_left = weight_node
        for p in range(end - 1, new_pos - 1, -1):
            i = samples[p]
            sum_left -= w[i] * y[i]
            weight_left -= w[i]
    return sum_left, weight_left


@njit(cache=True)
def _build(
    X, y, w, order, repeats, seed, max_depth, min_samples_split, min_samples_leaf,
    min_weight_leaf, min_impurity_decrease, max_features, capacity,
):
    n_total, n_features = X.shape
    feature_threshold = np.float32(FEATURE_THRESHOLD)  # added in float32, as scikit-learn does
    # Splitter.init: samples of nonzero weight, in index order
    samples = np.empty(n_total, dtype=np.int64)
    n_samples = 0
    weighted_n_samples = 0.0
    for i in range(n_total):
        if w[i] != 0.0:
            samples[n_samples] = i
            n_samples += 1
        weighted_n_samples += w[i]
    features = np.arange(n_features)
    constant_features = np.empty(n_features, dtype=np.int64)
    feature_values = np.empty(n_total, dtype=np.float32)
    state = np.empty(1, dtype=np.uint32)
    state[0] = seed
    goes_left = np.zeros(n_total, dtype=np.bool_)
    scratch = np.empty(n_total, dtype=np.int64)

    left_child = np.full(capacity, TREE_LEAF, dtype=np.int64)
    right_child = np.full(capacity, TREE_LEAF, dtype=np.int64)
    feature = np.full(capacity, TREE_UNDEFINED, dtype=np.int64)
    threshold = np.full(capacity, float(TREE_UNDEFINED))
    impurity_of = np.zeros(capacity)
    n_node_samples = np.zeros(capacity, dtype=np.int64)
    weighted_n_node = np.zeros(capacity)
    value = np.zeros(capacity)
    missing_left = np.zeros(capacity, dtype=np.uint8)

    # stack records: start, end, depth, parent, is_left, n_constant_features; impurity
    stack_i = np.empty((capacity + 2, 6), dtype=np.int64)
    stack_f = np.empty(capacity + 2)
    stack_i[0, 0], stack_i[0, 1], stack_i[0, 2] = 0, n_samples, 0
    stack_i[0, 3], stack_i[0, 4], stack_i[0, 5] = TREE_UNDEFINED, 0, 0
    stack_f[0] = np.inf
    top = 1
    node_count = 0
    max_depth_seen = -1
    first = True

    while top > 0:
        top -= 1
        start, end, depth = stack_i[top, 0], stack_i[top, 1], stack_i[top, 2]
        parent, is_left, n_known_constants = stack_i[top, 3], stack_i[top, 4], stack_i[top, 5]
        impurity = stack_f[top]
        n_node = end - start

        sum_total, sq_sum_total, weight_node = _node_sums(y, w, samples, start, end)
        is_leaf = (depth >= max_depth or n_node < min_samples_split or n_node < 2 * min_samples_leaf
                   or weight_node < 2 * min_weight_leaf)
        if first:
            mean = sum_total / weight_node
            impurity = sq_sum_total / weight_node - mean * mean
            first = False
        is_leaf = is_leaf or impurity <= EPSILON

        best_pos = end
        best_feature = 0
        best_threshold = 0.0
        best_missing_left = False
        impurity_left = np.inf
        impurity_right = np.inf
        n_constants_out = n_known_constants
        if not is_leaf:
            # ---- node_split_best ----
            best_proxy = -np.inf
            best_improvement = -np.inf
            f_i = n_features
            n_visited = 0
            n_found_constants = 0
            n_drawn_constants = 0
            n_total_constants = n_known_constants
            while f_i > n_total_constants and (
                n_visited < max_features or n_visited <= n_found_constants + n_drawn_constants
            ):
                n_visited += 1
                f_j = _rand_int(n_drawn_constants, f_i - n_found_constants, state)
                if f_j < n_known_constants:
                    features[n_drawn_constants], features[f_j] = features[f_j], features[n_drawn_constants]
                    n_drawn_constants += 1
                    continue
                f_j += n_found_constants
                current = features[f_j]
                # sort_samples_and_feature_values
                if repeats[current]:
                    for p in range(start, end):
                        feature_values[p] = X[samples[p], current]
                    simultaneous_sort(feature_values, samples, start, end - start)
                else:  # one sorted order only: the presorted one
                    for p in range(start, end):
                        samples[p] = order[current, p]
                        feature_values[p] = X[samples[p], current]
                if feature_values[end - 1] <= feature_values[start] + feature_threshold:
                    features[f_j], features[n_total_constants] = features[n_total_constants], features[f_j]
                    n_found_constants += 1
                    n_total_constants += 1
                    continue
                f_i -= 1
                features[f_i], features[f_j] = features[f_j], features[f_i]

                pos = start
                sum_left = 0.0
                weight_left = 0.0
                p = start
                while p < end:
                    p += 1
                    while p < end and feature_values[p] <= feature_values[p - 1] + feature_threshold:
                        p += 1
                    p_prev = p - 1
                    if p == end:
                        continue
                    n_left = p - start
                    n_right = end - p
                    if n_left < min_samples_leaf or n_right < min_samples_leaf:
                        continue
                    # RegressionCriterion.update(p): _move_left written out, since calling it here
                    # (even with inline="always") made the split search about 8x slower, measured
                    if (p - pos) <= (end - p):
                        for q in range(pos, p):
                            i = samples[q]
                            sum_left += w[i] * y[i]
                            weight_left += w[i]
                    else:  # reverse_reset, then subtract from the end
                        sum_left = sum_total
                        weight_left = weight_node
                        for q in range(end - 1, p - 1, -1):
                            i = samples[q]
                            sum_left -= w[i] * y[i]
                            weight_left -= w[i]
                    pos = p
                    weight_right = weight_node - weight_left
                    sum_right = sum_total - sum_left
                    if weight_left < min_weight_leaf or weight_right < min_weight_leaf:
                        continue
                    proxy = sum_left * sum_left / weight_left + sum_right * sum_right / weight_right
                    if proxy > best_proxy:
                        best_proxy = proxy
                        best_threshold = feature_values[p_prev] / 2.0 + feature_values[p] / 2.0
                        best_missing_left = n_left > n_right
                        best_pos = p
                        best_feature = current

            if best_pos < end:
                # partition_samples_final
                part_start = start
                part_end = end
                while part_start < part_end:
                    if X[samples[part_start], best_feature] <= best_threshold:
                        part_start += 1
                    else:
                        part_end -= 1
                        samples[part_start], samples[part_end] = samples[part_end], samples[part_start]
                # criterion.reset(); update(best_pos); children_impurity; impurity_improvement
                sum_left, weight_left = _move_left(
                    y, w, samples, start, end, start, best_pos, 0.0, 0.0, sum_total, weight_node
                )
                weight_right = weight_node - weight_left
                sum_right = sum_total - sum_left
                sq_sum_left = 0.0
                for p in range(start, best_pos):
                    i = samples[p]
                    sq_sum_left += w[i] * y[i] * y[i]
                sq_sum_right = sq_sum_total - sq_sum_left
                mean_left = sum_left / weight_left
                mean_right = sum_right / weight_right
                impurity_left = sq_sum_left / weight_left - mean_left * mean_left
                impurity_right = sq_sum_right / weight_right - mean_right * mean_right
                best_improvement = (weight_node / weighted_n_samples) * (
                    impurity
                    - (weight_right / weight_node * impurity_right)
                    - (weight_left / weight_node * impurity_left)
                )
                # the presorted orders follow the split (stable), for the children
                if depth + 1 < max_depth:
                    for p in range(start, end):
                        goes_left[samples[p]] = p < best_pos
                    for f in range(n_features):
                        if repeats[f]:
                            continue
                        n_l = start
                        n_r = 0
                        for p in range(start, end):
                            s = order[f, p]
                            if goes_left[s]:
                                order[f, n_l] = s
                                n_l += 1
                            else:
                                scratch[n_r] = s
                                n_r += 1
                        for q in range(n_r):
                            order[f, n_l + q] = scratch[q]
            # keep the known constant features' order for siblings and children
            for q in range(n_known_constants):
                features[q] = constant_features[q]
            for q in range(n_found_constants):
                constant_features[n_known_constants + q] = features[n_known_constants + q]
            n_constants_out = n_total_constants
            is_leaf = best_pos >= end or best_improvement + EPSILON < min_impurity_decrease

        node_id = node_count
        impurity_of[node_id] = impurity
        n_node_samples[node_id] = n_node
        weighted_n_node[node_id] = weight_node
        if parent != TREE_UNDEFINED:
            if is_left:
                left_child[parent] = node_id
            else:
                right_child[parent] = node_id
        if not is_leaf:
            feature[node_id] = best_feature
            threshold[node_id] = best_threshold
            missing_left[node_id] = best_missing_left
        node_count += 1
        value[node_id] = sum_total / weight_node

        if not is_leaf:
            stack_i[top, 0], stack_i[top, 1], stack_i[top, 2] = best_pos, end, depth + 1
            stack_i[top, 3], stack_i[top, 4], stack_i[top, 5] = node_id, 0, n_constants_out
            stack_f[top] = impurity_right
            top += 1
            stack_i[top, 0], stack_i[top, 1], stack_i[top, 2] = start, best_pos, depth + 1
            stack_i[top, 3], stack_i[top, 4], stack_i[top, 5] = node_id, 1, n_constants_out
            stack_f[top] = impurity_left
            top += 1
        if depth > max_depth_seen:
            max_depth_seen = depth

    return (node_count, max_depth_seen, left_child, right_child, feature, threshold,
            impurity_of, n_node_samples, weighted_n_node, value, missing_left)


def presort(X, sample_weight):
    """Per-feature sorted sample order and which features hold repeated values.

    Parameters
    ----------
    X : ndarray of float32, shape (n_samples, n_features)
    sample_weight : ndarray of float64, shape (n_samples,)
        Samples of weight 0 take no part (as in scikit-learn's splitter).

    Returns
    -------
    order : ndarray of int64, shape (n_features, n_active)
        Row ``f``: the samples of nonzero weight by increasing ``X[:, f]``.
    repeats : ndarray of bool, shape (n_features,)
        Whether feature ``f`` has a value twice; those are sorted node by node with
        scikit-learn's introsort instead, whose order among equal values counts.
    """
    active = np.flatnonzero(sample_weight != 0)
    columns = X[active]
    by_value = np.argsort(columns, axis=0, kind="stable")
    order = np.ascontiguousarray(active[by_value.T])
    ordered = np.take_along_axis(columns, by_value, axis=0)
    repeats = np.any(ordered[1:] == ordered[:-1], axis=0) if len(active) > 1 else np.zeros(X.shape[1], bool)
    return order, np.ascontiguousarray(repeats)


def build_regression_tree(X, y, sample_weight, seed, presorted=None, *, max_depth=None,
                          min_samples_split=2, min_samples_leaf=1, min_weight_leaf=0.0,
                          min_impurity_decrease=0.0, max_features=None):
    """Grow the tree ``DecisionTreeRegressor(splitter="best")`` grows, from presorted data.

    Parameters
    ----------
    X : ndarray of float32, shape (n_samples, n_features), C order
    y : ndarray of float64, shape (n_samples,)
    sample_weight : ndarray of float64, shape (n_samples,)
    seed : int
        The splitter's xorshift seed: what scikit-learn draws with
        ``random_state.randint(0, RAND_R_MAX)`` when the tree is fitted.
    presorted : tuple, optional
        :func:`presort` of (X, sample_weight), to share between trees on the same X.
    max_depth, min_samples_split, min_samples_leaf, min_weight_leaf, min_impurity_decrease, max_features
        As resolved by ``DecisionTreeRegressor.fit`` (integers, weights, ``None``).

    Returns
    -------
    sklearn.tree._tree.Tree
    """
    n_samples, n_features = X.shape
    order, repeats = presorted if presorted is not None else presort(X, sample_weight)
    max_depth = np.iinfo(np.int32).max if max_depth is None else int(max_depth)
    max_features = n_features if max_features is None else int(max_features)
    capacity = max(1, 2 * n_samples - 1)
    if max_depth <= 30:
        capacity = min(capacity, 2 ** (max_depth + 1) - 1)
    built = _build(
        X, np.ascontiguousarray(y, dtype=np.float64), np.ascontiguousarray(sample_weight, dtype=np.float64),
        order.copy(), repeats, np.uint32(seed), max_depth, int(min_samples_split), int(min_samples_leaf),
        float(min_weight_leaf), float(min_impurity_decrease), max_features, capacity,
    )
    count, depth, left, right, feature, threshold, impurity, n_node, weighted, value, missing = built
    nodes = np.zeros(count, dtype=NODE_DTYPE)
    nodes["left_child"] = left[:count]
    nodes["right_child"] = right[:count]
    nodes["feature"] = feature[:count]
    nodes["threshold"] = threshold[:count]
    nodes["impurity"] = impurity[:count]
    nodes["n_node_samples"] = n_node[:count]
    nodes["weighted_n_node_samples"] = weighted[:count]
    nodes["missing_go_to_left"] = missing[:count]
    tree = Tree(n_features, np.array([1], dtype=np.intp), 1)
    tree.__setstate__(
        {"max_depth": depth, "node_count": count, "nodes": nodes, "values": value[:count].reshape(count, 1, 1)}
    )
    return tree


# --------------------------------------------------------------------------------------
# The classifier
# --------------------------------------------------------------------------------------


class PresortedGradientBoostingClassifier(GradientBoostingClassifier):
    """``GradientBoostingClassifier`` whose trees grow from presorted features.

    Same parameters, same fitted model, bit for bit (see the module docstring); only
    faster on small dense data. :meth:`to_sklearn` gives the plain scikit-learn object.
    """

    def fit(self, X, y, sample_weight=None, monitor=None):
        try:
            return super().fit(X, y, sample_weight=sample_weight, monitor=monitor)
        finally:
            self.__dict__.pop("_presorted", None)

    def to_sklearn(self):
        """The fitted model as a plain ``GradientBoostingClassifier`` (same state)."""
        plain = GradientBoostingClassifier(**self.get_params())
        plain.__dict__.update(self.__dict__)  # the fitted attributes, shared not copied
        return plain

    def _fast_path(self, X_csc):
        return (
            X_csc is None
            and self.subsample >= 1.0
            and self.max_leaf_nodes is None
            and self.max_features is None
            and self.ccp_alpha == 0.0
            and self.min_weight_fraction_leaf == 0.0
            and isinstance(self.min_samples_split, numbers.Integral)
            and isinstance(self.min_samples_leaf, numbers.Integral)
        )

    def _fit_stage(self, i, X, y, raw_predictions, sample_weight, sample_mask, random_state,
                   X_csc=None, X_csr=None):
        """``GradientBoostingClassifier._fit_stage`` (scikit-learn 1.9) with presorted trees."""
        if not self._fast_path(X_csc):
            return super()._fit_stage(i, X, y, raw_predictions, sample_weight, sample_mask,
                                      random_state, X_csc=X_csc, X_csr=X_csr)
        cached = self.__dict__.get("_presorted")
        if cached is None or cached[0] is not X or cached[1] is not sample_weight:
            cached = (X, sample_weight, presort(X, sample_weight))
            self._presorted = cached
        original_y = y
        neg_gradient = -self._loss.gradient(y_true=y, raw_prediction=raw_predictions, sample_weight=None)
        neg_g_view = neg_gradient.reshape((-1, 1)) if neg_gradient.ndim == 1 else neg_gradient
        min_samples_split = max(self.min_samples_split, 2 * self.min_samples_leaf)
        for k in range(self.n_trees_per_iteration_):
            if self._loss.is_multiclass:
                y = np.array(original_y == k, dtype=np.float64)
            tree = DecisionTreeRegressor(
                criterion="squared_error", splitter="best", max_depth=self.max_depth,
                min_samples_split=self.min_samples_split, min_samples_leaf=self.min_samples_leaf,
                min_weight_fraction_leaf=self.min_weight_fraction_leaf,
                min_impurity_decrease=self.min_impurity_decrease, max_features=self.max_features,
                max_leaf_nodes=self.max_leaf_nodes, random_state=random_state, ccp_alpha=self.ccp_alpha,
            )
            # the one draw DecisionTreeRegressor.fit makes: its splitter's seed
            seed = random_state.randint(0, RAND_R_MAX)
            tree.tree_ = build_regression_tree(
                X, neg_g_view[:, k], sample_weight, seed, cached[2], max_depth=self.max_depth,
                min_samples_split=min_samples_split, min_samples_leaf=self.min_samples_leaf,
                min_impurity_decrease=self.min_impurity_decrease,
            )
            tree.n_features_in_ = X.shape[1]
            tree.n_outputs_ = 1
            tree.max_features_ = X.shape[1]
            _update_terminal_regions(
                self._loss, tree.tree_, X, y, neg_g_view[:, k], raw_predictions, sample_weight,
                sample_mask, learning_rate=self.learning_rate, k=k,
            )
            self.estimators_[i, k] = tree
        return raw_predictions
