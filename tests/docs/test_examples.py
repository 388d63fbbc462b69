"""Every code example of README.md and docs/*.md runs, or is marked, with a reason, as not run.

```python blocks run in one namespace per page, in a folder prepared with the files the pages
name (tests/docs/workspace.py). The commands of ```console and ```bash blocks run in such a folder
too, in page order: ``mlwright ...`` through the command line's entry point (in this process;
with ``--backend ray`` in a process of its own, as a terminal would: a second local Ray runtime
in one process was seen to time out), ``python ...`` in a subprocess, ``export NAME=VALUE`` sets
the variable for the commands after it; each must exit 0. How a block is marked as not run is
in tests/docs/blocks.py.

One rewrite keeps the examples short: every ``mlwright train`` runs with ``--time-budget 30``
(the value a page gives is replaced; a command with neither a budget nor ``--max-trials`` gets
it), so an example's 60 or 300 s are 30 s here (on a busy machine, less was refused as too
short to profile the data and fit a model).

The fast tier runs the examples that train nothing (Python pages that call no training, and
console blocks of ``mlwright profile`` and ``mlwright audit``); the slow tier runs every example,
the trainings and the registry commands included, against a registry in which the model
``churn`` has versions 1 to 4 (version 1 the champion), as a reader's would after a few trainings.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.docs.blocks import EXECUTED, ROOT, Block, blocks, pages, split
from tests.docs.workspace import prepare

BUDGET = "30"
DATA = ("", "text", "yaml", "toml", "json")  # fenced blocks that are data or output
LIGHT = ("profile", "audit")  # commands that train nothing and read no registry
# commands that run until stopped: never run here, so always marked
SERVERS = ("mlwright serve", "mlwright ui")
TRAINS = re.compile(r"\bmw\.train\(|\btrain_torch\(|\bfit\(")
ALL_BLOCKS = [block for page in pages() for block in blocks(page)]


def page_id(path: Path) -> str:
    return str(path.relative_to(ROOT))


# -- every block is run or marked -------------------------------------------------------------


@pytest.mark.parametrize("block", ALL_BLOCKS, ids=lambda b: b.where)
def test_every_block_is_run_or_marked_with_a_reason(block: Block) -> None:
    assert block.lang in EXECUTED + DATA, (
        f"{block.where}: a ```{block.lang} block: the tests run python, console and bash "
        f"blocks; use one of those, or one of {DATA[1:]} for data and output"
    )
    if block.lang not in EXECUTED:
        return
    if block.not_run is not None:
        assert block.not_run.strip(), f"{block.where}: not-run needs a reason"
        return
    if block.lang == "python":
        return
    commands = block.commands()
    assert commands, (
        f"{block.where}: a {block.lang} block with no command (a console block's commands "
        "start with '$ '); a usage synopsis is a ```text block"
    )
    for prefix, reason in block.not_run_commands.items():
        assert reason.strip(), f"{block.where}: not-run `{prefix}` needs a reason"
        assert any(c.startswith(prefix) for c in commands), (
            f"{block.where}: no command starts with `{prefix}`, which is marked not-run"
        )
    for command in commands:
        if block.skipped_because(command) is None:
            assert not command.startswith(SERVERS), (
                f"{block.where}: `{command}` runs until stopped: mark it "
                "<!-- not-run `PREFIX`: REASON -->"
            )
            assert split(command)[0] in ("mlwright", "python", "export"), (
                f"{block.where}: `{command}` is not a command the tests run (mlwright, python, "
                "export): mark it <!-- not-run `PREFIX`: REASON --> or the block "
                "<!-- not-run: REASON -->"
            )


def test_markers_are_read() -> None:
    """The parser sees a marker above a fence, and one kind of command in a block."""
    from tests.docs.blocks import blocks as parse

    page = ROOT / "README.md"
    text = (
        "<!-- not-run: starts a server -->\n```console\n$ mlwright serve x\n```\n\n"
        "<!-- not-run `mlwright ui`: the UI runs until stopped -->\n"
        "```console\n$ mlwright models list   # all\nname  versions\n$ mlwright ui\n```\n"
        "```bash\nmlwright audit src/ \\\n  --format json\n```\n"
    )
    scratch = Path(os.environ.get("TMPDIR", "/tmp")) / f"mlw-docs-{os.getpid()}.md"
    scratch.write_text(text, encoding="utf-8")
    try:
        serve, tour, audit = parse(scratch)
    finally:
        scratch.unlink()
    assert serve.not_run == "starts a server"
    assert tour.not_run is None
    assert tour.commands() == ["mlwright models list   # all", "mlwright ui"]
    assert tour.skipped_because("mlwright ui") == "the UI runs until stopped"
    assert tour.skipped_because("mlwright models list") is None
    assert audit.commands() == ["mlwright audit src/ --format json"]
    assert page.exists()


# -- running them -----------------------------------------------------------------------------


@dataclass
class Shell:
    """A reader's terminal in a prepared folder."""

    folder: Path
    monkeypatch: pytest.MonkeyPatch
    capsys: pytest.CaptureFixture[str]

    def run_block(self, block: Block) -> int:
        """Runs the block's commands; returns how many ran."""
        ran = 0
        for command in block.commands():
            if block.skipped_because(command) is None:
                self.run(command, block.where)
                ran += 1
        return ran

    def run(self, command: str, where: str) -> None:
        assert not command.startswith(SERVERS), f"{where}: `{command}` runs until stopped"
        words = [os.path.expandvars(os.path.expanduser(w)) for w in split(command)]
        if words[0] == "export":
            name, _, value = words[1].partition("=")
            self.monkeypatch.setenv(name, value)
            return
        if words[0] == "python":
            code, out, err = self.subprocess(words[1:])
        elif "ray" in words:  # its own process, as in a terminal: a Ray runtime per process
            code, out, err = self.subprocess(["-m", "mlwright", *shortened(words[1:])])
        else:
            code, out, err = self.mlwright(shortened(words[1:]))
        assert code == 0, f"{where}: `{command}` exited {code}\n{out}\n{err}"

    def subprocess(self, args: list[str]) -> tuple[int, str, str]:
        done = subprocess.run(
            [sys.executable, *args], capture_output=True, text=True, timeout=600, check=False
        )
        return done.returncode, done.stdout, done.stderr

    def mlwright(self, args: list[str]) -> tuple[int, str, str]:
        from mlwright.cli.main import run

        self.monkeypatch.setattr(sys, "argv", ["mlwright", *args])
        code = 0
        try:
            run()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        captured = self.capsys.readouterr()
        return code, captured.out, captured.err


