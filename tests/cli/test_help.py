"""The command line's conventions, over every command and subcommand: each help ends with
examples that parse, options with a fixed set of values list them, one spelling per option
(earlier spellings still work, hidden), one meaning per option name, and usage errors exit 2."""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterator
from enum import Enum
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import pytest
import typer.main

from mlwright.cli import options
from mlwright.cli.main import app
from tests.conftest import CliResult

Cli = Callable[..., CliResult]

ROOT = typer.main.get_command(app)


def _walk(command: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        if not sub.hidden:  # `ab`: the hidden earlier name of `experiment`
            yield from _walk(sub, (*path, name))


COMMANDS = dict(_walk(ROOT, ()))
LEAVES = {path: command for path, command in COMMANDS.items() if not hasattr(command, "commands")}


def _parse(argv: list[str]) -> tuple[tuple[str, ...], dict[str, Any]]:
    """Resolve ``mlwright ARGV`` to its command and parse its options as the command line
    would (types, choices, parsers), without running it; a usage error raises."""
    command, ctx, path = ROOT, None, ()
    while hasattr(command, "commands"):
        name, argv = argv[0], argv[1:]
        ctx = command.context_class(command, info_name=path[-1] if path else "mlwright", parent=ctx)
        command = command.get_command(ctx, name)
        assert command is not None, f"no command {name!r} under {path}"
        path = (*path, name)
    return path, command.make_context(path[-1], argv, parent=ctx).params


def _choices(param: Any) -> list[str]:
    """The values an option accepts when they are a fixed set (a Literal or an Enum, alone or
    repeated), else []."""
    kind = param.type_descriptor.annotation
    if get_origin(kind) is list:
        (kind,) = get_args(kind)
    if get_origin(kind) is Literal:
        return [str(v) for v in get_args(kind)]
    if isinstance(kind, type) and issubclass(kind, Enum):
        return [str(m.value) for m in kind]
    return []


def _examples(help_text: str) -> list[list[str]]:
    """The example command lines at the end of a help, as argv lists after ``mlwright``."""
    _, found, tail = help_text.partition("Examples:")
    assert found, "no examples"
    lines = []
    for line in tail.splitlines():
        words = shlex.split(line, comments=True)
        while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):  # VAR=value mlwright ...
            words = words[1:]
        if words:
            assert words[0] == "mlwright", line
            lines.append(words[1:])
    return lines


@pytest.mark.parametrize("path", list(COMMANDS), ids=lambda p: " ".join(p) or "mlwright")
def test_every_help_ends_with_examples_that_parse(cli: Cli, path: tuple[str, ...]) -> None:
    shown = cli(*path, "--help")
    assert shown.code == 0, shown.err
    examples = _examples(shown.out)
    assert examples, shown.out
    for argv in examples:
        if argv[-1] == "--help":
            continue
        resolved, _ = _parse(argv)
        assert resolved[: len(path)] == path, f"an example of {path} runs {resolved}"


@pytest.mark.parametrize("path", list(LEAVES), ids=" ".join)
def test_choices_are_listed_and_spellings_are_one_per_option(
    cli: Cli, path: tuple[str, ...]
) -> None:
    shown = cli(*path, "--help").out
    command = LEAVES[path]
    ctx = command.make_context(path[-1], [], resilient_parsing=True)
    for param in command.params:
        if getattr(param, "hidden", False) or param.param_type_name != "option":
            continue
        flags = param.get_help_record(ctx)[0]  # e.g. "--task <binary|multiclass|regression>"
        assert flags in shown
        choices = _choices(param)
        if choices:
            assert "|".join(choices) in flags, flags
            assert "<str>" not in flags
        spelled = {"--output": "-o", "--config": "-c", "--quiet": "-q", "--target": "-t"}
        for long, short in spelled.items():
            if long in param.opts:
                assert short in param.opts, f"{' '.join(path)} {long} without {short}"
    for earlier in ("--out ", "--no-quiet", "--workers"):
        if path != ("serve",) or earlier != "--workers":  # serve's worker processes
            assert earlier not in shown


