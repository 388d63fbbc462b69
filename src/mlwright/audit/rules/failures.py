"""MLW107 silent-failure: errors swallowed in the data pipeline."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from mlwright.audit.core import Source, callee, keyword, rule

BROAD = {"Exception", "BaseException"}
CHECKS = {
    "isna",
    "isnull",
    "notna",
    "notnull",
    "dropna",
    "fillna",
    "hasnans",
    "interpolate",
    "isfinite",
    "isnan",
    "isnat",
}


@rule(
    "MLW107",
    "silent-failure",
    "medium",
    "errors swallowed: bare except, except Exception: pass, errors='coerce' unchecked",
)
def silent(src: Source) -> Iterator[tuple[ast.AST, str, str]]:
    for node in sorted(src.of(ast.ExceptHandler), key=lambda n: n.lineno):
        if node.type is None:
            yield (
                node,
                "a bare `except:` catches every error (KeyboardInterrupt and "
                "SystemExit too) and hides what went wrong",
                "catch the specific exceptions you expect, and log or re-raise the rest",
            )
        elif _broad(node.type) and _silent_body(node.body):
            yield (
                node,
                "`except Exception` whose body only passes or continues: a failing "
                "file, row or batch disappears without a trace, and the data is silently "
                "smaller or different",
                "catch specific exceptions, log what was skipped and count it; fail when "
                "too much is skipped",
            )
    for call in src.calls:
        errors = keyword(call, "errors")
        if errors is None or not isinstance(errors.value, ast.Constant):
            continue
        if errors.value.value not in ("coerce", "ignore"):
            continue
        if _checked_after(src, call):
            continue
        mode = errors.value.value
        effect = (
            "turns unparseable values into NaN/NaT"
            if mode == "coerce"
            else "leaves unparseable values as they are"
        )
        yield (
            call,
            f"errors={mode!r} {effect}, and nothing after it checks how many: bad "
            "input passes silently",
            "count what failed (e.g. `bad = out.isna() & raw.notna()`) and stop or warn when "
            "it is more than a few",
        )


def _broad(node: ast.AST) -> bool:
    if isinstance(node, ast.Tuple):
        return any(_broad(e) for e in node.elts)
    return (isinstance(node, ast.Name) and node.id in BROAD) or (
        isinstance(node, ast.Attribute) and node.attr in BROAD
    )


def _silent_body(body: list[ast.stmt]) -> bool:
    return all(
        isinstance(s, (ast.Pass, ast.Continue))
        or (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))
        for s in body
    )


def _checked_after(src: Source, call: ast.Call) -> bool:
    """Whether the result's variable is checked for missing values later in the same scope."""
    node: ast.AST = call
    parent = src.parents.get(node)
    while isinstance(parent, (ast.Attribute, ast.Call, ast.Subscript)):  # a method chain
        if _is_check(parent):  # .fillna(...) on the result, np.isfinite(result), ...
            return True
        node, parent = parent, src.parents.get(parent)
    targets: set[str] = set()
    if isinstance(parent, (ast.Assign, ast.AnnAssign)):
        for target in parent.targets if isinstance(parent, ast.Assign) else [parent.target]:
            root = target
            while isinstance(root, (ast.Subscript, ast.Attribute)):
                root = root.value
            if isinstance(root, ast.Name):
                targets.add(root.id)
    if not targets:
        return False
    scope = src.scope_of(call)
    for candidate in src.of(ast.Assert, ast.Call):
        if candidate.lineno <= call.lineno:
            continue
        if not (isinstance(candidate, ast.Assert) or _is_check(candidate)):
            continue
        if scope is not src.tree and not any(a is scope for a in src.ancestors(candidate)):
            continue
        used = {n.id for n in ast.walk(candidate) if isinstance(n, ast.Name)}
        if used & targets:
            return True
    return False


def _is_check(node: ast.AST) -> bool:
    """A call that looks at missing values: ``x.isna()``, ``np.isfinite(x)``, ``.fillna``..."""
    return isinstance(node, ast.Call) and callee(node) in CHECKS


__all__ = ["silent"]
