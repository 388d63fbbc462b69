"""A GRU on the adding problem (see keras_sequence_gru.py), in Flax NNX, trained with
``mlwright train-jax``. The cell runs over the sequence in a ``jax.lax.scan``, which the ONNX
exporter turns into a loop that takes sequences of any length.

    mlwright train-jax --config examples/flax_sequence_gru.yaml
"""

from __future__ import annotations

from typing import Any

from examples.keras_sequence_gru import make_data


def make_model(params: dict[str, Any], rngs: Any) -> Any:
    import jax
    import jax.numpy as jnp
    from flax import nnx

    class AddingGRU(nnx.Module):
        def __init__(self, hidden: int, rngs: nnx.Rngs) -> None:
            self.hidden = hidden
            self.cell = nnx.GRUCell(2, hidden, rngs=rngs)
            self.head = nnx.Linear(hidden, 1, rngs=rngs)

        def __call__(self, x: Any) -> Any:
            def step(h: Any, x_t: Any) -> tuple[Any, None]:
                h, _ = self.cell(h, x_t)
                return h, None

            start = jnp.zeros((x.shape[0], self.hidden), x.dtype)
            last, _ = jax.lax.scan(step, start, jnp.swapaxes(x, 0, 1))  # over time
            return self.head(last)[:, 0]

    return AddingGRU(int(params["hidden"]), rngs)


__all__ = ["make_data", "make_model"]
