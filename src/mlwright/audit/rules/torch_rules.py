"""MLW105 rnn-without-clipping and MLW109 inference-without-eval (PyTorch)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from mlwright.audit.core import Source, callee, rule
from mlwright.audit.rules.common import last, method_calls

RECURRENT = {
    "LSTM",
    "GRU",
    "RNN",
    "LSTMCell",
    "GRUCell",
    "RNNCell",
    "Transformer",
    "TransformerEncoder",
    "TransformerDecoder",
    "TransformerEncoderLayer",
    "TransformerDecoderLayer",
    "MultiheadAttention",
}
CLIPPING = ("clip_grad_norm_", "clip_grad_value_", "clip_grad_norm", "clip_gradients", "clip_grad")
NO_GRAD = (
    "torch.no_grad",
    "torch.inference_mode",
    "torch.set_grad_enabled",
    "torch.autograd.no_grad",
    "torch.enable_grad",
)
INFERENCE_SCOPE = re.compile(
    r"^(predict|infer|inference|evaluate|eval|validate|validation|"
    r"test|score|serve|generate)",
    re.I,
)
MODEL_NAME = re.compile(
    r"^(model|net|network|classifier|regressor|encoder|module)$|"
    r"(_model|_net)$",
    re.I,
)


@rule(
    "MLW105",
    "rnn-without-clipping",
    "medium",
    "recurrent or transformer layers trained without gradient clipping",
)
def rnn_without_clipping(src: Source) -> Iterator[tuple[ast.AST, str, str]]:
    layers = list(src.calls_to(lambda n: n.startswith("torch.nn.") and last(n) in RECURRENT))
    if not layers:
        return
    backward = method_calls(src, "backward")
    clipping = src.called(*CLIPPING) or any(
        k.arg in ("gradient_clip_val", "clip_grad_norm", "max_grad_norm")
        for c in src.calls
        for k in c.keywords
    )
    if not backward or clipping:
        return
    kinds = sorted({last(name) for _, name in layers})
    yield (
        backward[0],
        f"the model has {', '.join(kinds)} layers (line {layers[0][0].lineno}) "
        "and its gradients are not clipped: recurrent and attention layers' gradients "
        "explode, and one bad batch turns the weights into NaN",
        "call torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm) between "
        "backward() and optimizer.step() (max_norm from the config, 1.0 is a good start)",
    )


@rule(
    "MLW109",
    "inference-without-eval",
    "medium",
    "a PyTorch model used for inference without eval() or no_grad()",
)
def inference_without_eval(src: Source) -> Iterator[tuple[ast.AST, str, str]]:
    if "torch" not in src.modules:
        return
    evaluated = bool(method_calls(src, "eval")) or _calls_train_false(src)
    loaded_at = [c.lineno for c in method_calls(src, "load_state_dict")]
    loaded_at += [c.lineno for c, _ in src.calls_to(lambda n: n == "torch.load")]
    seen_scopes: set[int] = set()
    # functions that train (a backward pass, an optimizer step, train mode) are not inference
    training = {id(src.scope_of(c)) for c in method_calls(src, "backward", "step", "train")}
    training.discard(id(src.tree))
    for call in src.calls:
        if not _is_model_call(call):
            continue
        scope = src.scope_of(call)
        if id(scope) in seen_scopes or id(scope) in training:
            continue
        if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef)):
            inference = bool(INFERENCE_SCOPE.match(scope.name))
        else:  # module level: after a model was loaded
            inference = any(line < call.lineno for line in loaded_at)
        if not inference:
            continue
        missing = []
        if not evaluated:
            missing.append("eval()")
        if not _without_grad(src, call, scope):
            missing.append("no_grad()")
        if missing:
            seen_scopes.add(id(scope))
            yield (
                call,
                f"the model runs inference without {' and '.join(missing)}: "
                + ("dropout and batch norm still behave as in training; " if not evaluated else "")
                + (
                    "autograd keeps every activation (memory, speed)"
                    if "no_grad()" in missing
                    else "predictions are not deterministic"
                ),
                "call model.eval() once and run inference under `with torch.no_grad():` "
                "(or torch.inference_mode())",
            )


def _is_model_call(call: ast.Call) -> bool:
    name = callee(call)
    if name is None or not MODEL_NAME.search(name):
        return False
    return not name.lower().startswith(("make_", "build_", "create_", "get_", "load_", "init_"))


def _calls_train_false(src: Source) -> bool:
    return any(
        isinstance(c.args[0], ast.Constant) and c.args[0].value is False
        for c in method_calls(src, "train")
        if c.args
    )


def _without_grad(src: Source, call: ast.Call, scope: ast.AST) -> bool:
    for parent in src.ancestors(call):
        if isinstance(parent, (ast.With, ast.AsyncWith)):
            for item in parent.items:
                ctx = item.context_expr
                name = src.qualname(ctx.func if isinstance(ctx, ast.Call) else ctx)
                if name in NO_GRAD:
                    return True
        if parent is scope:
            break
    if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef)):
        for decorator in scope.decorator_list:
            target = decorator.func if isinstance(decorator, ast.Call) else decorator
            if src.qualname(target) in NO_GRAD:
                return True
    return False


__all__ = ["inference_without_eval", "rnn_without_clipping"]