def shortened(args: list[str]) -> list[str]:
    """``mlwright train`` with the tests' budget (see the module's docstring)."""
    if args[:1] != ["train"]:
        return args
    if "--time-budget" in args:
        at = args.index("--time-budget") + 1
        return [*args[:at], BUDGET, *args[at + 1 :]]
    if "--max-trials" in args:
        return args
    return [*args, "--time-budget", BUDGET]


def test_shortened_budget() -> None:
    assert shortened(["train", "a.csv", "--time-budget", "60", "-q"]) == [
        "train",
        "a.csv",
        "--time-budget",
        BUDGET,
        "-q",
    ]
    assert shortened(["train", "a.csv"]) == ["train", "a.csv", "--time-budget", BUDGET]
    assert shortened(["train", "a.csv", "--max-trials", "2"])[-1] == "2"
    assert shortened(["predict", "m", "a.csv"]) == ["predict", "m", "a.csv"]


@pytest.fixture
def shell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Shell:
    folder = prepare(tmp_path / "project")
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.chdir(folder)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("COLUMNS", "160")
    return Shell(folder, monkeypatch, capsys)


def light(block: Block) -> bool:
    return block.lang != "python" and all(
        block.skipped_because(c) is not None
        or (split(c)[:1] == ["mlwright"] and split(c)[1] in LIGHT)
        for c in block.commands()
    )


def runnable(path: Path) -> list[Block]:
    return [b for b in blocks(path) if b.lang in EXECUTED and b.not_run is None]


def trains(path: Path) -> bool:
    return any(TRAINS.search(b.body) for b in runnable(path) if b.lang == "python")


