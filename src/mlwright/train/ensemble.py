"""Combining trials out of fold: greedy ensemble selection, one stacking layer, calibration.

Everything here works on the trials' out-of-fold predictions, so no model is fitted twice:

- **Greedy ensemble selection** (Caruana et al., ICML 2004): starting from nothing, repeatedly
  add (with replacement) the candidate whose addition gives the best score of the averaged
  predictions; the weights are the counts at the best round.
- **Stacking**, one layer: a multinomial logistic regression on the members' log-probabilities
  (a non-negative linear regression on their values for regression).
- Calibration: a temperature on classifier probabilities (learned in
  :mod:`mlwright.train.postprocess`).

Applying a blend, a stack or a temperature is scoring, not training: :class:`Blend`,
:func:`combine` and :func:`calibrate` live beside the model families
(:mod:`mlwright.train.models.blend`) and are re-exported here.

The selection draws from a *pool*: the POOL best candidates, then the best of each family not
among them, so that a long search whose top trials are near copies of one configuration still
offers the selection models that err differently.

Each option is judged by *cross-fitting*: for every validation fold, everything is learned on the
other folds' out-of-fold rows (which candidates are the best, the pool, the blend's members and
weights, the stack) and scored on that fold's rows. So the choice between the best single trial,
the greedy blend and the stack compares honest scores: after hundreds of trials the best one's own
out-of-fold score flatters it (it was picked for that score), the cross-fitted one does not. A
more complex option is chosen only when its gain over the simpler one is larger than the standard
error of that gain across folds (:func:`simplest_first`). The final combination is then learned
on all out-of-fold rows.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mlwright.data.tasks import Task
from mlwright.evaluate.metrics import score, signed
from mlwright.train.models.blend import EPS, Blend, calibrate, combine, stack_inputs

POOL = 12  # candidates offered to the selection: the best trials out of fold (then each
# family's best)
ROUNDS = 25  # greedy rounds (AutoGluon's weighted ensemble uses 25 as well)
MAX_ROWS = 20_000  # rows used to choose; beyond, a seeded sample keeps the choice fast
PROBE_ROWS = 2_000  # rows a stacking layer's fit is timed on, to foresee its cost


# --- learning a combination ----------------------------------------------------------------------


@dataclass
class Option:
    """One way to combine, judged by cross-fitting: its per-fold scores and final combination."""

    name: str  # single | weighted | stacked
    fold_scores: list[float]
    members: list[int]  # indices into the candidates
    blend: Blend | None  # None for single
    oof: np.ndarray  # cross-fitted predictions on the judged rows

    @property
    def mean(self) -> float:
        return float(np.mean(self.fold_scores))


@dataclass
class Judged:
    """Out-of-fold rows the combinations are judged on, with each row's fold."""

    rows: np.ndarray  # positions into the training rows
    fold: np.ndarray  # fold id per row
    y: np.ndarray
    oofs: list[np.ndarray]  # per candidate, on ``rows``


def judged_rows(
    oofs: list[np.ndarray], y: np.ndarray, val_sets: list[np.ndarray], seed: int
) -> Judged:
    """Rows every candidate predicted out of fold, with their validation fold; capped at
    MAX_ROWS by a seeded sample; a single validation fold is cut into two halves so that
    cross-fitting is possible."""
    n = len(y)
    fold = np.full(n, -1)
    for k, val in enumerate(val_sets):
        fold[val] = k
    covered = fold >= 0
    for oof in oofs:
        covered &= ~np.isnan(oof if oof.ndim == 1 else oof[:, 0])
    rows = np.flatnonzero(covered)
    rng = np.random.default_rng(seed)
    if len(rows) > MAX_ROWS:
        rows = np.sort(rng.choice(rows, MAX_ROWS, replace=False))
    folds = fold[rows]
    if len(np.unique(folds)) < 2:
        folds = rng.permutation(np.arange(len(rows)) % 2)
    return Judged(rows, folds, y[rows], [o[rows] for o in oofs])


def greedy_weights(
    oofs: list[np.ndarray],
    y: np.ndarray,
    metric: str,
    rounds: int = ROUNDS,
    *,
    costs: list[float] | None = None,
    cap: float | None = None,
) -> list[float]:
    """Caruana's forward selection with replacement; weights = counts at the best round.
    With ``costs`` and ``cap``, a candidate joins only while the members' summed cost stays
    within ``cap`` (one already in is free to add again); all zeros when none fits alone."""
    counts = np.zeros(len(oofs))
    total: np.ndarray | None = None
    best_score, best_counts = -np.inf, counts.copy()
    spent = 0.0

    def affordable(i: int) -> bool:
        return costs is None or cap is None or counts[i] > 0 or spent + costs[i] <= cap

    for r in range(1, rounds + 1):
        scores = []
        for i, oof in enumerate(oofs):
            trial = oof if total is None else total + oof
            scores.append(signed(metric, score(metric, y, trial / r)) if affordable(i) else -np.inf)
        pick = int(np.argmax(scores))  # ties: the earlier (better ranked) candidate
        if scores[pick] == -np.inf:
            break  # nothing left that fits the cap
        if costs is not None and not counts[pick]:
            spent += costs[pick]
        counts[pick] += 1
        total = oofs[pick].copy() if total is None else total + oofs[pick]
        if scores[pick] > best_score + 1e-12:
            best_score, best_counts = scores[pick], counts.copy()
    if not best_counts.sum():
        return [0.0] * len(oofs)
    return [float(c / best_counts.sum()) for c in best_counts]


