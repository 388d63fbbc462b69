"""When served traffic counts as drifted: the thresholds of :mod:`mlwright.monitor.drift`.

The defaults are Evidently's documented ones for its data drift preset: statistical tests
(Kolmogorov–Smirnov, chi-square) at p < 0.05 for columns of up to 1,000 values; above that, the
normed Wasserstein distance (numeric) and the Jensen–Shannon distance (categorical) at 0.1; the
dataset drifts when at least half of its columns do. Kept apart from the statistics so that the
command line can show them without importing numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlwright.errors import ConfigError


@dataclass(frozen=True)
class DriftSettings:
    small_window: int = 1000  # up to this many values: statistical tests; above: distances
    p_value: float = 0.05
    wasserstein: float = 0.1  # normed by the reference's standard deviation
    jensen_shannon: float = 0.1
    dataset_share: float = 0.5  # the dataset drifts when this share of features drift

    def __post_init__(self) -> None:
        checks = {
            "small_window": self.small_window >= 0,
            "p_value": 0 < self.p_value < 1,
            "wasserstein": self.wasserstein > 0,
            "jensen_shannon": 0 < self.jensen_shannon <= 1,
            "dataset_share": 0 < self.dataset_share <= 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise ConfigError(
                    f"drift setting {name}={getattr(self, name)!r} is out of range",
                    fix="small_window ≥ 0; 0 < p_value < 1; wasserstein > 0; "
                    "0 < jensen_shannon ≤ 1; 0 < dataset_share ≤ 1",
                )
