"""What a ``torch.export`` program's graph (``models/model.json`` in the archive) may hold.

torch turns several strings of that document into code when it loads or runs the program:
node targets are looked up by name from ``torch`` and called; symbolic shape expressions go
through ``sympy.sympify``, which evaluates Python; ``guards_code``, the forward signature's
argument names and the input spec's dictionary keys become Python source that is executed when
``.module()`` builds the callable; custom objects and non-tensor inputs make torch import a class
by name or write a value into that source. Every such string is held here to an explicit
allow-list drawn from what ``torch.export`` writes for the layers mlwright's users train
(linear, convolution, recurrent, attention, embedding, normalisation, dropout in eval, dynamic
batch and length dimensions). Anything else is refused, before torch reads the document.
"""

from __future__ import annotations

import ast
import json
import keyword
import re
from collections.abc import Callable, Iterator
from typing import Any


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# ATen operators (any overload; "name_" is the in-place form of an allowed name): pure tensor
# arithmetic, shapes and the standard layers, high level (what torch.export writes) and decomposed
# (what run_decompositions writes). Nothing that reads files, allocates uninitialised memory or
# touches storages.
ATEN_OPS = _words(
    """
    linear addmm mm bmm matmul baddbmm addmv mv dot outer einsum
    conv1d conv2d conv3d convolution _convolution conv_transpose1d conv_transpose2d
    conv_transpose3d embedding embedding_bag _embedding_bag
    gru lstm rnn_tanh rnn_relu gru_cell lstm_cell rnn_tanh_cell rnn_relu_cell
    layer_norm native_layer_norm group_norm native_group_norm batch_norm native_batch_norm
    _native_batch_norm_legit_no_training _native_batch_norm_legit_functional instance_norm
    rms_norm _fused_rms_norm dropout native_dropout feature_dropout alpha_dropout
    scaled_dot_product_attention _scaled_dot_product_flash_attention_for_cpu
    max_pool1d max_pool2d max_pool3d max_pool2d_with_indices max_pool3d_with_indices
    avg_pool1d avg_pool2d avg_pool3d adaptive_avg_pool1d adaptive_avg_pool2d adaptive_avg_pool3d
    _adaptive_avg_pool2d _adaptive_avg_pool3d adaptive_max_pool1d adaptive_max_pool2d
    upsample_nearest1d upsample_nearest2d upsample_bilinear2d upsample_linear1d pixel_shuffle
    pad constant_pad_nd reflection_pad1d reflection_pad2d replication_pad1d replication_pad2d
    relu relu6 leaky_relu gelu silu elu selu celu mish softplus hardtanh hardswish hardsigmoid
    sigmoid tanh log_sigmoid prelu glu threshold softmax log_softmax _softmax _log_softmax
    add sub rsub mul div floor_divide remainder fmod pow neg abs exp exp2 expm1 log log2 log10
    log1p sqrt rsqrt reciprocal sin cos tan sign floor ceil round trunc frac erf square atan2
    clamp clamp_min clamp_max clip maximum minimum where lerp addcmul addcdiv masked_fill
    logical_and logical_or logical_not logical_xor bitwise_and bitwise_or bitwise_not
    bitwise_xor eq ne lt le gt ge isnan isinf isfinite nan_to_num
    sum mean amax amin max min argmax argmin prod var std var_mean std_mean norm
    linalg_vector_norm cumsum cumprod all any topk sort argsort logsumexp
    view reshape _unsafe_view flatten unflatten squeeze unsqueeze permute transpose t expand
    expand_as contiguous clone cat stack split split_with_sizes chunk unbind narrow select
    slice index index_select gather scatter scatter_add index_put repeat repeat_interleave
    tile flip roll movedim alias detach lift_fresh_copy _to_copy to type_as one_hot tril triu
    diagonal masked_select copy fill zero zeros ones full arange linspace zeros_like ones_like
    full_like new_zeros new_ones new_full scalar_tensor item _local_scalar_dense
    sym_size sym_numel sym_stride sym_storage_offset _assert_tensor_metadata _assert_scalar
    _assert_async sym_constrain_range sym_constrain_range_for_size
    """
)
_OPERATOR = _words(
    "eq ne le ge lt gt neg pos mul add sub floordiv mod pow truediv and_ or_ lshift rshift"
)
# the other targets torch.export writes: arithmetic on symbolic sizes (torch's own list of
# symbolic operators) and the higher-order operators for grad and autocast regions and torch.cond
PYTHON_TARGETS = frozenset(
    {f"_operator.{name}" for name in _OPERATOR}
    | {f"torch.sym_{name}" for name in ("not", "int", "float", "ite", "max", "min", "sqrt")}
    | {"math.trunc"}
    | {f"torch.ops.higher_order.{n}" for n in ("wrap_with_set_grad_enabled", "wrap_with_autocast")}
    | {"torch.ops.higher_order.cond"}
)
_ATEN = re.compile(r"torch\.ops\.aten\.([a-z0-9_]+)\.([A-Za-z0-9_]+)")
# sympy: the constructors torch's serializer writes (sympy.srepr of shape expressions) and
# torch's own shape functions; every argument is an integer, another such call, or a symbol's name
SYMPY_CALLS = _words(
    """
    Symbol Integer Rational Add Mul Pow Min Max Mod Abs Eq Ne Lt Le Gt Ge And Or Not
    StrictLessThan LessThan StrictGreaterThan GreaterThan Equality Unequality
    FloorDiv CeilDiv CleanDiv PythonMod ModularIndexing Where IntTrueDiv PowByNatural
    FloorToInt CeilToInt TruncToInt RoundToInt Identity
    """
)
SYMPY_FLAGS = frozenset({"positive", "negative", "nonnegative", "integer", "real", "finite"})
SYMBOL = re.compile(r"[a-z]{1,8}[0-9]{1,9}")  # s0, s77, u3: what the shape environment names
# a parameter's, buffer's or submodule's dotted path (0.weight, encoder.layers.1.norm.bias):
# torch writes it into the module's source, between quotes where a part is not an identifier
ATTRIBUTE_PATH = re.compile(r"[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*")
PATH_FIELDS = frozenset(
    {"parameter_name", "buffer_name", "tensor_constant_name", "user_input_name", "fqn"}
)
# node metadata kept as text (from_node, which run_decompositions adds, is parsed as plain JSON
# records); torch resolves the others (source_fn_stack) by name or parses them (custom)
METADATA = frozenset({"stack_trace", "nn_module_stack", "torch_fn", "from_node"})
# the graph's maps from a value's name to its description
NAMED_MAPS = frozenset(
    {"tensor_values", "sym_int_values", "sym_bool_values", "sym_float_values", "custom_obj_values"}
)
INPUT_KINDS = frozenset({"user_input", "parameter", "buffer", "tensor_constant"})
PYTREE_TYPES = frozenset({None, "builtins.tuple", "builtins.list", "builtins.dict"})
DOCUMENT_KEYS = frozenset(
    {
        "graph_module",
        "opset_version",
        "range_constraints",
        "schema_version",
        "verifiers",
        "torch_version",
        "guards_code",
    }
)
GRAPH_MODULE_KEYS = frozenset(
    {"graph", "signature", "module_call_graph", "metadata", "treespec_namedtuple_fields"}
)


