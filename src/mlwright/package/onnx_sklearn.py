"""scikit-learn's tree models as ONNX: random forest and extra trees (the mean of the trees'
leaves, features rounded to float32 as scikit-learn's trees compare them, each split's learned
direction for missing values) and histogram boosting (the baseline plus one tree per class and
round; native categorical splits as set membership), read from the fitted estimators."""

from __future__ import annotations

from typing import Any

import numpy as np

from mlwright.package.onnx_graph import (
    LEQ,
    MEMBER,
    ExportError,
    Graph,
    Tree,
    to_probabilities,
    tree_ensemble,
)


def forest(g: Graph, family: Any, x: str, task: str) -> str:
    """Bagged scikit-learn trees: the mean over the trees of each leaf's value (a classifier's
    leaves hold class fractions), comparing features rounded to float32 as scikit-learn's trees
    do. A binary classifier's graph holds the positive class's fractions only."""
    from onnx import TensorProto

    forest = family.model_
    n_trees = len(forest.estimators_)
    if task == "regression":
        columns = [(0, 0)]  # (column of the leaves' values, target of the graph)
    else:
        columns = [(j, int(c)) for j, c in enumerate(forest.classes_)]
        if task == "binary":
            columns = [(j, 0) for j, c in columns if c == 1]
    if not columns:
        raise ExportError(
            "the forest saw only one class in training", fix="retrain on data with both classes"
        )
    trees = []
    for estimator in forest.estimators_:
        values = np.asarray(estimator.tree_.value[:, 0, :], dtype="float64")
        if task != "regression":  # scikit-learn's predict_proba normalises each leaf
            totals = values.sum(axis=1, keepdims=True)
            values = values / np.where(totals == 0.0, 1.0, totals)
        for column, target in columns:
            tree = Tree(target)
            _sklearn_tree(estimator.tree_, values[:, column] / n_trees, tree)
            trees.append(tree)
    n_targets = family.ctx.n_classes if task == "multiclass" else 1
    x32 = g.op("Cast", g.op("Cast", x, to=TensorProto.FLOAT), to=TensorProto.DOUBLE)
    mean = tree_ensemble(g, x32, trees, n_targets, np.float64, [0.0] * n_targets)
    if task == "binary":
        return g.op("Concat", g.op("Sub", g.const(1.0, "one"), mean), mean, axis=1)
    return mean


def _sklearn_tree(tree_: Any, leaf_values: np.ndarray, tree: Tree) -> None:
    """A fitted ``sklearn.tree._tree.Tree``: ``x <= threshold`` goes left, a missing value
    where the split learned to send it."""
    left, right = tree_.children_left, tree_.children_right
    is_leaf = left == -1
    position = _positions(is_leaf)
    tree.leaves.extend(float(v) for v in leaf_values[is_leaf])
    missing_left = getattr(tree_, "missing_go_to_left", np.zeros(len(left), dtype=np.uint8))

    def ref(i: int) -> tuple[str, int]:
        return ("leaf" if is_leaf[i] else "node", int(position[i]))

    for i in np.flatnonzero(~is_leaf):
        tree.nodes.append({
            "feature": int(tree_.feature[i]), "mode": LEQ, "threshold": float(tree_.threshold[i]),
            "missing_true": bool(missing_left[i]), "true": ref(left[i]), "false": ref(right[i]),
        })  # fmt: skip


def _positions(is_leaf: np.ndarray) -> np.ndarray:
    """Each node's index among the tree's inner nodes or among its leaves (the root stays 0)."""
    position = np.empty(len(is_leaf), dtype=np.int64)
    position[~is_leaf] = np.arange(int((~is_leaf).sum()))
    position[is_leaf] = np.arange(int(is_leaf.sum()))
    return position


_HGB_LOSSES = ("HalfSquaredError", "HalfBinomialLoss", "HalfMultinomialLoss")


