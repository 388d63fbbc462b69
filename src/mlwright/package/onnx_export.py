"""A tabular model as one ONNX graph: the feature encoder, the model family, post-processing.

Built node by node from the package's own state (no converter packages): one input per feature
(``[N, 1]``; numbers as double with NaN for missing, categories as strings with ``""`` for
missing), the encoder's ``tree`` and ``dense`` views, LightGBM, XGBoost and CatBoost boosters
as ``ai.onnx.ml.TreeEnsemble`` (opset 5: double thresholds for LightGBM, float32 for XGBoost as
XGBoost itself compares, categorical splits as set membership; CatBoost's symmetric trees from
its JSON model, unrolled, comparing float32 features as CatBoost does), scikit-learn's random
forest and extra trees (features rounded to float32 as its trees compare them, each split's
learned direction for missing values) and histogram boosting (its native categorical splits as
set membership), read from the fitted estimators, linear models as a matrix product, weighted
and stacked ensembles, temperature calibration, and the decision threshold.
Outputs: ``prediction`` (``[N]``: the label as a string, or the value) and, for classifiers,
``probabilities`` (``[N, classes]``, in the order of ``classes`` in the export's metadata).

What the graph cannot hold is refused with an :class:`ExportError` naming the family or column:
date and free-text columns, a CatBoost model that uses categorical columns (its target
statistics for categories have no ONNX form; CatBoost's own ONNX export takes numeric features
only), and the family without an ONNX form here (the MLP).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np

from mlwright.errors import MlwrightError
from mlwright.package.model import Model
from mlwright.train.models import PLANNED, EnsembleFamily, Family, get_family
from mlwright.train.models.blend import EPS  # the graph clips probabilities as scoring does

OPSET, ML_OPSET, IR_VERSION = 21, 5, 10
LEQ, LT, MEMBER = 0, 1, 6  # TreeEnsemble node modes
_KNOWN: tuple[type[Family], ...] = (*PLANNED, EnsembleFamily)
EXPORTABLE = tuple(f.name for f in _KNOWN if f.onnx)  # the families whose class says they do


class ExportError(MlwrightError):
    """A model (or a part of it) has no export to the requested format."""


class _Graph:
    """Nodes and constants of one graph, with unique names."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.constants: list[Any] = []
        self.count = 0

    def name(self, hint: str) -> str:
        self.count += 1
        return f"{re.sub(r'[^A-Za-z0-9_]', '_', hint)[:40]}_{self.count}"

    def const(self, value: Any, hint: str = "c", dtype: Any = None) -> str:
        from onnx import numpy_helper

        array = np.asarray(value, dtype=dtype)
        name = self.name(hint)
        self.constants.append(numpy_helper.from_array(array, name))
        return name

    def op(self, kind: str, *inputs: str, domain: str = "", **attrs: Any) -> str:
        from onnx import helper

        out = self.name(kind.lower())
        self.nodes.append(helper.make_node(kind, list(inputs), [out], domain=domain, **attrs))
        return out