class Refused(Exception):
    """What in the program is refused and why (the loader adds the package and the fix)."""


def check_document(document: Any) -> None:
    """Refuse the exported program's document unless every string torch resolves, evaluates or
    executes is one mlwright's exports write."""
    if not isinstance(document, dict) or not isinstance(document.get("graph_module"), dict):
        raise Refused("models/model.json is not an exported program")
    _only_keys(document, DOCUMENT_KEYS, "the program")
    _only_keys(document["graph_module"], GRAPH_MODULE_KEYS, "the program's graph module")
    if document["graph_module"].get("treespec_namedtuple_fields"):
        raise Refused("it defines named tuple types (torch builds them from source text)")
    _check_ranges(document.get("range_constraints", {}))
    for guard in _strings(document.get("guards_code", []), "guards_code"):
        check_guard(guard)
    _check_signature(document["graph_module"])
    for key, value in _walk(document["graph_module"]):
        _check_entry(key, value)


def _only_keys(value: dict[str, Any], allowed: frozenset[str], what: str) -> None:
    extra = sorted(set(value) - allowed)
    if extra:
        raise Refused(f"{what} has fields torch.export does not write here: {extra}")


def _strings(value: Any, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise Refused(f"{what} is not a list of strings")
    return value


def _walk(value: Any) -> Iterator[tuple[str, Any]]:
    """Every (field, value) pair of every object in the document, however deeply nested; the
    keys of maps from a value's name (an input named "target") are names, not fields."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, inner in item.items():
                yield key, inner
                named = key in NAMED_MAPS and isinstance(inner, dict)
                stack.extend(inner.values() if named else [inner])
        elif isinstance(item, list):
            stack.extend(item)


def _check_entry(key: str, value: Any) -> None:
    """One field wherever it occurs (subgraphs of higher-order operators included)."""
    if key in ("target", "as_operator"):
        check_target(value)
    elif key == "expr_str":
        check_sympy(value)
    elif key in ("as_custom_obj", "custom_obj") or (key == "custom_obj_values" and value):
        raise Refused(
            f"it holds a custom object{_class_of(value)} (torch imports its class by name and "
            "unpickles it)"
        )
    elif key == "metadata":
        _check_metadata(value)
    elif key in ("in_spec", "out_spec"):
        check_pytree_spec(value, key)
    elif key == "name" and value != "":
        _identifier(value, "a name in the graph")
    elif key in PATH_FIELDS and value != "":
        check_attribute_path(value, f"a {key.replace('_', ' ')}")
    elif key == "forward_arg_names" and value is not None:
        for name in _strings(value, "forward_arg_names"):
            _identifier(name, "a forward argument name")


def _class_of(value: Any) -> str:
    """`` of class 'x.Y'`` for a custom object argument that names its class."""
    found = [inner for key, inner in _walk(value) if key == "class_fqn"]
    return f" of class {found[0]!r}" if found else ""


def check_target(target: Any) -> None:
    """A node's operator: an allowed ATen operator or one of :data:`PYTHON_TARGETS`."""
    if not isinstance(target, str):
        raise Refused(f"a node target is {type(target).__name__}, not an operator name")
    match = _ATEN.fullmatch(target)
    name = match.group(1) if match else None
    if target in PYTHON_TARGETS or (name is not None and _aten_allowed(name)):
        return
    raise Refused(
        f"a node calls {target!r}, which is not an operator mlwright's exports use (torch looks "
        "it up by name and calls it when the program runs)"
    )


def _aten_allowed(name: str) -> bool:
    return name in ATEN_OPS or (name.endswith("_") and name[:-1] in ATEN_OPS)


def check_sympy(text: Any) -> None:
    """A shape expression: only :data:`SYMPY_CALLS` of integers, flags and symbol names
    (sympy.sympify evaluates the text as Python)."""
    tree = _parse(text, "a shape expression")
    if not isinstance(tree.body, ast.Call):
        raise Refused(
            f"the shape expression {_short(text)} is not a sympy constructor call (sympy "
            "evaluates it as Python)"
        )
    _within_depth(lambda: _sympy_call(tree.body, text), f"the shape expression {_short(text)}")


def _sympy_call(node: ast.expr, text: str) -> None:
    """A call of a sympy constructor whose arguments are integers, nested calls, a Symbol's
    name and its assumptions (True/False), and nothing else."""
    bad = f"the shape expression {_short(text)}"
    if not (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in SYMPY_CALLS
    ):
        raise Refused(
            f"{bad} calls something that is not a sympy constructor (sympy evaluates it as Python)"
        )
    symbol = node.func.id == "Symbol"
    for i, arg in enumerate(node.args):
        if isinstance(arg, ast.Call):
            _sympy_call(arg, text)
        elif symbol and i == 0:
            if not (
                isinstance(arg, ast.Constant)
                and isinstance(arg.value, str)
                and SYMBOL.fullmatch(arg.value)
            ):
                raise Refused(f"{bad} names a symbol that is not a plain name like 's0'")
        elif not _is_integer(arg):
            raise Refused(
                f"{bad} has an argument that is neither an integer nor a sympy constructor"
            )
    for flag in node.keywords:
        value = flag.value
        if not (
            symbol
            and flag.arg in SYMPY_FLAGS
            and isinstance(value, ast.Constant)
            and isinstance(value.value, bool)
        ):
            raise Refused(f"{bad} passes {flag.arg}=..., which is not a symbol's assumption")


def check_guard(text: Any) -> None:
    """A shape guard: comparisons and integer arithmetic over ``L['input'].size()[i]`` (the
    text becomes Python source that ``.module()`` executes)."""
    tree = _parse(text, "a guard")
    _within_depth(lambda: _guard_term(tree.body, text), f"the guard {_short(text)}")


# comparisons and integer arithmetic; no power (a guard must stay cheap to evaluate)
_GUARD_OPS = tuple(
    getattr(ast, name)
    for name in sorted(_words("Eq NotEq Lt LtE Gt GtE Add Sub Mult FloorDiv Mod USub And Or Not"))
)


def _guard_term(node: ast.expr, text: str) -> None:
    if isinstance(node, ast.Compare) and all(isinstance(op, _GUARD_OPS) for op in node.ops):
        for part in (node.left, *node.comparators):
            _guard_term(part, text)
    elif isinstance(node, ast.BinOp) and isinstance(node.op, _GUARD_OPS):
        _guard_term(node.left, text)
        _guard_term(node.right, text)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, _GUARD_OPS):
        _guard_term(node.operand, text)
    elif isinstance(node, ast.BoolOp) and isinstance(node.op, _GUARD_OPS):
        for part in node.values:
            _guard_term(part, text)
    elif not (_is_integer(node) or _is_input_size(node)):
        raise Refused(
            f"the guard {_short(text)} is not a comparison of input sizes (torch "
            "executes guards as Python)"
        )


