"""An ensemble of fitted families: a weighted blend or one stacking layer over their outputs.

It is never searched; training builds it from the trials that greedy ensemble selection or the
stacker chose (:mod:`mlwright.train.ensemble`), each member refit on all rows with its own
view of the features; its outputs combine as :mod:`mlwright.train.models.blend` says. Saved as
one sub-folder per member, in the member's native format.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mlwright.train.models.base import Family, FitContext
from mlwright.train.models.blend import Blend, combine
from mlwright.train.models.features import Design, View


class EnsembleFamily(Family):
    name = "ensemble"
    view = "tree"  # unused: each member encodes its own view
    about = "a weighted blend (or a stacking layer) of other families' models"
    onnx = True  # when every member exports

    def __init__(self, params: dict[str, Any], ctx: FitContext) -> None:
        super().__init__(params, ctx)
        self.members_: list[Family] = []
        self.blend = Blend.from_dict(params["blend"])

    @property
    def member_specs(self) -> list[dict[str, Any]]:
        return list(self.params["members"])

    def fit(
        self,
        train: Design,
        y: np.ndarray,
        *,
        valid: tuple[Design, np.ndarray] | None = None,
        weights: np.ndarray | None = None,
    ) -> EnsembleFamily:
        raise TypeError("an ensemble's members need their own views: use fit_members")

    def fit_members(
        self,
        encode: Callable[[View], Design],
        y: np.ndarray,
        weights: np.ndarray | None = None,
    ) -> EnsembleFamily:
        """Fit every member on its own view of the same rows."""
        from mlwright.train.models import get_family

        self.members_ = []
        for spec in self.member_specs:
            cls = get_family(spec["family"])
            self.members_.append(
                cls(spec["params"], self.ctx).fit(encode(cls.view), y, weights=weights)
            )
        self.fitted_ = {"members": [m.fitted_ for m in self.members_]}
        return self

    def predict_encoded(self, encode: Callable[[View], Design]) -> np.ndarray:
        designs: dict[View, Design] = {}
        raws = []
        for member in self.members_:
            if member.view not in designs:
                designs[member.view] = encode(member.view)
            raws.append(member.predict_encoded(lambda view: designs[view]))
        return combine(raws, self.blend, self.ctx.task)

    def predict_raw(self, design: Design) -> np.ndarray:
        views = {m.view for m in self.members_}
        if len(views) > 1:
            raise TypeError("this ensemble's members use several views: use predict_encoded")
        return self.predict_encoded(lambda view: design)

    @property
    def components(self) -> list[str]:
        return [name for m in self.members_ for name in m.components]

    def save(self, folder: Path) -> list[str]:
        files = []
        for i, member in enumerate(self.members_):
            sub = folder / f"member_{i}"
            sub.mkdir()
            files += [f"member_{i}/{name}" for name in member.save(sub)]
        return files

    @classmethod
    def load(
        cls, folder: Path, params: dict[str, Any], ctx: FitContext, fitted: dict[str, Any]
    ) -> EnsembleFamily:
        from mlwright.train.models import get_family

        family = cls(params, ctx)
        family.members_ = [
            get_family(spec["family"]).load(folder / f"member_{i}", spec["params"], ctx, state)
            for i, (spec, state) in enumerate(
                zip(family.member_specs, fitted["members"], strict=True)
            )
        ]
        family.fitted_ = dict(fitted)
        return family