def stack_fit(oofs: list[np.ndarray], y: np.ndarray, task: Task, seed: int) -> Blend:
    """The stacking layer fitted on out-of-fold predictions."""
    x = stack_inputs(oofs, task)
    if task == "regression":
        from sklearn.linear_model import LinearRegression

        reg = LinearRegression(positive=True).fit(x, y)
        return Blend("stacked", [], [list(map(float, reg.coef_))], [float(reg.intercept_)])
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    with warnings.catch_warnings():  # an unconverged stack is judged by cross-fitting like any
        warnings.simplefilter("ignore", ConvergenceWarning)
        # mlwright: ignore[MLW106] the stacking layer's regularisation is fixed by design
        clf = LogisticRegression(C=1.0, max_iter=500, random_state=seed).fit(x, y)
    coef = np.asarray(clf.coef_, dtype="float64")
    intercept = np.asarray(clf.intercept_, dtype="float64")
    k = oofs[0].shape[1]
    if k > 2 and len(clf.classes_) < k:  # a class absent from the rows: never predicted
        full = np.zeros((k, coef.shape[1]))
        full_b = np.full(k, -30.0)
        full[clf.classes_] = coef
        full_b[clf.classes_] = intercept
        coef, intercept = full, full_b
    return Blend("stacked", [], coef.tolist(), intercept.tolist())


def cross_fit(
    judged: Judged, learn: Callable[[np.ndarray], Callable[[np.ndarray], np.ndarray]], metric: str
) -> tuple[list[float], np.ndarray]:
    """Per-fold scores of ``learn(train_mask)(val_mask) -> predictions`` and the predictions."""
    pred: np.ndarray | None = None
    scores = []
    for k in np.unique(judged.fold):
        val = judged.fold == k
        out = learn(~val)(val)
        if pred is None:
            pred = np.zeros((len(judged.y), *out.shape[1:]))
        pred[val] = out
        scores.append(score(metric, judged.y[val], out))
    assert pred is not None
    return scores, pred


def pool_of(
    judged: Judged, metric: str, rows: np.ndarray | None = None, groups: list[str] | None = None
) -> list[int]:
    """The POOL best candidates by their score on ``rows`` (a mask over the judged rows; all by
    default), then the best of each group (family) not among them; best first, ties in the
    given order."""
    use = np.ones(len(judged.y), dtype=bool) if rows is None else rows
    scores = [signed(metric, score(metric, judged.y[use], o[use])) for o in judged.oofs]
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    return top_and_each_group(order, groups, POOL)


def top_and_each_group(order: list[int], groups: list[str] | None, size: int) -> list[int]:
    """The first ``size`` of ``order`` (best first), then the first of each group not among
    them, in ``order``'s order."""
    chosen = order[:size]
    if groups is not None:
        seen = {groups[i] for i in chosen}
        for i in order[size:]:
            if groups[i] not in seen:
                chosen.append(i)
                seen.add(groups[i])
    return chosen