def tabular_onnx(model: Model) -> bytes:
    """The serialized ONNX model of ``model``; an ExportError says what cannot be exported."""
    try:
        import onnx
        from onnx import TensorProto, helper
    except ImportError:
        raise ExportError(
            "ONNX export needs the onnx package", fix="pip install 'mlwright[onnx]'"
        ) from None
    _check_exportable(model)
    g = _Graph()
    columns = model.encoder.columns_ or []
    inputs = []
    for spec in columns:
        kind = TensorProto.STRING if spec["kind"] == "categorical" else TensorProto.DOUBLE
        inputs.append(helper.make_tensor_value_info(spec["name"], kind, [None, 1]))
    cleaned = {spec["name"]: _clean(g, model, spec) for spec in columns}
    views: dict[str, str] = {}

    def view(name: str) -> str:
        if name not in views:
            views[name] = _view(g, model, cleaned, name)
        return views[name]

    raw = _family(g, model.family, view, model.task)
    outputs = []
    if model.task == "regression":
        prediction = g.op("Reshape", raw, g.const([-1], "flat", np.int64))
        outputs.append(helper.make_tensor_value_info("prediction", TensorProto.DOUBLE, [None]))
        g.nodes.append(helper.make_node("Identity", [prediction], ["prediction"]))
    else:
        assert model.classes is not None
        if model.temperature is not None:
            logp = g.op("Log", g.op("Clip", raw, g.const(EPS, "eps"), g.const(1.0, "one")))
            raw = g.op("Softmax", g.op("Div", logp, g.const(model.temperature, "T")), axis=1)
        if len(model.classes) == 2 and model.threshold is not None:
            positive = g.op("Gather", raw, g.const(1, "positive", np.int64), axis=1)
            index = g.op("Cast", g.op("GreaterOrEqual", positive, g.const(model.threshold, "t")),
                         to=TensorProto.INT64)  # fmt: skip
        else:
            index = g.op("ArgMax", raw, axis=1, keepdims=0)
        labels = g.const(np.array([str(c) for c in model.classes], dtype=object), "classes")
        g.nodes.append(helper.make_node("Gather", [labels, index], ["prediction"], axis=0))
        g.nodes.append(helper.make_node("Identity", [raw], ["probabilities"]))
        k = len(model.classes)
        outputs += [
            helper.make_tensor_value_info("prediction", TensorProto.STRING, [None]),
            helper.make_tensor_value_info("probabilities", TensorProto.DOUBLE, [None, k]),
        ]
    graph = helper.make_graph(g.nodes, model.name, inputs, outputs, initializer=g.constants)
    proto = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid("ai.onnx.ml", ML_OPSET)],
        producer_name="mlwright",
        doc_string=f"mlwright model {model.name!r} ({model.task})",
    )
    proto.ir_version = IR_VERSION
    meta = {"classes": None if model.classes is None else [str(c) for c in model.classes],
            "task": model.task, "missing_category": ""}  # fmt: skip
    helper.set_model_props(proto, {"mlwright": json.dumps(meta)})
    onnx.checker.check_model(proto)
    return bytes(proto.SerializeToString())


def _check_exportable(model: Model) -> None:
    unsupported = [c for c in model.family.components if not get_family(c).onnx]
    if unsupported:
        raise ExportError(
            f"the {', '.join(sorted(set(unsupported)))} family has no ONNX export "
            f"(the model is {model.family.name})",
            fix="retrain with --families lightgbm,xgboost,linear (or random_forest, extra_trees, "
            "hist_gb, catboost) to export to ONNX",
        )
    categorical = [c["name"] for c in model.encoder.columns_ or [] if c["kind"] == "categorical"]
    if categorical and any(f.categorical_features() for f in _catboost_families(model.family)):
        shown = ", ".join(repr(name) for name in categorical[:5])
        raise ExportError(
            f"the catboost model uses the categorical columns {shown} through CatBoost's target "
            "statistics, which have no ONNX form (CatBoost's own ONNX export takes numeric "
            "features only)",
            fix="retrain with --families lightgbm,xgboost,linear (their categorical splits "
            "export), or serve the package itself with `mlwright serve`",
        )
    kinds = [c for c in model.encoder.columns_ or [] if c["kind"] in ("datetime", "text")]
    if kinds:
        shown = ", ".join(f"{c['name']!r} ({c['kind']})" for c in kinds[:5])
        raise ExportError(
            f"columns {shown} cannot be encoded inside an ONNX graph",
            fix="derive numeric or categorical columns from them before training, or drop them "
            "with --drop-cols",
        )


def _catboost_families(family: Any) -> list[Any]:
    """The CatBoost models inside ``family`` (itself, or an ensemble's members)."""
    if family.name == "catboost":
        return [family]
    return [f for member in getattr(family, "members_", []) for f in _catboost_families(member)]