def _is_input_size(node: ast.expr) -> bool:
    """``L['name'].size()[i]`` (or ``.stride()[i]``): a dimension of a named input."""
    if not (isinstance(node, ast.Subscript) and _is_integer(node.slice)):
        return False
    call = node.value
    if not (isinstance(call, ast.Call) and not call.args and not call.keywords):
        return False
    method = call.func
    if not (isinstance(method, ast.Attribute) and method.attr in ("size", "stride")):
        return False
    source = method.value
    return (
        isinstance(source, ast.Subscript)
        and isinstance(source.value, ast.Name)
        and source.value.id == "L"
        and isinstance(source.slice, ast.Constant)
        and isinstance(source.slice.value, str)
        and source.slice.value.isidentifier()
    )


def _is_integer(node: ast.expr) -> bool:
    """An integer literal, negative ones included (``-1`` parses as a minus and a constant)."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        node = node.operand
    return isinstance(node, ast.Constant) and type(node.value) is int


def _within_depth(check: Callable[[], None], what: str) -> None:
    try:
        check()
    except RecursionError:
        raise Refused(f"{what} is nested too deeply") from None


def check_pytree_spec(text: Any, what: str) -> None:
    """The input or output structure: tuples, lists and dicts whose keys are identifiers (the
    keys are written into the Python source of the module's forward)."""
    tree = _json(text, f"the program's {what}")
    stack = [tree[1] if isinstance(tree, list) and len(tree) == 2 else None]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict) or node.get("type") not in PYTREE_TYPES:
            kind = node.get("type") if isinstance(node, dict) else node
            raise Refused(
                f"the program's {what} holds the type {kind!r}; only tuples, lists "
                "and dicts of tensors are accepted"
            )
        if node["type"] == "builtins.dict":
            keys = _json(node.get("context"), f"the program's {what}")
            for key in keys if isinstance(keys, list) else [keys]:
                _identifier(key, f"a key of the program's {what}")
        children = node.get("children_spec") or []
        stack.extend(children if isinstance(children, list) else [children])


