"""The analysis of an experiment from the serving store: predictions joined to their feedback.

Each prediction with feedback becomes one outcome of its variant: for a ``label``, whether the
predicted label was right (accuracy) and the log loss of the probability given to the true
label; for a ``value``, the squared error (its mean is the MSE; RMSE is its square root); for a
``reward``, the reward. Outcomes are ordered by when their feedback arrived, which is the order
the always-valid test sees them in. The store joins predictions to their feedback
(:mod:`mlwright.store.feedback`).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np

from mlwright.experiment.config import ExperimentConfig
from mlwright.experiment.stats import compare, sample_ratio_mismatch, verdict
from mlwright.store.feedback import feedback_of_variants, outcomes
from mlwright.store.predictions import request_counts, shadow_pairs

# metric name, greater is better, how it reads in a verdict
METRICS = {
    "accuracy": (True, "accuracy"),
    "log_loss": (False, "log loss"),
    "squared_error": (False, "squared error (MSE)"),
    "reward": (True, "reward"),
}
PRIMARY = {"label": "accuracy", "value": "squared_error", "reward": "reward"}


Outcome = tuple[float, float, float | None]  # feedback time, outcome, covariate


def load_outcomes(
    store: Path,
    variants: list[str],
    since: float | None = None,
    models: list[str] | None = None,
) -> dict[str, dict[str, list[Outcome]]]:
    """metric → variant → [(feedback time, outcome, covariate), ...] for predictions with
    feedback (of ``models`` only, when given)."""
    out: dict[str, dict[str, list[Outcome]]] = {}
    found = feedback_of_variants(store, variants, since, models)
    for variant, output, kind, value, ts, covariate in found:
        for metric, outcome in outcomes(output, kind, value):
            out.setdefault(metric, {}).setdefault(variant, []).append((ts, outcome, covariate))
    return out


def analyze(
    store: Path,
    config: ExperimentConfig,
    weights: dict[str, float],
    *,
    since: float | None = None,
) -> dict[str, Any]:
    """Per variant: requests and outcomes; per challenger and metric: the comparison with the
    champion, the sample-ratio check and a verdict."""
    names = [v.name for v in config.variants]
    models = served_models(config)
    counts = request_counts(store, names, since, models)
    srm = (
        sample_ratio_mismatch(counts, weights)
        if config.mode == "split"
        else {"p_value": 1.0, "mismatch": False}
    )
    if config.mode == "shadow":
        shadowed: dict[str, Any] = json_safe(
            {
                "id": config.id,
                "mode": config.mode,
                "weights": weights,
                "requests": counts,
                "shadow": shadow_agreement(store, config, since),
                "comparisons": [],
            }
        )
        return shadowed
    observed = load_outcomes(store, names, since, models)
    champion = config.champion.name
    comparisons: list[dict[str, Any]] = []
    for metric, by_variant in sorted(
        observed.items(), key=lambda kv: kv[0] not in PRIMARY.values()
    ):
        higher, label = METRICS[metric]
        base = by_variant.get(champion, [])
        for variant in names[1:]:
            other = by_variant.get(variant, [])
            rows = sorted(
                [(t, v, False, x) for t, v, x in base] + [(t, v, True, x) for t, v, x in other],
                key=lambda r: r[0],
            )
            if not rows:
                continue
            values = np.array([r[1] for r in rows])
            treated = np.array([r[2] for r in rows])
            covariates = [r[3] for r in rows]
            # CUPED when every outcome came with its pre-period covariate
            adjust = None if None in covariates else np.array(covariates, dtype=float)
            c = compare(values, treated, covariate=adjust)
            comparisons.append(
                {
                    "metric": metric,
                    "challenger": variant,
                    "greater_is_better": higher,
                    **c.to_dict(),
                    "verdict": verdict(
                        c, higher_is_better=higher, srm=bool(srm["mismatch"]), what=label
                    ),
                }
            )
    result: dict[str, Any] = json_safe(
        {
            "id": config.id,
            "mode": config.mode,
            "weights": weights,
            "requests": counts,
            "sample_ratio": srm,
            "comparisons": comparisons,
        }
    )
    return result


def shadow_agreement(
    store: Path, config: ExperimentConfig, since: float | None = None
) -> dict[str, Any]:
    """The champion's and the shadow's answers to the same requests, row by row: how often
    their labels agree and how far their probabilities (or values) are apart."""
    pairs = shadow_pairs(
        store, config.champion.name, config.variants[1].name, since, served_models(config)
    )
    if not pairs:
        return {"pairs": 0}
    first = pairs[0][0]
    probas = [k for k in first if k.startswith("proba_")]
    if probas:
        agree = np.mean([str(a["prediction"]) == str(b["prediction"]) for a, b in pairs])
        gaps = [np.mean([abs(a[k] - b[k]) for k in probas]) for a, b in pairs]
        return {
            "pairs": len(pairs),
            "agreement": float(agree),
            "mean_abs_proba_difference": float(np.mean(gaps)),
        }
    diffs = np.array([float(b["prediction"]) - float(a["prediction"]) for a, b in pairs])
    return {
        "pairs": len(pairs),
        "mean_difference": float(diffs.mean()),
        "mean_abs_difference": float(np.abs(diffs).mean()),
    }


def served_models(config: ExperimentConfig) -> list[str] | None:
    """The registered names the experiment's variants serve under, so that traffic of other
    models in the same store (named ``champion`` too) is left out; None when a variant is a
    package folder (its served name is the package's)."""
    from mlwright.track.registry import parse

    names = []
    for variant in config.variants:
        parsed = parse(variant.model)
        if parsed is None:
            return None
        names.append(parsed[0])
    return sorted(set(names))


def json_safe(value: Any) -> Any:
    """JSON-safe: NaN and infinities (an interval not yet defined) become None; dataclasses
    become dicts and tuples lists; anything else JSON cannot hold becomes its text."""
    if isinstance(value, np.generic):  # a NumPy number or flag: its Python value
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return json_safe(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    return str(value)
