"""Tabular MLP in PyTorch: embeddings for categories, standardised numbers, AdamW, a one-cycle
learning-rate schedule, early stopping on the validation fold, gradient clipping, a progress bar
per epoch, and CUDA when it is there. Registered only when torch imports."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np

from mlwright.train.models.base import Family, FitContext
from mlwright.train.models.features import Design

_FILE = "mlp.pt"


def _device() -> Any:
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _build(arch: dict[str, Any]) -> Any:
    import torch
    from torch import nn

    class TabularMLP(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embeddings = nn.ModuleList(
                nn.Embedding(card, dim)
                for card, dim in zip(arch["cards"], arch["dims"], strict=True)
            )
            width = arch["n_num"] + sum(arch["dims"])
            layers: list[nn.Module] = []
            for hidden in arch["hidden"]:
                layers += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(arch["dropout"])]
                width = hidden
            layers.append(nn.Linear(width, arch["out"]))
            self.body = nn.Sequential(*layers)

        def forward(self, num: torch.Tensor, cat: torch.Tensor) -> torch.Tensor:
            parts = [num] + [emb(cat[:, i]) for i, emb in enumerate(self.embeddings)]
            return self.body(torch.cat(parts, dim=1))  # type: ignore[no-any-return]

    return TabularMLP()


class MLPFamily(Family):
    name = "mlp"
    view = "embed"
    relative_cost = 6.0
    about = "a neural network with category embeddings; adds diversity on larger tables"
    plan_order = 7
    noun = "a neural network"
    min_rows = 1_000  # fewer: too few for a neural network to beat trees
    min_budget = 60.0  # less: the budget is better spent on boosted trees
    requirement = ("torch", "torch")

    def fit(
        self,
        train: Design,
        y: np.ndarray,
        *,
        valid: tuple[Design, np.ndarray] | None = None,
        weights: np.ndarray | None = None,
    ) -> MLPFamily:
        import torch

        ctx, p = self.ctx, self.params
        previous_threads = torch.get_num_threads()
        torch.set_num_threads(ctx.threads)
        torch.manual_seed(ctx.seed)
        device = _device()
        regression = ctx.task == "regression"
        y_mean = float(np.mean(y)) if regression else 0.0
        y_std = float(np.std(y)) or 1.0 if regression else 1.0
        arch = {
            "n_num": int(train.X.shape[1]),
            "cards": list(train.cardinalities),
            "dims": [
                min(int(p["embedding_max_dim"]), (c + 1) // 2 + 1) for c in train.cardinalities
            ],
            "hidden": [int(h) for h in p["hidden"]],
            "dropout": float(p["dropout"]),
            "out": 1 if regression else ctx.n_classes,
        }
        model = _build(arch).to(device)
        tensors = self._tensors(train, device)
        target = torch.tensor(
            (y - y_mean) / y_std if regression else y,
            dtype=torch.float32 if regression else torch.long,
            device=device,
        )
        w = torch.tensor(
            weights if weights is not None else np.ones(len(y)), dtype=torch.float32, device=device
        )
        fixed_epochs = "epochs" in p
        epochs = int(p["epochs"] if fixed_epochs else p["max_epochs"])
        batch = int(p["batch_size"])
        steps = max(1, -(-len(y) // batch))
        optimizer = torch.optim.AdamW(
            model.parameters(), lr=float(p["lr"]), weight_decay=float(p["weight_decay"])
        )
        schedule = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=float(p["lr"]), total_steps=epochs * steps
        )
        generator = torch.Generator().manual_seed(ctx.seed)
        # mixed precision on CUDA (float16 autocast, a scaled loss); on the CPU both are no-ops
        amp = device.type == "cuda"
        scaler = torch.amp.GradScaler("cuda", enabled=amp)
        best_loss, best_state, best_epoch, stale = float("inf"), None, epochs, 0
        progress = _progress(ctx.verbose, epochs)
        try:
            for epoch in range(1, epochs + 1):
                model.train()
                order = torch.randperm(len(y), generator=generator).to(device)
                total = 0.0
                for start in range(0, len(y), batch):
                    rows = order[start : start + batch]
                    optimizer.zero_grad(set_to_none=True)
                    with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
                        out = model(tensors[0][rows], tensors[1][rows])
                        loss = self._loss(out.float(), target[rows], w[rows], regression)
                    scaler.scale(loss).backward()
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(model.parameters(), float(p["clip_norm"]))
                    scaler.step(optimizer)
                    scaler.update()
                    schedule.step()
                    total += float(loss.detach()) * len(rows)
                progress(epoch)
                curve = {"train_loss": total / len(y)}
                if valid is not None and not fixed_epochs:
                    val_loss = self._validation_loss(model, valid, y_mean, y_std, device)
                    curve["val_loss"] = val_loss
                    if val_loss < best_loss - 1e-6:
                        best_loss, best_epoch, stale = val_loss, epoch, 0
                        best_state = copy.deepcopy(model.state_dict())
                    else:
                        stale += 1
                if ctx.on_epoch is not None:
                    ctx.on_epoch(epoch, curve)
                if valid is not None and not fixed_epochs and stale >= int(p["patience"]):
                    break
                if ctx.out_of_time():
                    best_epoch = min(best_epoch, epoch)
                    break
        finally:
            progress(None)
            torch.set_num_threads(previous_threads)
        if best_state is not None:
            model.load_state_dict(best_state)
        else:
            best_epoch = epoch
        model.eval()
        self.model_ = model
        self.fitted_ = {"epochs": int(best_epoch), "y_mean": y_mean, "y_std": y_std, "arch": arch}
        return self

    @staticmethod
    def _tensors(design: Design, device: Any) -> tuple[Any, Any]:
        import torch

        num = torch.tensor(design.X, dtype=torch.float32, device=device)
        codes = design.codes if design.codes is not None else np.zeros((design.n_rows, 0), int)
        return num, torch.tensor(codes, dtype=torch.long, device=device)

    @staticmethod
    def _loss(out: Any, target: Any, w: Any, regression: bool) -> Any:
        import torch.nn.functional as F

        if regression:
            per_row = F.mse_loss(out.squeeze(1), target, reduction="none")
        else:
            per_row = F.cross_entropy(out, target, reduction="none")
        return (per_row * w).sum() / w.sum()

    def _validation_loss(
        self, model: Any, valid: tuple[Design, np.ndarray], y_mean: float, y_std: float, device: Any
    ) -> float:
        import torch

        model.eval()
        num, cat = self._tensors(valid[0], device)
        with torch.no_grad():
            out = model(num, cat)
            if self.ctx.task == "regression":
                target = torch.tensor(
                    (valid[1] - y_mean) / y_std, dtype=torch.float32, device=device
                )
                return float(((out.squeeze(1) - target) ** 2).mean())
            target = torch.tensor(valid[1], dtype=torch.long, device=device)
            return float(torch.nn.functional.cross_entropy(out, target))

    def predict_raw(self, design: Design) -> np.ndarray:
        import torch

        device = next(self.model_.parameters()).device
        num, cat = self._tensors(design, device)
        self.model_.eval()
        outs = []
        with torch.no_grad():
            for start in range(0, design.n_rows, 8192):
                outs.append(self.model_(num[start : start + 8192], cat[start : start + 8192]))
        out = torch.cat(outs) if outs else torch.zeros((0, self.fitted_["arch"]["out"]))
        if self.ctx.task == "regression":
            values = out.squeeze(1).double().cpu().numpy()
            return np.asarray(
                values * self.fitted_["y_std"] + self.fitted_["y_mean"], dtype="float64"
            )
        return np.asarray(torch.softmax(out.double(), dim=1).cpu().numpy(), dtype="float64")

    def refit_params(self) -> dict[str, Any]:
        return {**self.params, "epochs": self.fitted_["epochs"]}

    def save(self, folder: Path) -> list[str]:
        import torch

        state = {k: v.detach().cpu() for k, v in self.model_.state_dict().items()}
        torch.save(state, folder / _FILE)
        return [_FILE]

    @classmethod
    def load(
        cls, folder: Path, params: dict[str, Any], ctx: FitContext, fitted: dict[str, Any]
    ) -> MLPFamily:
        import torch

        family = cls(params, ctx)
        # torch's CPU threads are per process and switching them per call leaves the old pool
        # spinning: a loaded model sets them once (a server worker loads with threads=1)
        torch.set_num_threads(ctx.threads)
        model = _build(fitted["arch"])
        model.load_state_dict(torch.load(folder / _FILE, weights_only=True, map_location="cpu"))
        family.model_ = model.to(_device()).eval()
        family.fitted_ = dict(fitted)
        return family


def _progress(enabled: bool, total: int) -> Any:
    """A per-epoch progress bar on standard error; call with None to close it."""
    if not enabled:
        return lambda _: None
    from rich.progress import Progress

    bar = Progress(transient=True)
    task = bar.add_task("MLP epochs", total=total)
    bar.start()

    def update(epoch: int | None) -> None:
        if epoch is None:
            bar.stop()
        else:
            bar.update(task, completed=epoch)

    return update
