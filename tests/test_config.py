from __future__ import annotations

from pathlib import Path

import pytest

from mlwright.config import ProfileSettings
from mlwright.errors import ConfigError


def test_settings_are_frozen_and_strict() -> None:
    s = ProfileSettings()
    with pytest.raises(Exception, match="frozen"):
        s.seed = 3  # type: ignore[misc]
    with pytest.raises(ConfigError, match="leakage_sampel_rows: Extra inputs are not permitted"):
        ProfileSettings.from_mapping({"leakage_sampel_rows": 10})
    with pytest.raises(
        ConfigError, match="leakage_folds: Input should be less than or equal to 10"
    ):
        ProfileSettings.from_mapping({"leakage_folds": 50})


def test_yaml_loading(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("seed: 7\nhigh_cardinality: 20\n")
    s = ProfileSettings.from_yaml(good)
    assert (s.seed, s.high_cardinality) == (7, 20)
    assert ProfileSettings.model_validate(s.model_dump()) == s
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: [1\n")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        ProfileSettings.from_yaml(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        ProfileSettings.from_yaml(listy)
    with pytest.raises(ConfigError, match="does not exist"):
        ProfileSettings.from_yaml(tmp_path / "nope.yaml")


def run_python(code: str, env: dict[str, str] | None = None) -> str:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    return done.stdout.strip()


def test_threads_default_to_the_cores_the_process_may_use() -> None:
    # a process confined to one core (taskset, a cgroup cpuset) gets one thread per model
    code = "import os; os.sched_setaffinity(0, {0}); from mlwright.config import usable_cores; "
    code += "print(usable_cores())"
    assert run_python(code) == "1"


def test_a_cgroup_cpu_quota_caps_the_cores(tmp_path: Path) -> None:
    from mlwright.config import _cpu_quota

    limit = tmp_path / "cpu.max"
    limit.write_text("150000 100000\n")  # docker --cpus 1.5
    assert _cpu_quota(limit) == 2
    limit.write_text("max 100000\n")
    assert _cpu_quota(limit) is None
    assert _cpu_quota(tmp_path / "missing") is None
