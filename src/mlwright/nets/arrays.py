"""The data of a Keras or JAX run: arrays, split with the seed, shuffled per epoch by the seed.

The config's data function returns one of:

- ``(x, y)``: one set, of which ``train.validation_share`` is held out at random (the seed);
- ``((x, y), (x_valid, y_valid))`` or ``{"train": (x, y), "validation": (x_valid, y_valid)}``.

``x`` is an array (one input), a tuple or list of arrays (several inputs, named ``input_0``,
``input_1``, ... or by the config's ``inputs``) or a dict of arrays (inputs named by their keys);
anything ``numpy.asarray`` takes (NumPy, JAX or TensorFlow arrays) will do. The first dimension
of every array is the example. 64-bit floats become 32-bit, as the frameworks compute.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlwright.errors import ConfigError
from mlwright.nets.config import NetConfig
from mlwright.package.tensor import TensorInput


@dataclass
class Arrays:
    """Examples as one array per input (in ``names`` order) and the targets."""

    names: list[str]
    inputs: list[np.ndarray]
    target: np.ndarray
    keyword: bool = False  # the inputs came as a dict: the model takes them by name

    def __len__(self) -> int:
        return len(self.target)

    def take(self, rows: np.ndarray | slice) -> Arrays:
        return Arrays(self.names, [a[rows] for a in self.inputs], self.target[rows], self.keyword)

    def model_inputs(self, arrays: list[np.ndarray] | None = None) -> Any:
        """What the model is called with: the array, the list, or the dict of arrays."""
        arrays = self.inputs if arrays is None else arrays
        if self.keyword:
            return dict(zip(self.names, arrays, strict=True))
        return arrays[0] if len(arrays) == 1 else list(arrays)

    def spec(self) -> list[TensorInput]:
        return [
            TensorInput(name, tuple(int(d) for d in a.shape[1:]), str(a.dtype))
            for name, a in zip(self.names, self.inputs, strict=True)
        ]

    def batches(self, size: int, order: np.ndarray | None = None) -> Iterator[Arrays]:
        rows = np.arange(len(self)) if order is None else order
        for start in range(0, len(rows), size):
            yield self.take(rows[start : start + size])


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The training examples' order in ``epoch``: a function of the seed and the epoch alone,
    so that a resumed run sees exactly the order an uninterrupted one would."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def _as_array(value: Any, what: str) -> np.ndarray:
    try:
        array = np.asarray(value)
    except Exception as exc:
        raise ConfigError(
            f"the data function's {what} is not an array ({type(exc).__name__}: {exc})",
            fix="return NumPy arrays (or anything numpy.asarray takes)",
        ) from None
    if array.dtype == object or array.dtype.kind not in "biuf":
        raise ConfigError(
            f"the data function's {what} holds {array.dtype} values, not numbers",
            fix="return numeric arrays",
        )
    if array.ndim == 0:
        raise ConfigError(
            f"the data function's {what} is a single value, not an array of examples",
            fix="return arrays whose first dimension is the example",
        )
    return array.astype("float32") if array.dtype == np.float64 else array


def arrays(config: NetConfig, pair: Any, what: str) -> Arrays:
    """One ``(x, y)`` pair as :class:`Arrays`, every length checked."""
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise ConfigError(
            f"the data function's {what} is a {type(pair).__name__}, not a pair (x, y)",
            fix="return (x, y), ((x, y), (x_valid, y_valid)) or "
            "{'train': (x, y), 'validation': (x_valid, y_valid)}",
        )
    x, y = pair
    if isinstance(x, dict):
        names, keyword = [str(k) for k in x], True
        values = list(x.values())
        if config.inputs is not None and set(config.inputs) != set(names):
            raise ConfigError(
                f"`inputs` {list(config.inputs)} do not match the data's input keys {names}",
                fix="drop `inputs` (dict inputs name themselves) or list the same keys",
            )
    else:
        values = list(x) if isinstance(x, (tuple, list)) else [x]
        default = ["input"] if len(values) == 1 else [f"input_{i}" for i in range(len(values))]
        names, keyword = list(config.inputs or default), False
        if len(names) != len(values):
            raise ConfigError(
                f"`inputs` names {len(names)} input(s) but the data has {len(values)}",
                fix="give one name per input array",
            )
    inputs = [_as_array(v, f"{what} input {n!r}") for n, v in zip(names, values, strict=True)]
    target = _as_array(y, f"{what} target")
    lengths = {n: len(a) for n, a in zip(names, inputs, strict=True)} | {"target": len(target)}
    if len(set(lengths.values())) != 1:
        raise ConfigError(
            f"the data function's {what} arrays have different numbers of examples: {lengths}",
            fix="give every input and the target the same first dimension",
        )
    return Arrays(names, inputs, target, keyword)


def split(config: NetConfig, data: Any) -> tuple[Arrays, Arrays | None, str]:
    """(train, validation, how): what the data function gave, or one set split by the seed."""
    loop = config.train
    if isinstance(data, dict):
        if set(data) - {"train", "validation"} or "train" not in data:
            raise ConfigError(
                f"the data function returned a mapping with keys {sorted(map(str, data))}",
                fix="return {'train': (x, y), 'validation': (x_valid, y_valid)} or (x, y)",
            )
        data = (data["train"], data.get("validation"))
    pair_of_pairs = (
        isinstance(data, (tuple, list))
        and len(data) == 2
        and all(
            part is None or (isinstance(part, (tuple, list)) and len(part) == 2) for part in data
        )
        and data[0] is not None
        and (data[1] is None or isinstance(data[1], (tuple, list)))
    )
    if pair_of_pairs:
        train = arrays(config, data[0], "training data")
        valid = None if data[1] is None else arrays(config, data[1], "validation data")
        how = "the validation set the data function gave"
        if valid is not None and valid.names != train.names:
            raise ConfigError(
                f"the validation inputs {valid.names} differ from the training ones {train.names}",
                fix="give both sets the same inputs",
            )
        if valid is not None:
            _same_shapes(train, valid)
    else:
        every = arrays(config, data, "output")
        n = len(every)
        n_valid = max(1, round(n * loop.validation_share))
        if n - n_valid < 1:
            raise ConfigError(
                f"the data has {n} example(s): too few to hold out a validation share",
                fix="give more data, or a separate validation set",
            )
        order = np.random.default_rng(loop.seed).permutation(n)
        train, valid = every.take(np.sort(order[n_valid:])), every.take(np.sort(order[:n_valid]))
        how = f"{n_valid} of {n} examples held out at random (seed {loop.seed})"
    if valid is not None and len(valid) == 0:
        valid = None
    if valid is None:
        if not loop.allow_no_validation:
            raise ConfigError(
                "there is no validation data: a model trained without it cannot be judged, "
                "stopped early or compared",
                fix="return ((x, y), (x_valid, y_valid)) from the data function, or (x, y) to "
                "be split; set train.allow_no_validation: true only if you must",
            )
        how = "none (train.allow_no_validation): no epoch was judged on held-out data"
    if len(train) == 0:
        raise ConfigError("the training data is empty", fix="check the data function")
    return train, valid, how


def _same_shapes(train: Arrays, valid: Arrays) -> None:
    pairs = [*zip(train.names, train.inputs, valid.inputs, strict=True),
             ("target", train.target, valid.target)]  # fmt: skip
    for name, a, b in pairs:
        if a.shape[1:] != b.shape[1:]:
            raise ConfigError(
                f"validation {name!r} has examples of shape {b.shape[1:]}, training {a.shape[1:]}",
                fix="give the validation set examples of the training set's shape",
            )


def metric(name: str, out: np.ndarray, y: np.ndarray) -> float:
    """accuracy, mae or rmse of the model's raw outputs against the targets."""
    out = np.asarray(out, dtype="float64")
    if name == "accuracy":
        if out.ndim == 2 and out.shape[1] > 1:
            predicted = out.argmax(axis=1)
        else:
            predicted = (out.reshape(-1) > 0).astype(np.int64)
        return float(np.mean(predicted == y.reshape(-1).astype(np.int64)))
    error = out.reshape(-1) - np.asarray(y, dtype="float64").reshape(-1)
    if name == "mae":
        return float(np.mean(np.abs(error)))
    return float(np.sqrt(np.mean(error**2)))


__all__ = ["Arrays", "arrays", "epoch_order", "metric", "split"]
