"""The parts every ONNX graph of a tabular model is built from: a graph under construction
(nodes and constants with unique names), trees as ``ai.onnx.ml.TreeEnsemble`` nodes (opset 5),
and margins turned into probabilities."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from mlwright.errors import MlwrightError

OPSET, ML_OPSET, IR_VERSION = 21, 5, 10
LEQ, LT, MEMBER = 0, 1, 6  # TreeEnsemble node modes


class ExportError(MlwrightError):
    """A model (or a part of it) has no export to the requested format."""


class Graph:
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


def to_probabilities(g: Graph, margin: str, task: str, scale: float = 1.0) -> str:
    if task == "regression":
        return margin
    if task == "binary":
        scaled = g.op("Mul", margin, g.const(scale, "sigmoid"))
        p = g.op("Sigmoid", scaled)
        return g.op("Concat", g.op("Sub", g.const(1.0, "one"), p), p, axis=1)
    return g.op("Softmax", margin, axis=1)


def tree_ensemble(
    g: Graph, x: str, trees: list[Tree], n_targets: int, dtype: Any, base: list[float]
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


class Tree:
    def __init__(self, target: int) -> None:
        self.target = target
        self.nodes: list[dict[str, Any]] = []
        self.leaves: list[float] = []


__all__ = [
    "IR_VERSION", "LEQ", "LT", "MEMBER", "ML_OPSET", "OPSET", "ExportError", "Graph", "Tree",
    "to_probabilities", "tree_ensemble",
]  # fmt: skip
