"""The modules that moved out of ``mlwright.serve`` still import from their old paths, as the
same objects; the old writers count drift by default, as the server's always have."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from tests.store.test_store import batch, reference_file

# old path → its public names, every one now defined in one of NEW_HOMES
MOVED = {
    "mlwright.serve.store": "FLUSH_ROWS FLUSH_SECONDS MAX_WRITE_ROWS PredictionBatch StoreWriter "
    "Watch connect read_json read_predictions",
    "mlwright.serve.writer": "PredictionWriter main",
    "mlwright.serve.drift": "UNSEEN Settings sketch_cdf count_numeric count_categorical "
    "numeric_drift categorical_drift feature_drift summary frame_drift",
    "mlwright.serve.drift_settings": "Settings",
    "mlwright.serve.drift_counts": "BUCKET_SECONDS SAVE_SECONDS PREDICTION ROWS Watched digest_of "
    "count_batch PendingCounts merge add_counts save_reference reading monitored "
    "stored_reference bucket_counts latest_since total window_buckets window_counts drift_of "
    "window_drift timeline",
    "mlwright.serve.monitor": "Monitored Overview step_for overview parse_since MonitorGauges",
    "mlwright.serve.performance": "LIVE_METRICS live_performance",
    "mlwright.serve.experiment": "Variant EntityKey Guardrails Canary ExperimentConfig bucket "
    "Router",
    "mlwright.serve.experiment_analysis": "METRICS PRIMARY Outcome load_outcomes outcomes "
    "request_counts analyze shadow_agreement json_safe",
    "mlwright.serve.experiment_stats": "ALPHA SRM_ALPHA MIXTURE_SD MIN_PER_ARM Arm Comparison "
    "is_binary cuped compare sequential_p_values confidence_sequence sample_ratio_mismatch "
    "verdict",
    "mlwright.serve.guardrails": "WINDOW SHIFT_MIN PSI_BINS VariantWindow psi breaches scores_of",
    "mlwright.serve.ab": "set_status set_step stored_experiments",
}
NEW_HOMES = (
    "mlwright.store",
    "mlwright.store.counts",
    "mlwright.store.experiments",
    "mlwright.store.feedback",
    "mlwright.store.predictions",
    "mlwright.store.process",
    "mlwright.store.schema",
    "mlwright.monitor.counts",
    "mlwright.monitor.drift",
    "mlwright.monitor.gauges",
    "mlwright.monitor.overview",
    "mlwright.monitor.performance",
    "mlwright.experiment.analysis",
    "mlwright.experiment.assignment",
    "mlwright.experiment.config",
    "mlwright.experiment.guardrails",
    "mlwright.experiment.state",
    "mlwright.experiment.stats",
)
# names the new homes spell otherwise: mlwright.config.Settings is the settings base class
RENAMED = {"Settings": "DriftSettings"}
# the server's writers: the store's own, counting with the monitor's binning
WIRED = {("mlwright.serve.store", "StoreWriter"), ("mlwright.serve.writer", "PredictionWriter")}


@pytest.mark.parametrize("old", sorted(MOVED))
def test_an_old_path_gives_the_objects_of_their_new_home(old: str) -> None:
    module = importlib.import_module(old)
    homes = [importlib.import_module(name) for name in NEW_HOMES]
    for name in MOVED[old].split():
        found = getattr(module, name)
        if (old, name) in WIRED:
            store = importlib.import_module("mlwright.store")
            assert issubclass(found, getattr(store, name)), f"{old}.{name}"
            continue
        home_name = RENAMED.get(name, name)
        assert any(getattr(home, home_name, None) is found for home in homes), f"{old}.{name}"


def test_the_old_writers_count_drift_as_before(tmp_path: Path) -> None:
    from mlwright.serve.store import StoreWriter, Watch
    from mlwright.serve.writer import PredictionWriter
    from mlwright.store.counts import monitored

    reference = reference_file(tmp_path / "reference.json")
    for writer in (StoreWriter(tmp_path / "a.db"), PredictionWriter(tmp_path / "b.db")):
        writer.watch(Watch("champion", "1", str(reference)))
        writer.add(batch(1, 2))
        writer.close()
        assert [m["rows"] for m in monitored(writer.path)] == [2]
