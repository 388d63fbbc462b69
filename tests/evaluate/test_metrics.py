"""The metrics the search scores with agree with scikit-learn's."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from mlwright.evaluate.metrics import binary_auc, score


@settings(max_examples=50, deadline=None, derandomize=True)
@given(
    st.lists(
        st.tuples(st.integers(0, 1), st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.9, 1.0])),
        min_size=2,
        max_size=60,
    )
)
def test_binary_auc_is_scikit_learns_ties_included(pairs: list[tuple[int, float]]) -> None:
    y = np.array([label for label, _ in pairs])
    scores = np.array([s for _, s in pairs])
    if len(np.unique(y)) < 2:
        with pytest.raises(ValueError, match="Only one class"):
            binary_auc(y, scores)
        return
    assert binary_auc(y, scores) == pytest.approx(roc_auc_score(y, scores), abs=1e-12)


def test_roc_auc_of_probabilities_matches_for_two_and_more_classes() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    p = rng.random(500)
    assert score("roc_auc", y, np.column_stack([1 - p, p])) == pytest.approx(
        roc_auc_score(y, p), abs=1e-12
    )
    y3 = rng.integers(0, 3, 500)
    p3 = rng.dirichlet(np.ones(3), 500)
    assert score("roc_auc", y3, p3) == pytest.approx(
        roc_auc_score(y3, p3, multi_class="ovr", average="macro"), abs=1e-12
    )