def _clean(g: _Graph, model: Model, spec: dict[str, Any]) -> str:
    """A column as the encoder receives it: numbers with infinities as missing and the
    schema's clipping; categories as strings."""
    name = spec["name"]
    if spec["kind"] == "categorical":
        return str(name)
    from onnx import TensorProto

    value = g.op("Cast", name, to=TensorProto.DOUBLE)
    infinite = g.op("IsInf", value)
    value = g.op("Where", infinite, g.const(math.nan, "nan"), value)
    column = next((c for c in model.schema.columns if c.name == name), None)
    clip = column is not None and column.policy.out_of_range == "clip"
    if clip and column is not None and column.minimum is not None and column.maximum is not None:
        clipped = g.op(
            "Min",
            g.op("Max", value, g.const(float(column.minimum), "lo")),
            g.const(float(column.maximum), "hi"),
        )
        value = g.op("Where", g.op("IsNaN", value), value, clipped)
    return value


def _codes(g: _Graph, column: str, levels: list[str], missing: int) -> str:
    """int64 codes: the level's index, ``len(levels)`` when unseen, ``missing`` for ``""``."""
    keys = [str(v) for v in levels]
    values = list(range(len(levels)))
    if "" not in keys:
        keys.append("")
        values.append(missing)
    return g.op(
        "LabelEncoder", column, domain="ai.onnx.ml", keys_strings=keys, values_int64s=values,
        default_int64=len(levels),
    )  # fmt: skip


def _view(g: _Graph, model: Model, cleaned: dict[str, str], view: str) -> str:
    """The encoder's ``view`` matrix (``[N, F]`` double) as FeatureEncoder.transform builds it."""
    from onnx import TensorProto

    if view not in ("tree", "dense"):
        raise ExportError(f"the {view!r} feature view has no ONNX form", fix="see docs/export.md")
    blocks: list[str] = []
    one_hot_max = model.encoder.settings.one_hot_max
    for spec in model.encoder.columns_ or []:
        x = cleaned[spec["name"]]
        if spec["kind"] in ("numeric", "integer", "boolean"):
            if view == "tree":
                blocks.append(x)
                continue
            missing = g.op("IsNaN", x)
            filled = g.op("Where", missing, g.const(float(spec["median"]), "median"), x)
            centred = g.op("Sub", filled, g.const(float(spec["mean"]), "mean"))
            blocks.append(g.op("Div", centred, g.const(float(spec["scale"]), "scale")))
            if spec["has_missing"]:
                blocks.append(g.op("Cast", missing, to=TensorProto.DOUBLE))
            continue
        levels = spec["levels"]
        code = _codes(g, x, levels, -1)
        if view == "tree":
            as_float = g.op("Cast", code, to=TensorProto.DOUBLE)
            is_missing = g.op("Less", code, g.const(0, "zero", np.int64))
            blocks.append(g.op("Where", is_missing, g.const(math.nan, "nan"), as_float))
            continue
        k = min(len(levels), one_hot_max)
        capped = g.op("Min", code, g.const(k, "k", np.int64))
        slots = g.const(np.arange(k + 1, dtype=np.int64).reshape(1, -1), "slots")
        blocks.append(g.op("Cast", g.op("Equal", capped, slots), to=TensorProto.DOUBLE))
        if len(levels) > one_hot_max:
            table = g.const(np.array([*spec["freq"], spec["other_freq"], 0.0]), "freq")
            is_missing = g.op("Less", code, g.const(0, "zero", np.int64))
            index = g.op("Where", is_missing, g.const(len(levels) + 1, "m", np.int64), code)
            flat = g.op("Reshape", index, g.const([-1], "flat", np.int64))
            gathered = g.op("Gather", table, flat, axis=0)
            blocks.append(g.op("Reshape", gathered, g.const([-1, 1], "col", np.int64)))
    return g.op("Concat", *blocks, axis=1)