def choose_combination(
    judged: Judged,
    metric: str,
    task: Task,
    seed: int,
    *,
    groups: list[str] | None = None,
    stacking: bool = True,
    costs: list[float] | None = None,
    cap: float | None = None,
    until: float | None = None,
    notes: list[str] | None = None,
) -> list[Option]:
    """Every option judged by cross-fitting, the chosen one first (:func:`simplest_first`), then
    best first. ``groups`` names
    each candidate's family (for the pool). With ``costs`` (each candidate's refit seconds) and
    ``cap`` (the seconds left), the blends only take members whose refits together fit the cap.
    Members are indices into the candidates, in their given order. With ``until`` (monotonic
    time), the stack is only judged when its fits (foreseen from one on PROBE_ROWS rows) would
    end by then; ``notes`` hears why it was not."""
    oofs = judged.oofs
    pools: dict[bytes, list[int]] = {}
    blends: dict[bytes, tuple[list[int], list[float]]] = {}

    def pool_at(rows: np.ndarray) -> list[int]:
        key = rows.tobytes()
        if key not in pools:
            pools[key] = pool_of(judged, metric, rows, groups)
        return pools[key]

    def members_of(rows: np.ndarray) -> tuple[list[int], list[float]]:
        """The greedy blend learned on ``rows``: its members (in the candidates' order) and
        weights; the best alone when no member fits the cap."""
        key = rows.tobytes()
        if key not in blends:
            pool = pool_at(rows)
            w = greedy_weights(
                [oofs[i][rows] for i in pool],
                judged.y[rows],
                metric,
                costs=None if costs is None else [costs[i] for i in pool],
                cap=cap,
            )
            chosen = sorted((i, v) for i, v in zip(pool, w, strict=True) if v > 0)
            blends[key] = (
                ([i for i, _ in chosen], [v for _, v in chosen]) if chosen else ([pool[0]], [1.0])
            )
        return blends[key]

    def single(train: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        pick = pool_at(train)[0]
        return lambda val: oofs[pick][val]

    def weighted(train: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        members, w = members_of(train)
        return lambda val: combine([oofs[i][val] for i in members], Blend("weighted", w), task)

    def stacked(train: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        members, _ = members_of(train)
        blend = stack_fit([oofs[i][train] for i in members], judged.y[train], task, seed)
        return lambda val: combine([oofs[i][val] for i in members], blend, task)

    everything = np.ones(len(judged.y), dtype=bool)
    options = []
    scores, pred = cross_fit(judged, single, metric)
    options.append(Option("single", scores, [pool_at(everything)[0]], None, pred))
    members, w = members_of(everything)
    if len(members) > 1:  # two candidates at least fit the cap
        scores, pred = cross_fit(judged, weighted, metric)
        options.append(Option("weighted", scores, members, Blend("weighted", w), pred))
        if stacking and _stackable(judged, task):  # stacked over the blend's members
            needed = 0.0
            if until is not None:  # time a fit on a few rows: the rest scales with the rows
                probe = np.arange(min(len(judged.y), PROBE_ROWS))
                started = time.monotonic()
                stack_fit([oofs[i][probe] for i in members], judged.y[probe], task, seed)
                per_fit = (time.monotonic() - started) * len(judged.y) / len(probe)
                needed = per_fit * (len(np.unique(judged.fold)) + 1)
            if until is None or time.monotonic() + needed <= until:
                scores, pred = cross_fit(judged, stacked, metric)
                blend = stack_fit([oofs[i] for i in members], judged.y, task, seed)
                options.append(Option("stacked", scores, members, blend, pred))
            elif notes is not None:
                notes.append(
                    f"judging the stack by cross-fitting takes ~{needed:.1f} s, more than the "
                    f"{max(until - time.monotonic(), 0.0):.1f} s the budget leaves for combining"
                )
    return simplest_first(options, metric)


def clearly_better(scores: list[float], than: list[float], metric: str) -> bool:
    """Whether per-fold ``scores`` beat ``than`` (the same folds) by more than the standard
    error of their paired differences: a gain inside the folds' noise does not count."""
    diffs = np.array(
        [signed(metric, a) - signed(metric, b) for a, b in zip(scores, than, strict=True)]
    )
    if len(diffs) < 2:  # one fold shows no spread: no evidence either way
        return False
    return bool(diffs.mean() > 0 and diffs.mean() > standard_error(diffs))


def standard_error(diffs: np.ndarray) -> float:
    """The standard error of the mean of per-fold differences (0.0 for fewer than two)."""
    diffs = np.asarray(diffs, dtype="float64")
    return float(np.std(diffs, ddof=1) / np.sqrt(len(diffs))) if len(diffs) > 1 else 0.0


def simplest_first(options: list[Option], metric: str) -> list[Option]:
    """The chosen option first: from the single trial up (single → weighted → stacked), a more
    complex option replaces the one chosen so far only when it is clearly better across folds
    (:func:`clearly_better`); the others follow, best first (ties: the simpler)."""
    order = {"single": 0, "weighted": 1, "stacked": 2}
    by_complexity = sorted(options, key=lambda o: order[o.name])
    chosen = by_complexity[0]
    for option in by_complexity[1:]:
        if clearly_better(option.fold_scores, chosen.fold_scores, metric):
            chosen = option
    rest = sorted(
        (o for o in options if o is not chosen),
        key=lambda o: (-signed(metric, o.mean), order[o.name]),
    )
    return [chosen, *rest]


def _stackable(judged: Judged, task: Task) -> bool:
    """Enough rows per fold for a stacker to learn from (and every class in each)."""
    if len(judged.y) < 200:
        return False
    if task == "regression":
        return True
    return all(len(np.unique(judged.y[judged.fold != k])) > 1 for k in np.unique(judged.fold))


__all__ = [
    "EPS",
    "Blend",
    "Judged",
    "Option",
    "calibrate",
    "choose_combination",
    "clearly_better",
    "combine",
    "greedy_weights",
    "judged_rows",
    "pool_of",
    "simplest_first",
    "stack_fit",
    "standard_error",
    "top_and_each_group",
]
