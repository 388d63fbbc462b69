"""The deployment gate: a model serves only after it proves itself on this machine.

Golden labels must match exactly and numbers within 1e-6, both through ``Model.predict`` and
through the server's own request path; when the package records a latency budget, the p99 of
200 warm single-row calls through the serving path must be within it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlwright.package.golden import check_golden
from mlwright.package.latency import serving_outputs, single_row_p99_ms
from mlwright.package.model import Model


@dataclass(frozen=True)
class GateResult:
    ok: bool
    reason: str
    details: dict[str, Any] = field(default_factory=dict)


def run_gate(model: Model) -> GateResult:
    mismatches = check_golden(model) or check_golden(
        model, predict=lambda records: serving_outputs(model, records)
    )
    if mismatches:
        shown = "; ".join(mismatches[:3])
        return GateResult(
            False,
            f"golden examples do not reproduce: {shown}",
            {"golden_mismatches": len(mismatches)},
        )
    details: dict[str, Any] = {"golden_rows": len(model.golden["inputs"]) if model.golden else 0}
    budget = (model.recipe.get("options") or {}).get("latency_budget_ms")
    if budget is not None:
        p99 = single_row_p99_ms(model)
        details.update(latency_p99_ms=round(p99, 3), latency_budget_ms=budget)
        if p99 > float(budget):
            return GateResult(
                False,
                f"single-row p99 latency {p99:.2f} ms is over the budget of {budget:g} ms",
                details,
            )
    return GateResult(
        True,
        "golden examples reproduce"
        + (
            f"; p99 {details['latency_p99_ms']:.2f} ms within {budget:g} ms"
            if budget is not None
            else ""
        ),
        details,
    )
