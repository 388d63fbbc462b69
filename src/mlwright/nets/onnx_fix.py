"""Repairs to exported ONNX models, so that onnxruntime runs what the exporters write.

jax2onnx (used by ``train-jax`` and by Keras on JAX) writes a max pooling over NHWC data as a
``MaxPool`` over a 6-dimensional tensor with a 4-dimensional kernel ``[1, h, w, 1]``;
onnxruntime refuses pooling kernels of more than 3 dimensions ("Unsupported pooling size").
:func:`fix_pooling` rewrites each such node into the same pooling on the spatial dimensions
alone: move the two dimensions the kernel does not pool to the front, pool, move them back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

MAX_SPATIAL = 3  # onnxruntime pools over at most 3 dimensions


def opset(path: Path) -> int | None:
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return next((int(o.version) for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)


def _attributes(node: Any) -> dict[str, Any]:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _rewrite(node: Any, index: int) -> list[Any] | None:
    """The nodes that replace one pooling node whose kernel covers its input's last ``r``
    dimensions after two leading 1s, or None when it needs no repair (or cannot be repaired)."""
    import onnx

    attrs = _attributes(node)
    kernel = list(attrs.get("kernel_shape", []))
    r = len(kernel)
    if r <= MAX_SPATIAL or len(node.output) != 1:
        return None
    strides = list(attrs.get("strides", [1] * r))
    dilations = list(attrs.get("dilations", [1] * r))
    pads = list(attrs.get("pads", [0] * 2 * r))
    if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        return None
    still = [
        i
        for i in range(r)
        if kernel[i] == 1 and strides[i] == 1 and pads[i] == 0 and pads[r + i] == 0
    ]
    if len(still) > 2:  # a pooled dimension of size 1: the kernel's ends are N and C (NHWC)
        still = [0, r - 1] if {0, r - 1} <= set(still) else still[:2]
    if len(still) != 2 or r - 2 > MAX_SPATIAL:
        return None
    pooled = [i for i in range(r) if i not in still]
    perm = still + pooled  # the kernel's dimensions: not pooled first (N, C), then pooled
    inverse = [perm.index(i) for i in range(r)]
    name = f"mlwright_pool_fix_{index}"
    kept = {
        k: v for k, v in attrs.items() if k not in ("kernel_shape", "strides", "dilations", "pads")
    }
    return [
        onnx.helper.make_node(
            "Squeeze", [node.input[0], f"{name}_axes"], [f"{name}_in"], name=f"{name}_squeeze"
        ),
        onnx.helper.make_node(
            "Transpose", [f"{name}_in"], [f"{name}_nc"], perm=perm, name=f"{name}_to"
        ),
        onnx.helper.make_node(
            node.op_type,
            [f"{name}_nc"],
            [f"{name}_pooled"],
            kernel_shape=[kernel[i] for i in pooled],
            strides=[strides[i] for i in pooled],
            dilations=[dilations[i] for i in pooled],
            pads=[pads[i] for i in pooled] + [pads[r + i] for i in pooled],
            name=f"{name}_pool",
            **kept,
        ),
        onnx.helper.make_node(
            "Transpose", [f"{name}_pooled"], [f"{name}_back"], perm=inverse, name=f"{name}_from"
        ),
        onnx.helper.make_node(
            "Unsqueeze", [f"{name}_back", f"{name}_axes"], [node.output[0]], name=f"{name}_unsq"
        ),
    ]


def fix_pooling(path: Path) -> int:
    """Rewrite ``path``'s pooling nodes onnxruntime cannot run; how many were rewritten. Only
    nodes whose input has two leading dimensions of 1 more than the kernel (jax2onnx's form) are
    touched."""
    import onnx

    model = onnx.load(str(path))
    graph = model.graph
    shapes = _ranks(model)
    replaced = 0
    nodes: list[Any] = []
    for node in graph.node:
        new = None
        if node.op_type in ("MaxPool", "AveragePool", "LpPool"):
            kernel = _attributes(node).get("kernel_shape", [])
            if shapes.get(node.input[0]) == len(kernel) + 2:
                new = _rewrite(node, replaced)
        if new is None:
            nodes.append(node)
            continue
        axes = onnx.helper.make_tensor(f"mlwright_pool_fix_{replaced}_axes", onnx.TensorProto.INT64,
                                       [2], [0, 1])  # fmt: skip
        graph.initializer.append(axes)
        nodes.extend(new)
        replaced += 1
    if replaced:
        del graph.node[:]
        graph.node.extend(nodes)
        onnx.checker.check_model(model)
        onnx.save(model, str(path))
    return replaced


def _ranks(model: Any) -> dict[str, int]:
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    values = [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]
    return {
        v.name: len(v.type.tensor_type.shape.dim)
        for v in values
        if v.type.HasField("tensor_type") and v.type.tensor_type.HasField("shape")
    }


__all__ = ["fix_pooling", "opset"]
