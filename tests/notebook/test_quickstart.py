"""examples/quickstart.ipynb runs top to bottom in a real kernel, and shows what it promises:
a progress display updated in place, the model's summary, predictions and the framed report."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "examples" / "quickstart.ipynb"
KERNEL = "mlwright-test"


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The notebook after a run in a kernel of this Python (whatever Jupyter kernels the
    machine has): its spec is written to a temporary folder that only this test reads."""
    import nbformat
    from nbclient import NotebookClient

    root = tmp_path_factory.mktemp("notebook")
    spec = root / "kernels" / KERNEL
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    kernel = {"argv": argv, "display_name": "mlwright test", "language": "python"}
    (spec / "kernel.json").write_text(json.dumps(kernel), encoding="utf-8")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook,
        kernel_name=KERNEL,
        timeout=120,
        resources={"metadata": {"path": str(root)}},  # the kernel's working directory
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_PATH", str(root))  # where Jupyter looks for kernels/ first
        client.execute()  # starts the kernel, runs every cell, shuts the kernel down
    return notebook


def outputs(notebook: Any, source: str) -> list[dict[str, Any]]:
    """The outputs of the one code cell whose source contains ``source``."""
    (cell,) = [c for c in notebook.cells if c.cell_type == "code" and source in c.source]
    return list(cell.outputs)


def html(output: dict[str, Any]) -> str:
    return str(output.get("data", {}).get("text/html", ""))


def test_the_quickstart_runs_and_shows_each_step(executed: Any) -> None:
    assert "Mroz" in html(outputs(executed, "mw.list_datasets()")[-1])
    assert "Problem definition" in html(outputs(executed, "mw.profile(")[-1])

    training = outputs(executed, "mw.train(")
    progress = [o for o in training if o["output_type"] == "display_data"]
    assert len(progress) == 1  # one display, updated in place: not a line per event
    assert "trained &#x27;work&#x27; in " in html(progress[0])
    assert training[-1]["output_type"] == "execute_result"
    assert "mlwright model <code>work</code>" in html(training[-1])
    assert not [o for o in training if o["output_type"] == "stream"]  # nothing else printed

    assert "prediction" in html(outputs(executed, "model.predict(")[-1])
    assert html(outputs(executed, "model.report()")[-1]).startswith("<iframe srcdoc=")