CHOICES = [
    (("profile",), "--task", options.Task),
    (("train",), "--task", options.Task),
    (("train",), "--backend", options.TrainBackend),
    (("train",), "--tracker", options.Tracker),
    (("train",), "--family", options.Family),
    (("train",), "--metric", options.Metric),
    (("profile",), "--metric", options.Metric),
    (("serve",), "--backend", options.ServeBackend),
    (("export",), "--format", options.ExportFormat),
    (("audit",), "--format", options.AuditFormat),
    (("audit",), "--fail-on", options.Severity),
]


@pytest.mark.parametrize(("path", "flag", "kind"), CHOICES, ids=lambda x: str(x))
def test_an_option_with_choices_refuses_others_as_a_usage_error(
    cli: Cli, path: tuple[str, ...], flag: str, kind: Any
) -> None:
    values = [m.value for m in kind] if isinstance(kind, type) else list(get_args(kind))
    param = next(p for p in LEAVES[path].params if flag in p.opts)
    assert _choices(param) == values
    done = cli(*path, "x", flag, "bogus")
    assert done.code == 2
    assert "'bogus' is not one of " + ", ".join(repr(v) for v in values) in done.err
    assert "Traceback" not in done.err


def test_the_choices_are_those_the_code_behind_accepts() -> None:
    from mlwright.audit.core import SEVERITIES
    from mlwright.config import SERVE_BACKENDS, TrainOptions
    from mlwright.data.tasks import METRICS, TASKS
    from mlwright.package.export import Format
    from mlwright.train.models import FAMILIES

    fields = TrainOptions.model_fields
    assert get_args(options.Task) == TASKS
    assert get_args(options.TrainBackend) == get_args(fields["backend"].annotation)
    tracker = get_args(fields["tracker"].annotation)[0]
    assert tuple(t.value for t in options.Tracker) == get_args(tracker)
    assert get_args(options.ServeBackend) == SERVE_BACKENDS
    assert get_args(options.ExportFormat) == get_args(Format)
    assert get_args(options.Severity) == SEVERITIES
    assert get_args(options.Metric) == tuple(METRICS)
    assert {f.value for f in options.Family} == set(FAMILIES)  # PyTorch is installed here


def test_model_arguments_say_every_form_they_take(cli: Cli) -> None:
    for path in [("predict",), ("evaluate",), ("export",), ("reproduce",), ("report",), ("serve",)]:
        model = next(p for p in LEAVES[path].params if p.name == "model")
        assert "package folder" in model.help and "NAME@ALIAS" in model.help, path
        assert "NAME/VERSION" in model.help, path


def test_threads_is_one_option_with_one_default() -> None:
    found = [(path, p) for path, c in LEAVES.items() for p in c.params if "--threads" in p.opts]
    assert {path for path, _ in found} == {("train",), ("serve",)}
    assert {(p.default, p.help, p.metavar) for _, p in found} == {
        (None, options.THREADS_HELP, options.THREADS_METAVAR)
    }
    assert _parse(["train", "x.csv", "-t", "y", "--threads", "auto"])[1]["threads_"] is None
    assert _parse(["serve", "m", "--threads", "3"])[1]["threads_"] == 3
    with pytest.raises(typer.BadParameter, match="give 1 or more, or auto"):
        _parse(["serve", "m", "--threads", "0"])


def test_workers_means_worker_processes_only(cli: Cli) -> None:
    visible = [
        path
        for path, c in LEAVES.items()
        for p in c.params
        if "--workers" in p.opts and not p.hidden
    ]
    assert visible == [("serve",)]
    assert "--concurrent-trials" in cli("train", "--help").out


@pytest.fixture
def trained_with(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, bool]]:
    """What `mlwright train` would train with (options, quiet), instead of training."""
    calls: list[tuple[Any, bool]] = []
    monkeypatch.setattr(
        "mlwright.cli.train._train_and_print",
        lambda data, opts, sql, quiet: calls.append((opts, quiet)),
    )
    return calls


