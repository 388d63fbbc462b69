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
The graph's parts are in :mod:`mlwright.package.onnx_graph`, the scikit-learn families' trees
in :mod:`mlwright.package.onnx_sklearn`.
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

from mlwright.package.model import Model
from mlwright.package.onnx_graph import (
    IR_VERSION,
    LEQ,
    LT,
    MEMBER,
    ML_OPSET,
    OPSET,
    ExportError,
    Graph,
    Tree,
    to_probabilities,
    tree_ensemble,
)
from mlwright.package.onnx_sklearn import forest, hist_gb
from mlwright.train.models import PLANNED, EnsembleFamily, Family, get_family
from mlwright.train.models.blend import EPS  # the graph clips probabilities as scoring does

_KNOWN: tuple[type[Family], ...] = (*PLANNED, EnsembleFamily)
EXPORTABLE = tuple(f.name for f in _KNOWN if f.onnx)  # the families whose class says they do


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
    g = Graph()
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
            fix="retrain with --families lightgbm,xgboost,linear,hist_gb (their categorical splits "
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


def _clean(g: Graph, model: Model, spec: dict[str, Any]) -> str:
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


def _codes(g: Graph, column: str, levels: list[str], missing: int) -> str:
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


def _view(g: Graph, model: Model, cleaned: dict[str, str], view: str) -> str:
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


def _family(g: Graph, family: Any, view: Any, task: str) -> str:
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
        return forest(g, family, x, task)
    if name == "hist_gb":
        return hist_gb(g, family, x, task)
    raise ExportError(f"the {name} family has no ONNX export", fix="see docs/export.md")


def _lightgbm(g: Graph, family: Any, x: str, task: str) -> str:
    dumped = family.booster_.dump_model(num_iteration=family.fitted_["rounds"])
    n_class = int(dumped.get("num_class", 1))
    trees = []
    for i, info in enumerate(dumped["tree_info"]):
        tree = Tree(i % n_class)
        _lgb_walk(info["tree_structure"], tree)
        trees.append(tree)
    margin = tree_ensemble(g, x, trees, n_class, np.float64, [0.0] * n_class)
    scale = 1.0
    match = re.search(r"sigmoid:([0-9.eE+-]+)", str(dumped.get("objective", "")))
    if match:
        scale = float(match.group(1))
    return to_probabilities(g, margin, task, scale)


def _lgb_walk(node: dict[str, Any], tree: Tree) -> tuple[str, int]:
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


def _xgboost(g: Graph, family: Any, x: str, task: str) -> str:
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
        tree = Tree(int(target))
        _xgb_tree(tree_json, tree)
        trees.append(tree)
    margin = tree_ensemble(g, x, trees, n_class, np.float32, [float(np.float32(b)) for b in base])
    return to_probabilities(g, margin, task)


def _xgb_tree(data: dict[str, Any], tree: Tree) -> None:
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


def _catboost(g: Graph, family: Any, x: str, task: str) -> str:
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
            tree = Tree(target)
            _cb_tree(data["splits"], values[:, target], tree, nan_is_greater)
            trees.append(tree)
    # CatBoost compares features as float32: round them so, then compare in double
    x32 = g.op("Cast", g.op("Cast", x, to=TensorProto.FLOAT), to=TensorProto.DOUBLE)
    margin = tree_ensemble(g, x32, trees, n_targets, np.float64, [0.0] * n_targets)
    if float(scale) != 1.0:
        margin = g.op("Mul", margin, g.const(float(scale), "scale"))
    if any(base):
        margin = g.op("Add", margin, g.const(np.array(base).reshape(1, -1), "bias"))
    return to_probabilities(g, margin, task)


def _cb_tree(
    splits: list[dict[str, Any]], leaves: np.ndarray, tree: Tree, nan_is_greater: dict[int, bool]
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


def _linear(g: Graph, family: Any, x: str, task: str) -> str:
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
    return to_probabilities(g, margin, task)


def _blend(g: Graph, blend: Any, raws: list[str], task: str) -> str:
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