def _family(g: _Graph, family: Any, view: Any, task: str) -> str:
    """The family's raw output: probabilities ``[N, k]`` or values ``[N, 1]``."""
    name = family.name
    if name == "ensemble":
        raws = [_family(g, member, view, task) for member in family.members_]
        return _blend(g, family.blend, raws, task)
    x = view(family.view)
    if name == "lightgbm":
        return _lightgbm(g, family, x, task)
    if name == "xgboost":
        return _xgboost(g, family, x, task)
    if name == "catboost":
        return _catboost(g, family, x, task)
    if name == "linear":
        return _linear(g, family, x, task)
    if name in ("random_forest", "extra_trees"):
        return _forest(g, family, x, task)
    if name == "hist_gb":
        return _hist_gb(g, family, x, task)
    raise ExportError(f"the {name} family has no ONNX export", fix="see docs/export.md")


def _to_probabilities(g: _Graph, margin: str, task: str, scale: float = 1.0) -> str:
    if task == "regression":
        return margin
    if task == "binary":
        scaled = g.op("Mul", margin, g.const(scale, "sigmoid"))
        p = g.op("Sigmoid", scaled)
        return g.op("Concat", g.op("Sub", g.const(1.0, "one"), p), p, axis=1)
    return g.op("Softmax", margin, axis=1)


def _ensemble_op(
    g: _Graph, x: str, trees: list[_Tree], n_targets: int, dtype: Any, base: list[float]
) -> str:
    """One TreeEnsemble node summing ``trees`` per target, plus ``base``."""
    from onnx import TensorProto, numpy_helper

    features: list[int] = []
    modes: list[int] = []
    splits: list[float] = []
    true_ids: list[int] = []
    true_leaf: list[int] = []
    false_ids: list[int] = []
    false_leaf: list[int] = []
    tracks: list[int] = []
    members: list[float] = []
    leaf_targets: list[int] = []
    leaf_weights: list[float] = []
    roots: list[int] = []
    for tree in trees:
        node_base, leaf_base = len(modes), len(leaf_weights)
        if not tree.nodes:  # a single leaf: a split whose both branches reach it
            roots.append(node_base)
            features.append(0)
            modes.append(LEQ)
            splits.append(0.0)
            true_ids.append(leaf_base)
            false_ids.append(leaf_base)
            true_leaf.append(1)
            false_leaf.append(1)
            tracks.append(0)
            leaf_targets.append(tree.target)
            leaf_weights.append(tree.leaves[0])
            continue
        roots.append(node_base)
        for node in tree.nodes:
            features.append(node["feature"])
            modes.append(node["mode"])
            splits.append(node.get("threshold", math.nan))
            if node["mode"] == MEMBER:
                members.extend([*node["set"], math.nan])
            for side, ids, leafs in (("true", true_ids, true_leaf), ("false", false_ids,
                                                                     false_leaf)):  # fmt: skip
                kind, index = node[side]
                ids.append(index + (leaf_base if kind == "leaf" else node_base))
                leafs.append(1 if kind == "leaf" else 0)
            tracks.append(1 if node["missing_true"] else 0)
        leaf_targets.extend([tree.target] * len(tree.leaves))
        leaf_weights.extend(tree.leaves)
    attrs: dict[str, Any] = dict(
        n_targets=n_targets, aggregate_function=1, post_transform=0, tree_roots=roots,
        nodes_featureids=features,
        nodes_modes=numpy_helper.from_array(np.array(modes, dtype=np.uint8)),
        nodes_splits=numpy_helper.from_array(np.array(splits, dtype=dtype)),
        nodes_truenodeids=true_ids, nodes_trueleafs=true_leaf,
        nodes_falsenodeids=false_ids, nodes_falseleafs=false_leaf,
        nodes_missing_value_tracks_true=tracks,
        leaf_targetids=leaf_targets,
        leaf_weights=numpy_helper.from_array(np.array(leaf_weights, dtype=dtype)),
    )  # fmt: skip
    if members:
        attrs["membership_values"] = numpy_helper.from_array(np.array(members, dtype=dtype))
    if dtype == np.float32:
        x = g.op("Cast", x, to=TensorProto.FLOAT)
    summed = g.op("TreeEnsemble", x, domain="ai.onnx.ml", **attrs)
    if dtype == np.float32:
        summed = g.op("Cast", summed, to=TensorProto.DOUBLE)
    if any(base):
        summed = g.op("Add", summed, g.const(np.array(base).reshape(1, -1), "base"))
    return summed


