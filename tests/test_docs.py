"""The documentation's Python examples run, and its tables cover what the code defines."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.S)


@pytest.mark.parametrize("path", [p for p in DOCS if python_blocks(p)], ids=lambda p: p.name)
def test_python_examples_run(path: Path, request: pytest.FixtureRequest) -> None:
    for block in python_blocks(path):
        on_ray = 'backend="ray"' in block
        if on_ray:  # Ray's files go to a temporary HOME; skipped, saying why, without Ray
            request.getfixturevalue("ray_home")
        scope: dict[str, object] = {"__name__": "__doc_example__"}
        exec(compile(block, str(path), "exec"), scope)
        if on_ray:  # the example started a local Ray runtime: the run stopped it again
            import ray

            model = scope["model"]
            assert model.recipe["search"]["address"] == "local"  # type: ignore[attr-defined]
            assert not ray.is_initialized()


def test_profile_doc_covers_every_warning_code_and_setting() -> None:
    from mlwright.config import ProfileSettings

    doc = (ROOT / "docs" / "profile.md").read_text(encoding="utf-8")
    source = "".join(
        (ROOT / "src" / "mlwright" / "data" / name).read_text(encoding="utf-8")
        for name in ("checks.py", "profile.py")
    )
    codes = set(re.findall(r'Finding\(\s*"([a-z_]+)"', source))
    assert len(codes) >= 15
    for code in codes:
        assert f"`{code}`" in doc, f"warning code {code} is not documented"
    for name, field in ProfileSettings.model_fields.items():
        assert f"| `{name}` | {field.default} |" in doc, f"setting {name} is not documented"
