"""Learn the zero-shot portfolio: which configurations the search tries first, in which order.

Usage:  python bench/portfolio.py [--random 5] [--max-entries 24] [--datasets A,B] [--force]

Every family's defaults, its hand-written portfolio entries and ``--random`` seeded samples of
its search space are scored with mlwright's own search (the same folds, encoders and early
stopping as ``mlwright train``, grouped where the catalogue names a group column) on the
*tuning half* of the dataset catalogue, ``bench/catalogue.py`` (``bench/results/datasets.md``),
or the ``--datasets`` of it. The judging half is what ``bench/compare.py`` reports
(``bench/results/accuracy.md``), so it is refused here: ``--force`` lets an experiment use it,
and then the order is written only under ``bench/.work/portfolio/``, never as package data.
Each configuration's score is normalized per dataset (a constant predictor 0, the best
configuration 1) and its cost is its time relative to the dataset's median configuration. The
order is built greedily: next comes the configuration with the largest gain in mean
best-so-far normalized score per unit of cost (expected value per second), until no
configuration adds more than 0.001. The result is package data
(``src/mlwright/train/models/spaces/portfolio.yaml``) and ``bench/results/portfolio.md``.
Scores are cached per (dataset, its catalogue digest, configuration) in
``bench/.work/portfolio``, so an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from catalogue import BY_NAME, Entry, select
from catalogue import load as load_table

ROOT = Path(__file__).resolve().parent
CACHE = ROOT / ".work" / "portfolio"
OUT = ROOT.parent / "src" / "mlwright" / "train" / "models" / "spaces" / "portfolio.yaml"
SEED = 0


def datasets(names: list[str]) -> dict[str, tuple[pd.DataFrame, Entry]]:
    """The catalogue's tables by name: drops applied, the group column still there."""
    return {name: (load_table(BY_NAME[name]), BY_NAME[name]) for name in names}


def candidates(random: int) -> list[tuple[str, dict[str, Any], str]]:
    from mlwright.train.models import FAMILIES

    out = []
    for i, (name, cls) in enumerate(sorted(FAMILIES.items())):
        space = cls.space()
        out.append((name, dict(space.defaults), "default"))
        out += [(name, dict(p), "portfolio") for p in space.portfolio]
        rng = np.random.default_rng([SEED, i])
        count = min(random, 3) if name == "mlp" else random
        out += [(name, space.sample(rng), "random") for _ in range(count)]
    return out