class _Tree:
    def __init__(self, target: int) -> None:
        self.target = target
        self.nodes: list[dict[str, Any]] = []
        self.leaves: list[float] = []


def _lightgbm(g: _Graph, family: Any, x: str, task: str) -> str:
    dumped = family.booster_.dump_model(num_iteration=family.fitted_["rounds"])
    n_class = int(dumped.get("num_class", 1))
    trees = []
    for i, info in enumerate(dumped["tree_info"]):
        tree = _Tree(i % n_class)
        _lgb_walk(info["tree_structure"], tree)
        trees.append(tree)
    margin = _ensemble_op(g, x, trees, n_class, np.float64, [0.0] * n_class)
    scale = 1.0
    match = re.search(r"sigmoid:([0-9.eE+-]+)", str(dumped.get("objective", "")))
    if match:
        scale = float(match.group(1))
    return _to_probabilities(g, margin, task, scale)


def _lgb_walk(node: dict[str, Any], tree: _Tree) -> tuple[str, int]:
    """Add ``node`` (and below) to ``tree``; returns ("node" | "leaf", index in the tree)."""
    if "leaf_value" in node:
        tree.leaves.append(float(node["leaf_value"]))
        return "leaf", len(tree.leaves) - 1
    record: dict[str, Any] = {"feature": int(node["split_feature"])}
    tree.nodes.append(record)
    here = len(tree.nodes) - 1
    missing = node.get("missing_type", "None")
    if node["decision_type"] == "==":
        record.update(mode=MEMBER, set=[float(v) for v in str(node["threshold"]).split("||")])
        record["missing_true"] = False  # missing and negative codes go right
    else:
        threshold = float(node["threshold"])
        if missing == "Zero":
            raise ExportError(
                "a LightGBM split treats zero as missing, which ONNX cannot express",
                fix="retrain without zero_as_missing",
            )
        record.update(mode=LEQ, threshold=threshold)
        # NaN: the default direction when the split learned one, else NaN counts as 0.0
        record["missing_true"] = (
            bool(node["default_left"]) if missing == "NaN" else threshold >= 0.0
        )
    record["true"] = _lgb_walk(node["left_child"], tree)
    record["false"] = _lgb_walk(node["right_child"], tree)
    return "node", here


def _xgboost(g: _Graph, family: Any, x: str, task: str) -> str:
    learner = json.loads(bytes(family.booster_.save_raw("json")))["learner"]
    model = learner["gradient_booster"]["model"]
    n_class = max(1, int(learner["learner_model_param"].get("num_class", "0")))
    raw_base = str(learner["learner_model_param"]["base_score"]).strip("[]")
    base = [float(v) for v in raw_base.split(",") if v.strip()] or [0.0]
    if len(base) == 1:
        base = base * n_class
    if task == "binary":  # stored as a probability: the margin is its logit
        base = [math.log(b / (1.0 - b)) for b in base]
    trees = []
    for tree_json, target in zip(model["trees"], model["tree_info"], strict=True):
        tree = _Tree(int(target))
        _xgb_tree(tree_json, tree)
        trees.append(tree)
    margin = _ensemble_op(g, x, trees, n_class, np.float32, [float(np.float32(b)) for b in base])
    return _to_probabilities(g, margin, task)


