"""On a CUDA machine: the MLP trains on the GPU, and its package serves on a machine without one.

Slow tier, skipped where torch sees no GPU. A package trained on a GPU must load on the CPU
(weights are saved from CPU tensors), reproduce its golden examples there within the gate's
tolerance, and agree with the GPU's predictions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import make_frame

torch = pytest.importorskip("torch")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

CPU_CHECK = """
import json, sys
import numpy as np
import pandas as pd
from mlwright.package.golden import check_golden
from mlwright.package.store import load_package
model = load_package(sys.argv[1])
nets = [m for m in getattr(model.family, "members_", [model.family]) if m.name == "mlp"]
device = str(next(nets[0].model_.parameters()).device)
frame = pd.read_json(sys.argv[2], orient="records")
proba = model.predict_proba(frame).to_numpy()
print(json.dumps({"device": device, "mismatches": check_golden(model), "proba": proba.tolist()}))
"""


def device_of(model: object) -> str:
    """Where the model's (first) MLP lives; the MLP may be an ensemble's member."""
    family = model.family  # type: ignore[attr-defined]
    nets = [m for m in getattr(family, "members_", [family]) if m.name == "mlp"]
    return str(next(nets[0].model_.parameters()).device.type)


def test_mlp_trains_on_the_gpu_and_serves_on_the_cpu(tmp_path: Path) -> None:
    import mlwright as mw

    frame = make_frame(2000, seed=1)
    out = tmp_path / "mlp"
    model = mw.train(
        frame,
        target="churned",
        families=("mlp", "linear"),
        max_trials=3,
        seed=0,
        out=str(out),
        tracker="none",
    )
    assert "mlp" in model.family.components  # alone, or members of an ensemble
    assert device_of(model) == "cuda"
    assert (out / "report" / "report.html").is_file()  # the report was written on the GPU host
    assert model.evidence is not None and model.evidence["learning_curves"]
    features = frame.drop(columns="churned").head(200)
    gpu = model.predict_proba(features).to_numpy()
    assert np.allclose(gpu.sum(axis=1), 1.0)

    loaded = mw.load(out)  # on this machine: back on the GPU
    assert device_of(loaded) == "cuda"
    assert np.allclose(loaded.predict_proba(features).to_numpy(), gpu, atol=1e-6)

    rows = tmp_path / "rows.json"
    features.to_json(rows, orient="records")
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        [sys.executable, "-c", CPU_CHECK, str(out), str(rows)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    cpu = json.loads(done.stdout.strip().splitlines()[-1])
    assert cpu["device"] == "cpu"
    assert cpu["mismatches"] == []  # the deployment gate passes on a machine with no GPU
    assert np.allclose(np.array(cpu["proba"]), gpu, atol=1e-5)