def key(family: str, params: dict[str, Any]) -> str:
    text = json.dumps([family, params], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def search_data(frame: pd.DataFrame, entry: Entry) -> tuple[Any, Any, list[str]]:
    """The rows, folds and plan ``mlwright train`` would search over (test split held out)."""
    from mlwright.config import TrainOptions
    from mlwright.data.io import read_table
    from mlwright.data.profile import profile_frame
    from mlwright.design.plan import make_plan
    from mlwright.train.runner import (
        class_weights,
        final_schema,
        prepare_rows,
        search_rows_data,
        split_inputs,
        split_test,
    )
    from mlwright.train.validation import make_splits

    target = entry.target
    options = TrainOptions(
        target=target,
        task=entry.task,
        group_col=entry.group,
        max_trials=1,
        tracker="none",
        seed=SEED,
    )
    table, source = read_table(frame)
    problem = profile_frame(table, source, target, metric=None, task=entry.task)
    plan = make_plan(problem, options)
    schema = final_schema(problem.schema, plan)
    prep = prepare_rows(table, schema, problem.task, problem.classes, plan)
    train_pos, _ = split_test(prep, plan, problem.task, SEED)
    splits = make_splits(plan.validation, split_inputs(prep, train_pos, problem.task), SEED)
    n_classes = len(problem.classes) if problem.classes else 0
    weights = class_weights(prep.y, n_classes) if plan.class_weights else None
    data = search_rows_data(prep, schema, train_pos, splits, weights, options)
    return data, plan, plan.family_names


def constant_score(data: Any, plan: Any) -> float:
    from mlwright.evaluate.metrics import score

    scores = []
    for train_idx, val_idx in data.splits:
        y_train, y_val = data.y[train_idx], data.y[val_idx]
        if plan.task == "regression":
            pred: np.ndarray = np.full(len(y_val), float(np.mean(y_train)))
        else:
            k = int(data.y.max()) + 1
            prior = np.bincount(y_train, minlength=k) / len(y_train)
            pred = np.tile(prior, (len(y_val), 1))
        scores.append(score(plan.metric, y_val, pred))
    return float(np.mean(scores))


def score_dataset(
    name: str, frame: pd.DataFrame, entry: Entry, configs: list[tuple[str, dict[str, Any], str]]
) -> dict[str, Any]:
    from mlwright.train.budget import Budget
    from mlwright.train.search import SearchLimits, run_search

    cache = CACHE / f"{name}-{entry.digest()}.json"
    scores: dict[str, Any] = json.loads(cache.read_text())["scores"] if cache.exists() else {}
    data, plan, families = search_data(frame, entry)
    result = {
        "metric": plan.metric,
        "task": plan.task,
        "families": families,
        "zero": constant_score(data, plan),
        "scores": scores,
    }
    n_classes = int(data.y.max()) + 1 if plan.task != "regression" else 0
    for family, params, source in configs:
        if family not in families or key(family, params) in scores:
            continue
        trials = run_search(
            data,
            [family],
            task=plan.task,
            n_classes=n_classes,
            metric=plan.metric,
            seed=SEED,
            threads=2,
            limits=SearchLimits(max_trials=1, budget=Budget(None, 0.0)),
            static=[(family, params, source)],
        )
        t = trials[0]
        scores[key(family, params)] = {"mean": t.mean, "seconds": t.seconds, "status": t.status}
        print(f"{name}: {family} {source} {t.mean} in {t.seconds:.1f} s", flush=True)
        cache.write_text(json.dumps(result, indent=1))
    return result


def greedy_order(
    configs: list[tuple[str, dict[str, Any], str]],
    results: dict[str, dict[str, Any]],
    max_entries: int,
) -> list[dict[str, Any]]:
    from mlwright.data.tasks import METRICS

    names = list(results)
    keys = [key(f, p) for f, p, _ in configs]
    norm = np.zeros((len(configs), len(names)))
    cost = np.ones((len(configs), len(names)))
    for j, name in enumerate(names):
        res = results[name]
        higher = METRICS[res["metric"]].greater_is_better
        got = {
            k: v for k, v in res["scores"].items() if v["mean"] is not None and v["status"] == "ok"
        }
        best = (
            max(v["mean"] for v in got.values()) if higher else min(v["mean"] for v in got.values())
        )
        median_s = float(np.median([v["seconds"] for v in got.values()]))
        for i, k in enumerate(keys):
            if k in got:
                value = (got[k]["mean"] - res["zero"]) / (best - res["zero"])
                norm[i, j] = float(np.clip(value, 0.0, 1.0))
                cost[i, j] = got[k]["seconds"] / median_s
    order: list[dict[str, Any]] = []
    have = np.zeros(len(names))
    chosen: set[int] = set()
    while len(order) < max_entries:
        gains = (np.maximum(norm, have) - have).mean(axis=1)
        per_cost = gains / cost.mean(axis=1)
        per_cost[list(chosen)] = -np.inf
        i = int(np.argmax(per_cost))
        if gains[i] < 1e-3:
            break
        chosen.add(i)
        have = np.maximum(have, norm[i])
        family, params, source = configs[i]
        order.append(
            {
                "family": family,
                "params": params,
                "source": source,
                "gain": round(float(gains[i]), 4),
                "relative_cost": round(float(cost[i].mean()), 3),
                "mean_best_so_far": round(float(have.mean()), 4),
            }
        )
    return order


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--random", type=int, default=5, help="random configurations per family")
    parser.add_argument("--max-entries", type=int, default=24)
    parser.add_argument(
        "--datasets", default=None, help="comma-separated tables (default: the tuning half)"
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="allow judging-half tables; the order then goes to bench/.work/portfolio only",
    )
    args = parser.parse_args()
    names = args.datasets.split(",") if args.datasets else [e.name for e in select("tuning")]
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        parser.error(f"not in bench/catalogue.py: {', '.join(unknown)}")
    judged = [n for n in names if BY_NAME[n].half == "judging"]
    if judged and not args.force:
        parser.error(
            f"{', '.join(judged)}: in the judging half, which bench/compare.py reports as "
            "accuracy.md; a portfolio learned on them would be judged on its own training data. "
            "Use tuning tables (python bench/catalogue.py --half tuning), or pass --force for "
            "an experiment that is not shipped"
        )
    CACHE.mkdir(parents=True, exist_ok=True)
    configs = candidates(args.random)
    frames = datasets(names)
    started = time.monotonic()
    results = {name: score_dataset(name, f, e, configs) for name, (f, e) in frames.items()}
    order = greedy_order(configs, results, args.max_entries)
    command = "python bench/portfolio.py " + " ".join(sys.argv[1:])
    body = {"order": [{"family": e["family"], "params": e["params"]} for e in order]}
    if judged:
        scratch = CACHE / "forced-portfolio.yaml"
        scratch.write_text(yaml.safe_dump(body, sort_keys=False, width=100))
        print(f"--force with judging tables ({', '.join(judged)}): written to {scratch} only")
        return
    header = (
        f"# Learned by `{command.strip()}` on {', '.join(results)} (the tuning half of\n"
        "# bench/catalogue.py): each configuration scored out of fold with mlwright's own\n"
        "# search, ordered by expected gain in normalized score per unit of relative cost.\n"
        "# Do not edit by hand.\n"
    )
    OUT.write_text(header + yaml.safe_dump(body, sort_keys=False, width=100))
    lines = [
        "# The zero-shot portfolio",
        "",
        f"Command: `{command.strip()}` ({time.monotonic() - started:.0f} s; cached scores "
        f"reused). Machine: Python {platform.python_version()}, {platform.machine()}.",
        "",
        "Datasets (the tuning half of `bench/catalogue.py`; `bench/compare.py` reports the "
        f"judging half): {', '.join(results)}. "
        f"{len(configs)} candidate configurations (defaults, hand-written portfolio entries and "
        "seeded random samples of each family's space), each scored out of fold with the "
        "folds `mlwright train` would use. Normalized score per dataset: a constant predictor "
        "0, the best candidate 1. Cost: seconds relative to the dataset's median candidate.",
        "",
        "| # | family | source | gain | relative cost | mean best-so-far |",
        "|---:|---|---|---:|---:|---:|",
    ]
    for i, e in enumerate(order, 1):
        lines.append(
            f"| {i} | {e['family']} | {e['source']} | {e['gain']:.4f} | "
            f"{e['relative_cost']:.2f} | {e['mean_best_so_far']:.4f} |"
        )
    lines.append("")
    (ROOT / "results" / "portfolio.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