def _xgb_tree(data: dict[str, Any], tree: _Tree) -> None:
    left, right = data["left_children"], data["right_children"]
    conditions, features = data["split_conditions"], data["split_indices"]
    default_left, split_type = data["default_left"], data.get("split_type", [0] * len(left))
    categories: dict[int, list[float]] = {}
    for node, start, size in zip(data.get("categories_nodes", []),
                                 data.get("categories_segments", []),
                                 data.get("categories_sizes", []), strict=True):  # fmt: skip
        categories[int(node)] = [float(c) for c in data["categories"][start : start + size]]
    if left[0] == -1:
        tree.leaves.append(float(conditions[0]))
        return
    index: dict[int, tuple[str, int]] = {}

    def visit(i: int) -> tuple[str, int]:
        if left[i] == -1:
            tree.leaves.append(float(conditions[i]))
            index[i] = ("leaf", len(tree.leaves) - 1)
            return index[i]
        record: dict[str, Any] = {"feature": int(features[i])}
        tree.nodes.append(record)
        here = ("node", len(tree.nodes) - 1)
        if split_type[i] == 1:  # the categories in the set go right
            record.update(mode=MEMBER, set=categories.get(i, []))
            record["missing_true"] = not bool(default_left[i])
            record["true"], record["false"] = visit(right[i]), visit(left[i])
        else:
            record.update(mode=LT, threshold=float(conditions[i]))
            record["missing_true"] = bool(default_left[i])
            record["true"], record["false"] = visit(left[i]), visit(right[i])
        return here

    visit(0)


def _catboost(g: _Graph, family: Any, x: str, task: str) -> str:
    from onnx import TensorProto

    dumped = family.model_json()
    info = dumped["features_info"]
    if info.get("categorical_features") or "oblivious_trees" not in dumped:
        raise ExportError(
            "this catboost model has categorical or non-symmetric splits, which have no ONNX form",
            fix="retrain with --families lightgbm,xgboost,linear to export to ONNX",
        )
    nan_is_greater = {
        int(f["flat_feature_index"]): f.get("nan_value_treatment") == "AsTrue"
        for f in info.get("float_features", [])
    }
    scale, bias = dumped["scale_and_bias"]
    base = [float(b) for b in (bias if isinstance(bias, list) else [bias])]
    n_targets = len(base)
    if task == "multiclass" and n_targets != family.ctx.n_classes:
        raise ExportError(
            "the catboost model saw only some of the classes in training",
            fix="retrain on data with every class",
        )
    trees = []
    for data in dumped["oblivious_trees"]:
        values = np.asarray(data["leaf_values"], dtype="float64").reshape(-1, n_targets)
        for target in range(n_targets):
            tree = _Tree(target)
            _cb_tree(data["splits"], values[:, target], tree, nan_is_greater)
            trees.append(tree)
    # CatBoost compares features as float32: round them so, then compare in double
    x32 = g.op("Cast", g.op("Cast", x, to=TensorProto.FLOAT), to=TensorProto.DOUBLE)
    margin = _ensemble_op(g, x32, trees, n_targets, np.float64, [0.0] * n_targets)
    if float(scale) != 1.0:
        margin = g.op("Mul", margin, g.const(float(scale), "scale"))
    if any(base):
        margin = g.op("Add", margin, g.const(np.array(base).reshape(1, -1), "bias"))
    return _to_probabilities(g, margin, task)


def _cb_tree(
    splits: list[dict[str, Any]], leaves: np.ndarray, tree: _Tree, nan_is_greater: dict[int, bool]
) -> None:
    """A symmetric tree unrolled: split ``i`` sets bit ``i`` of the leaf index when the value
    is above its border (a missing value counts as above only where CatBoost says so)."""
    tree.leaves.extend(float(v) for v in leaves)
    if any(s.get("split_type") != "FloatFeature" for s in splits):
        raise ExportError(
            "this catboost model splits on categories, which have no ONNX form",
            fix="retrain with --families lightgbm,xgboost,linear to export to ONNX",
        )

    def visit(level: int, index: int) -> tuple[str, int]:
        if level == len(splits):
            return "leaf", index
        feature = int(splits[level]["float_feature_index"])
        record: dict[str, Any] = {"feature": feature, "mode": LEQ}
        record["threshold"] = float(splits[level]["border"])
        record["missing_true"] = not nan_is_greater.get(feature, False)
        tree.nodes.append(record)
        here = len(tree.nodes) - 1
        record["true"] = visit(level + 1, index)
        record["false"] = visit(level + 1, index | (1 << level))
        return "node", here

    if splits:
        visit(0, 0)


