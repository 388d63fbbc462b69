"""The standalone script every package carries (``report/rebuild.py``): it rebuilds the final
model from the recipe with mlwright's public API and checks the rebuilt model's predictions."""

from __future__ import annotations

from mlwright.package.model import Model

_DOCSTRING = """\
Rebuild the model {name} from its recipe with mlwright's public API.

    python rebuild.py [DATA]

DATA is the training data (default: {location}, where it was read from). The script refits
the chosen configuration ({kind} {family}, seed {seed}) on the same rows, with no search, and
compares the rebuilt model's predictions on the package's golden rows with the saved model's:
labels must match exactly and numbers within 1e-6. Exit status 1 when they differ.
"""

# Every value from the package enters the script as a Python literal made by repr() (DATA) or
# inside the docstring with its quotes, backslashes and control characters escaped: a file or
# model name is never code, whatever characters it holds.
_TEMPLATE = """\
{docstring}

import sys
from pathlib import Path

import numpy as np
import pandas as pd

import mlwright as mw

PACKAGE = Path(__file__).resolve().parent.parent
DATA = sys.argv[1] if len(sys.argv) > 1 else {location!r}


def main() -> int:
    saved = mw.load(PACKAGE)  # the package's checksums are verified before anything is loaded
    chosen = saved.recipe.chosen
    print(f"rebuilding {{chosen.kind}} {{chosen.family}} (seed {{saved.recipe.seed}}) "
          f"from {{DATA}}")
    try:
        rebuilt = mw.reproduce(saved, DATA)  # the recipe's rows, configuration and seed; no search
    except mw.MlwrightError as exc:
        print(f"cannot rebuild: {{exc}}")
        return 1
    rows = pd.DataFrame.from_records(saved.golden["inputs"])
    expected, got = saved.predict(rows), rebuilt.predict(rows)
    differences = []
    for column in expected.columns:
        want, have = expected[column].to_numpy(), got[column].to_numpy()
        if want.dtype.kind in "fc":
            bad = ~np.isclose(have, want, rtol=0.0, atol=1e-6)
        else:
            bad = want.astype(str) != have.astype(str)
        differences += [f"row {{i}}, {{column}}: {{have[i]!r}} != {{want[i]!r}}"
                        for i in np.flatnonzero(bad)]
    if differences:
        print(f"not reproduced: {{len(differences)}} difference(s)")
        print("\\n".join(differences[:20]))
        return 1
    print(f"reproduced: {{len(rows)}} golden rows, {{len(expected.columns)}} columns match")
    return 0


if __name__ == "__main__":
    sys.exit(main())
"""


def rebuild_script(model: Model) -> str:
    recipe = model.recipe
    location = str(recipe.data.source.get("location", ""))
    docstring = _DOCSTRING.format(
        name=repr(model.name),
        location=repr(location),
        kind=recipe.chosen.kind,
        family=recipe.chosen.family or model.family.name,
        seed=recipe.seed,
    )
    return _TEMPLATE.format(docstring=triple_quoted(docstring), location=location)


def triple_quoted(text: str) -> str:
    """``text`` as a triple-quoted Python string literal that evaluates to exactly ``text``:
    backslashes, double quotes and every control character except the line break are escaped,
    so nothing in it can end the string."""
    out = []
    for char in text:
        if char == "\\":
            out.append("\\\\")
        elif char == '"':
            out.append('\\"')
        elif char != "\n" and (not char.isprintable() or "\ud800" <= char <= "\udfff"):
            out.append(repr(char)[1:-1])  # \r, \x00, \u2028, a lone surrogate, ...
        else:
            out.append(char)
    return '"""' + "".join(out) + '"""'