def _check_signature(graph_module: dict[str, Any]) -> None:
    """Inputs are tensors: a non-tensor input's value is written into the guards' source."""
    graph = _mapping(graph_module.get("graph"), "the program's graph")
    for arg in _list(graph.get("inputs"), "the graph's inputs"):
        if not (isinstance(arg, dict) and list(arg) == ["as_tensor"]):
            kind = list(arg) if isinstance(arg, dict) else arg
            raise Refused(f"the program takes a {kind} input; only tensors are accepted")
    signature = _mapping(graph_module.get("signature"), "the program's signature")
    for spec in _list(signature.get("input_specs"), "the signature's inputs"):
        kind = next(iter(spec), None) if isinstance(spec, dict) else None
        if kind not in INPUT_KINDS:
            raise Refused(f"the program has a {kind} input; accepted: {sorted(INPUT_KINDS)}")


def _check_ranges(ranges: Any) -> None:
    if not isinstance(ranges, dict):
        raise Refused("range_constraints is not a mapping")
    for name, bounds in ranges.items():
        if not SYMBOL.fullmatch(name):
            raise Refused(f"range_constraints names the symbol {name!r}, not a plain symbol")
        values = list(bounds.values()) if isinstance(bounds, dict) else [bounds]
        if not all(v is None or type(v) is int for v in values):
            raise Refused(f"the range of {name!r} is not a pair of integers")