def _forest(g: _Graph, family: Any, x: str, task: str) -> str:
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
            tree = _Tree(target)
            _sklearn_tree(estimator.tree_, values[:, column] / n_trees, tree)
            trees.append(tree)
    n_targets = family.ctx.n_classes if task == "multiclass" else 1
    x32 = g.op("Cast", g.op("Cast", x, to=TensorProto.FLOAT), to=TensorProto.DOUBLE)
    mean = _ensemble_op(g, x32, trees, n_targets, np.float64, [0.0] * n_targets)
    if task == "binary":
        return g.op("Concat", g.op("Sub", g.const(1.0, "one"), mean), mean, axis=1)
    return mean


def _sklearn_tree(tree_: Any, leaf_values: np.ndarray, tree: _Tree) -> None:
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


def _hist_gb(g: _Graph, family: Any, x: str, task: str) -> str:
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
            tree = _Tree(target)
            _hgb_tree(predictor, tree, columns)
            trees.append(tree)
    n_targets = int(model.n_trees_per_iteration_)
    base = [float(b) for b in np.ravel(model._baseline_prediction)]
    margin = _ensemble_op(g, x, trees, n_targets, np.float64, base)
    if task == "regression":
        return margin
    own = "binary" if n_targets == 1 else "multiclass"  # the classes this model saw
    proba = _to_probabilities(g, margin, own)
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
    predictor: Any, tree: _Tree, columns: list[tuple[int, dict[float, float] | None]]
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


def _linear(g: _Graph, family: Any, x: str, task: str) -> str:
    estimator = family.model_
    coef = np.asarray(estimator.coef_, dtype="float64")
    intercept = np.atleast_1d(np.asarray(estimator.intercept_, dtype="float64"))
    if task != "regression":
        seen = list(getattr(estimator, "classes_", []))
        if seen != list(range(family.ctx.n_classes)):
            raise ExportError(
                "the linear model saw only some of the classes in training",
                fix="retrain on data with every class",
            )
    weights = g.const(coef.reshape(-1, coef.shape[-1]).T, "coef")
    margin = g.op("Add", g.op("MatMul", x, weights), g.const(intercept.reshape(1, -1), "bias"))
    return _to_probabilities(g, margin, task)


def _blend(g: _Graph, blend: Any, raws: list[str], task: str) -> str:
    if blend.method == "weighted":
        pairs = zip(blend.weights, raws, strict=True)
        parts = [g.op("Mul", r, g.const(float(w), "w")) for w, r in pairs if w]
        return parts[0] if len(parts) == 1 else g.op("Sum", *parts)
    if task == "regression":
        stacked = g.op("Concat", *raws, axis=1)
    elif task == "binary":
        logits = []
        for r in raws:
            clipped = g.op("Clip", r, g.const(EPS, "eps"), g.const(1 - EPS, "one_eps"))
            p0 = g.op("Gather", clipped, g.const([0], "p0", np.int64), axis=1)
            p1 = g.op("Gather", clipped, g.const([1], "p1", np.int64), axis=1)
            logits.append(g.op("Log", g.op("Div", p1, p0)))
        stacked = g.op("Concat", *logits, axis=1)
    else:
        logs = [g.op("Log", g.op("Clip", r, g.const(EPS, "eps"), g.const(1.0, "one")))
                for r in raws]  # fmt: skip
        stacked = g.op("Concat", *logs, axis=1)
    coef = g.const(np.asarray(blend.coef, dtype="float64").T, "stack_coef")
    z = g.op("Add", g.op("MatMul", stacked, coef),
             g.const(np.asarray(blend.intercept).reshape(1, -1), "stack_bias"))  # fmt: skip
    if task == "regression":
        return z
    if np.asarray(blend.coef).shape[0] == 1:
        p = g.op("Sigmoid", z)
        return g.op("Concat", g.op("Sub", g.const(1.0, "one"), p), p, axis=1)
    return g.op("Softmax", z, axis=1)


__all__ = ["EXPORTABLE", "ExportError", "tabular_onnx"]