def run_python(page: Path, request: pytest.FixtureRequest) -> None:
    scope: dict[str, object] = {"__name__": "__doc_example__"}
    for block in runnable(page):
        if block.lang != "python":
            continue
        on_ray = 'backend="ray"' in block.body
        if on_ray:  # Ray's files go to a temporary HOME; skipped, saying why, without Ray
            request.getfixturevalue("ray_home")
        exec(compile(block.body, str(page), "exec"), scope)
        if on_ray:  # the example started a local Ray runtime: the run stopped it again
            import ray

            model = scope["model"]
            assert model.recipe["search"]["address"] == "local"  # type: ignore[attr-defined]
            assert not ray.is_initialized()


PYTHON_PAGES = [p for p in pages() if any(b.lang == "python" for b in runnable(p))]
FAST_PYTHON = [p for p in PYTHON_PAGES if not trains(p)]
SLOW_PYTHON = [p for p in PYTHON_PAGES if trains(p)]


@pytest.mark.parametrize("page", FAST_PYTHON, ids=page_id)
def test_python_examples_that_train_nothing(
    page: Path, shell: Shell, request: pytest.FixtureRequest
) -> None:
    run_python(page, request)


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("page", SLOW_PYTHON, ids=page_id)
def test_python_examples_that_train(
    page: Path, shell: Shell, request: pytest.FixtureRequest
) -> None:
    run_python(page, request)


def test_the_fast_tier_runs_examples() -> None:
    """The split above leaves examples on each side (a page that stopped matching would
    otherwise drop out of the fast tier unseen)."""
    assert {p.name for p in FAST_PYTHON} >= {"profile.md", "schema.md", "audit.md"}
    assert {p.name for p in SLOW_PYTHON} >= {"README.md", "train.md"}
    assert any(light(b) for b in runnable(ROOT / "README.md"))


COMMAND_PAGES = [p for p in pages() if any(b.lang != "python" for b in runnable(p))]


@pytest.mark.parametrize(
    "page", [p for p in COMMAND_PAGES if any(light(b) for b in runnable(p))], ids=page_id
)
def test_commands_that_train_nothing(page: Path, shell: Shell) -> None:
    ran = sum(shell.run_block(block) for block in runnable(page) if light(block))
    assert ran, f"{page_id(page)}: no command ran"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A store in which ``churn`` has versions 1 to 4, and version 1's package folder."""
    import pandas as pd

    import mlwright as mw

    root = tmp_path_factory.mktemp("docs-registry")
    data = prepare(root / "data")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        env.setenv("MLWRIGHT_CACHE_DIR", str(root / "cache"))
        frame = pd.read_csv(data / "customers.csv")
        for version in range(1, 5):
            mw.train(
                frame,
                target="churned",
                name="churn",
                max_trials=1,
                families=("linear",),
                seed=version,
                out=root / f"churn-{version}",
            )
        yield root


@pytest.mark.slow
@pytest.mark.timeout(1200)
@pytest.mark.parametrize("page", COMMAND_PAGES, ids=page_id)
def test_every_command(
    page: Path, shell: Shell, registry: Path, request: pytest.FixtureRequest
) -> None:
    shell.monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{registry / 'mlflow.db'}")
    shell.monkeypatch.setenv("MLWRIGHT_CACHE_DIR", str(registry / "cache"))
    # the reader's earlier trainings: a package folder, and one trained before signing
    for name in ("churn", "older"):
        shutil.copytree(registry / "churn-1", shell.folder / "models" / name)
    # the example PyTorch model the pages name (examples/digits_cnn.yaml)
    (shell.folder / "examples").mkdir()
    for name in ("__init__.py", "digits_cnn.py", "digits_cnn.yaml"):
        shutil.copy(ROOT / "examples" / name, shell.folder / "examples" / name)
    ran = 0
    for block in runnable(page):
        if block.lang == "python":
            continue
        if any("--backend ray" in c for c in block.commands()):
            request.getfixturevalue("ray_home")
        ran += shell.run_block(block)
    assert ran, f"{page_id(page)}: no command ran"