def hist_gb(g: Graph, family: Any, x: str, task: str) -> str:
    """scikit-learn's histogram boosting: the baseline plus one tree per class and round,
    numeric splits in double as scikit-learn compares raw values, categorical splits as set
    membership (a category unseen in training goes where missing values go)."""
    model = family.model_
    loss = type(model._loss).__name__
    if loss not in _HGB_LOSSES:
        raise ExportError(
            f"the hist_gb model's loss {loss} has no ONNX form here",
            fix="retrain with the default loss",
        )
    columns = _hgb_columns(model)
    trees = []
    for predictors in model._predictors:
        for target, predictor in enumerate(predictors):
            tree = Tree(target)
            _hgb_tree(predictor, tree, columns)
            trees.append(tree)
    n_targets = int(model.n_trees_per_iteration_)
    base = [float(b) for b in np.ravel(model._baseline_prediction)]
    margin = tree_ensemble(g, x, trees, n_targets, np.float64, base)
    if task == "regression":
        return margin
    own = "binary" if n_targets == 1 else "multiclass"  # the classes this model saw
    proba = to_probabilities(g, margin, own)
    seen = [int(c) for c in model.classes_]
    n_classes = family.ctx.n_classes
    if seen == list(range(n_classes)):
        return proba
    scatter = np.zeros((len(seen), n_classes))  # as all_classes fills the unseen classes' 0s
    scatter[np.arange(len(seen)), seen] = 1.0
    return g.op("MatMul", proba, g.const(scatter, "seen"))


def _hgb_columns(model: Any) -> list[tuple[int, dict[float, float] | None]]:
    """For each column the trees split on: the input column it is, and for a categorical one
    the input values of the categories the trees know (by code). scikit-learn puts categorical
    columns first, coded by their position in the encoder's categories (unknown ones missing)."""
    known, index = model._bin_mapper.make_known_categories_bitsets()
    n_features = int(model.n_features_in_)
    if model._preprocessor is None:  # categories (if any) are coded by their own values
        flags = model.is_categorical_
        return [
            (j, {c: c for c in _bitset(known[int(index[j])])} if flags is not None and flags[j]
             else None)
            for j in range(n_features)
        ]  # fmt: skip
    columns: list[tuple[int, dict[float, float] | None]] = [(0, None)] * n_features
    for name, transformer, selected in model._preprocessor.transformers_:
        if name == "remainder":
            continue
        chosen = np.arange(n_features)[selected].tolist()
        where = model._preprocessor.output_indices_[name]
        for k, (out, source) in enumerate(zip(range(where.start, where.stop), chosen, strict=True)):
            if name != "encoder":
                columns[out] = (source, None)
                continue
            values = np.asarray(transformer.categories_[k], dtype="float64")
            codes = _bitset(known[int(index[out])])
            columns[out] = (source, {c: float(values[int(c)]) for c in codes if c < len(values)})
    return columns


def _hgb_tree(
    predictor: Any, tree: Tree, columns: list[tuple[int, dict[float, float] | None]]
) -> None:
    nodes = predictor.nodes
    is_leaf = nodes["is_leaf"].astype(bool)
    position = _positions(is_leaf)
    tree.leaves.extend(float(v) for v in nodes["value"][is_leaf])

    def ref(i: int) -> tuple[str, int]:
        return ("leaf" if is_leaf[i] else "node", int(position[i]))

    for i in np.flatnonzero(~is_leaf):
        node = nodes[i]
        source, categories = columns[int(node["feature_idx"])]
        left, right = ref(int(node["left"])), ref(int(node["right"]))
        missing_left = bool(node["missing_go_to_left"])
        record: dict[str, Any] = {"feature": source}
        if node["is_categorical"]:
            assert categories is not None
            codes = _bitset(predictor.raw_left_cat_bitsets[int(node["bitset_idx"])])
            goes_left = {v for c, v in categories.items() if c in codes}
            # membership picks the known categories of the side missing values do not take;
            # every other value (missing, unseen) takes the other branch, as in scikit-learn
            if missing_left:
                chosen, true, false = set(categories.values()) - goes_left, right, left
            else:
                chosen, true, false = goes_left, left, right
            record.update(mode=MEMBER, set=sorted(chosen), true=true, false=false)
            record["missing_true"] = False
        else:
            record.update(mode=LEQ, threshold=float(node["num_threshold"]), true=left,
                          false=right, missing_true=missing_left)  # fmt: skip
        tree.nodes.append(record)


def _bitset(words: np.ndarray) -> set[float]:
    """The category values whose bits are set in scikit-learn's 256-bit set."""
    return {
        float(32 * w + b) for w, word in enumerate(words.tolist()) for b in range(32)
        if int(word) >> b & 1
    }  # fmt: skip


__all__ = ["forest", "hist_gb"]
