"""The documentation's tables cover what the code defines (its examples: tests/docs/)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


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