def test_earlier_spellings_still_work(
    cli: Cli, trained_with: list[tuple[Any, bool]], tmp_path: Path
) -> None:
    base = ("train", "x.csv", "-t", "y")
    assert cli(*base, "--out", "models/a", "--no-quiet").code == 0
    assert cli(*base, "-o", "models/b", "-q").code == 0
    assert cli(*base, "--backend", "ray", "--workers", "3").code == 0
    assert cli(*base, "--backend", "ray", "--concurrent-trials", "4", "--threads", "2").code == 0
    config = tmp_path / "train.yaml"
    config.write_text("seed: 5\n")
    assert cli(*base, "-c", str(config)).code == 0
    got = [(o.out, quiet, o.workers, o.threads, o.seed) for o, quiet in trained_with]
    assert got == [
        ("models/a", False, None, None, 0),
        ("models/b", True, None, None, 0),
        (None, False, 3, None, 0),
        (None, False, 4, 2, 0),
        (None, False, None, None, 5),
    ]
    both = cli(*base, "-o", "models/a", "--out", "models/b")
    assert both.code == 2 and "--out is the earlier spelling of --output" in both.err
    assert "ab" in ROOT.commands and ROOT.commands["ab"].hidden


def test_train_torch_takes_its_earlier_out(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    class Stop(Exception):
        pass

    seen: list[Any] = []

    def train_torch(settings: Any, out: Any, **kwargs: Any) -> None:
        seen.append((out, kwargs["verbose"]))
        raise Stop

    monkeypatch.setattr("mlwright.api.read_torch_config", lambda path: type("S", (), {"name": "n"}))
    monkeypatch.setattr("mlwright.api.train_torch", train_torch)
    monkeypatch.setenv("MLWRIGHT_DEBUG", "1")  # let Stop through the entry point
    for argv in (["--out", "a"], ["-o", "b", "-q"]):
        with pytest.raises(Stop):
            cli("train-torch", "-c", "run.yaml", *argv)
    assert seen == [(Path("a"), True), (Path("b"), False)]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "x.csv", "-t", "y", "--workers", "2"], "applies to the Ray backend only"),
        (["serve", "m", "--replicas", "2"], "--replicas does not apply to --backend uvicorn"),
        (["serve", "m", "--challenger", "a", "--shadow", "b"], "give one of --challenger"),
        (["monitor", "--since", "1h", "--last", "5"], "give --since or --last, not both"),
        (["monitor", "--html", "x.pdf"], "x.pdf does not end in .html"),
    ],
)
def test_options_that_do_not_go_together_are_usage_errors(
    cli: Cli, argv: list[str], message: str
) -> None:
    done = cli(*argv)
    assert done.code == 2
    assert message in done.err
    assert "Usage: " in done.err


def test_tables_off_a_terminal_are_not_cut(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlwright.cli.experiment import _print

    monkeypatch.delenv("COLUMNS", raising=False)
    comparison = {
        "metric": "accuracy",
        "challenger": "challenger",
        "treatment": {"n": 123_456, "mean": 0.81234},
        "control": {"n": 1_234_567, "mean": 0.80123},
        "difference": 0.01111,
        "cs_low": -0.0123,
        "cs_high": 0.0345,
        "sequential_p": 0.123,
        "p_value": 0.0456,
        "verdict": "no difference yet",
    }
    _print(
        {
            "id": "churn-ab",
            "status": "running",
            "analysis": {"requests": {"champion": 9, "challenger": 1}, "comparisons": [comparison]},
        }
    )
    out = capsys.readouterr().out
    assert "…" not in out
    row = next(line for line in out.splitlines() if "accuracy" in line)
    for cell in ("challenger", "123,456 / 1,234,567", "[-0.0123, +0.0345]", "0.0456"):
        assert cell in row
    assert "always-valid CI" in out and "p (sequential)" in out


@pytest.mark.parametrize(
    ("flag", "value", "bounds"),
    [
        ("--test-size", "5", "0<=x<0.9"),
        ("--time-budget", "0", "x>0"),
        ("--max-trials", "0", "greaterthanorequalto1"),
        ("--interval", "1.5", "0<x<1"),
        ("--max-model-mb", "-1", "x>0"),
    ],
)
def test_a_number_out_of_range_is_a_usage_error(
    cli: Cli, tmp_path: Path, flag: str, value: str, bounds: str
) -> None:
    done = cli("train", str(tmp_path / "x.csv"), "-t", "y", flag, value)
    assert done.code == 2, done.err
    assert flag in done.err and bounds in done.err.replace(" ", "")
