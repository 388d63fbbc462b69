"""MLW101 unseeded-random: random numbers that change from run to run."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from mlwright.audit.core import Source, has_kwargs, keyword, rule
from mlwright.audit.rules.common import from_ml_library, last

NUMPY_GLOBAL = {
    "rand",
    "randn",
    "randint",
    "random",
    "random_sample",
    "ranf",
    "sample",
    "choice",
    "shuffle",
    "permutation",
    "normal",
    "uniform",
    "binomial",
    "poisson",
    "beta",
    "gamma",
    "exponential",
    "multinomial",
    "standard_normal",
    "integers",
}
PYTHON_RANDOM = {
    "random",
    "randint",
    "choice",
    "choices",
    "shuffle",
    "sample",
    "uniform",
    "gauss",
    "randrange",
    "normalvariate",
}
TORCH_RANDOM = {
    "rand",
    "randn",
    "randint",
    "randperm",
    "rand_like",
    "randn_like",
    "randint_like",
    "bernoulli",
    "multinomial",
    "normal",
    "poisson",
}
SEEDERS = (
    "manual_seed",
    "seed_everything",
    "set_seed",
    "set_random_seed",
    "seed_all",
    "manual_seed_all",
    "fix_seed",
    "set_seeds",
    "seed_torch",
)
# estimators and splitters whose result depends on a random state
RANDOM_STATE = {
    "RandomForestClassifier",
    "RandomForestRegressor",
    "ExtraTreesClassifier",
    "ExtraTreesRegressor",
    "GradientBoostingClassifier",
    "GradientBoostingRegressor",
    "HistGradientBoostingClassifier",
    "HistGradientBoostingRegressor",
    "DecisionTreeClassifier",
    "DecisionTreeRegressor",
    "KMeans",
    "MiniBatchKMeans",
    "MLPClassifier",
    "MLPRegressor",
    "SGDClassifier",
    "SGDRegressor",
    "IsolationForest",
    "BaggingClassifier",
    "BaggingRegressor",
    "AdaBoostClassifier",
    "AdaBoostRegressor",
    "TSNE",
    "train_test_split",
    "ShuffleSplit",
    "StratifiedShuffleSplit",
    "GroupShuffleSplit",
    "RandomizedSearchCV",
    "XGBClassifier",
    "XGBRegressor",
    "XGBRanker",
    "LGBMClassifier",
    "LGBMRegressor",
    "LGBMRanker",
    "CatBoostClassifier",
    "CatBoostRegressor",
    "RandomTreesEmbedding",
    "SpectralClustering",
    "GaussianMixture",
}
SEED_KEYWORDS = ("random_state", "seed", "random_seed")
SHUFFLED_SPLITTERS = {"KFold", "StratifiedKFold", "GroupKFold", "RepeatedKFold"}
FIX = "seed it once at the start (random.seed, np.random.seed, torch.manual_seed) from a config"


@rule("MLW101", "unseeded-random", "medium", "random numbers that differ from run to run")
def unseeded(src: Source) -> Iterator[tuple[ast.AST, str, str]]:
    yield from _global_generators(src)
    for call, name in src.calls_to(lambda n: last(n) in RANDOM_STATE | SHUFFLED_SPLITTERS):
        short = last(name)
        if not from_ml_library(name) or has_kwargs(call):
            continue
        if any(keyword(call, k) is not None for k in SEED_KEYWORDS):
            continue
        if short in SHUFFLED_SPLITTERS:
            shuffle = keyword(call, "shuffle")
            if shuffle is None or not (
                isinstance(shuffle.value, ast.Constant) and shuffle.value.value is True
            ):
                continue  # no shuffling: nothing random
        yield (
            call,
            f"{short}(...) without random_state: its result changes on every run",
            f"pass random_state=SEED (one seed from the config) to {short}",
        )
    for call, name in src.calls_to(
        lambda n: n in ("numpy.random.default_rng", "numpy.random.RandomState")
    ):
        if not call.args and not call.keywords:
            yield (
                call,
                f"{last(name)}() without a seed draws a new stream on every run",
                f"pass the seed: {last(name)}(SEED)",
            )


def _global_generators(src: Source) -> Iterator[tuple[ast.AST, str, str]]:
    """numpy's, Python's and torch's global generators used with no seed set in the file."""
    groups = [
        (
            "numpy",
            lambda n: n.startswith("numpy.random.") and last(n) in NUMPY_GLOBAL,
            "numpy.random.seed",
        ),
        ("random", lambda n: n.startswith("random.") and last(n) in PYTHON_RANDOM, "random.seed"),
        ("torch", _torch_random, "torch.manual_seed"),
    ]
    trains = any(isinstance(c.func, ast.Attribute) and c.func.attr == "backward" for c in src.calls)
    for library, used, seeder in groups:
        calls = list(src.calls_to(used))
        if library == "torch":
            calls += [
                (c, n)
                for c, n in src.calls_to(lambda n: last(n) == "DataLoader")
                if _shuffles(c) and keyword(c, "generator") is None and not has_kwargs(c)
            ]
            if trains:  # a model that is trained here starts from random weights
                calls += list(src.calls_to(_torch_layer))
            calls.sort(key=lambda pair: (pair[0].lineno, pair[0].col_offset))
        if not calls or src.called(seeder, *SEEDERS):
            continue
        first, name = calls[0]
        more = f" in {len(calls)} places" if len(calls) > 1 else ""
        yield (
            first,
            f"{library}'s global random generator is used{more} (first "
            f"{name.removeprefix('torch.utils.data.')}(...)) but never seeded: every run draws "
            "different numbers (initial weights, shuffles, samples)",
            f"call {seeder}(SEED) once at the start, with SEED from the config",
        )


def _shuffles(call: ast.Call) -> bool:
    shuffle = keyword(call, "shuffle")
    return shuffle is not None and not (
        isinstance(shuffle.value, ast.Constant) and shuffle.value.value is False
    )


def _torch_layer(name: str) -> bool:
    return name.startswith("torch.nn.") and name.count(".") == 2 and last(name)[:1].isupper()


def _torch_random(name: str) -> bool:
    if name.startswith("torch.nn.init."):
        return True
    return name.startswith("torch.") and name.count(".") == 1 and last(name) in TORCH_RANDOM


__all__ = ["unseeded"]