def _check_metadata(metadata: Any) -> None:
    """Node metadata: the plain-text fields only, with no carriage return (torch writes parts of
    it into generated source as comments)."""
    if not isinstance(metadata, dict):
        raise Refused("a node's metadata is not a mapping")
    for key, value in metadata.items():
        if key not in METADATA:
            raise Refused(
                f"a node has the metadata {key!r} (torch resolves or parses it); "
                f"accepted: {sorted(METADATA)}"
            )
        if not isinstance(value, str) or any(c in value for c in "\r\x00\x0b\x0c"):
            raise Refused(f"a node's {key} metadata holds control characters")


def check_attribute_path(path: Any, what: str) -> None:
    """A dotted attribute path: parts of letters, digits and underscores, nothing to quote."""
    if not (isinstance(path, str) and ATTRIBUTE_PATH.fullmatch(path)):
        raise Refused(
            f"{what} is {path!r}, not a plain dotted name (torch writes it into the module's "
            "source)"
        )


def _identifier(name: Any, what: str) -> None:
    if not (isinstance(name, str) and name.isidentifier() and not keyword.iskeyword(name)):
        raise Refused(
            f"{what} is {name!r}, not a Python identifier (torch writes it into the "
            "module's source)"
        )


def _json(text: Any, what: str) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError, RecursionError):
        raise Refused(f"{what} is not valid JSON") from None


def _mapping(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Refused(f"{what} is not a mapping")
    return value


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise Refused(f"{what} is not a list")
    return value


def _parse(text: Any, what: str) -> ast.Expression:
    if not isinstance(text, str):
        raise Refused(f"{what} is {type(text).__name__}, not text")
    try:
        return ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise Refused(f"{what} {_short(text)} is not an expression") from None


def _short(text: str) -> str:
    return repr(text if len(text) <= 120 else text[:117] + "...")


__all__ = [
    "ATEN_OPS",
    "PYTHON_TARGETS",
    "SYMPY_CALLS",
    "Refused",
    "check_attribute_path",
    "check_document",
    "check_guard",
    "check_pytree_spec",
    "check_sympy",
    "check_target",
]
