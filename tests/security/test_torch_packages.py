"""A crafted PyTorch package must not run code on any loading path.

Each attack rewrites a real `train-torch` package's ``model/program.pt2`` the way an attacker
would (a payload that creates a marker file), recomputes the checksum manifest so that
verification passes, and checks that ``mlwright.load``, ``load_any``, the MLflow pyfunc loader,
``mlwright predict`` and the server all refuse it, naming the problem, with no marker created.
A control test runs the same files through torch alone and sees the marker appear: the attacks
are real, and the check is what stops them.
"""

from __future__ import annotations

import contextlib
import json
import pickle
import re
import shutil
import subprocess
import sys
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from fastapi.testclient import TestClient

import mlwright as mw
from mlwright.package.program_check import check_program
from mlwright.package.program_graph import Refused, check_guard, check_sympy
from mlwright.package.pyfunc import _load_pyfunc
from mlwright.package.store import PackageError, load_any
from mlwright.package.tensor import TensorInput
from mlwright.serve.app import app_from_spec
from mlwright.torch import TorchConfig, train
from mlwright.torch.loop import TorchTrainingError
from mlwright.torch.package import export_program
from tests.security.packages import recompute_manifest
from tests.track.test_mlflow import free_port

Records = dict[str, bytes]


class Touch:
    """A pickled object whose loading creates ``path`` (what a real payload would do worse)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.path,))


def tokens_config() -> TorchConfig:
    """The token model of tests/byo_torch, tiny, one epoch, untracked."""
    return TorchConfig.from_mapping({
        "name": "tokens-secure",
        "model": "tests.byo_torch.tokens:make_model",
        "data": "tests.byo_torch.tokens:make_data",
        "metrics": ["accuracy"],
        "params": {"vocab": 12, "dim": 4},
        "data_params": {"rows": 20, "seed": 0, "vocab": 12},
        "train": {"epochs": 1, "batch_size": 1, "lr": 0.05},  # lengths differ
        "tracker": ["none"],
    })  # fmt: skip


@pytest.fixture(scope="module")
def torch_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real `train-torch` package: dict inputs, int64 tokens of any length (so the program
    holds symbolic shapes)."""
    folder = tmp_path_factory.mktemp("torch-security")
    model = train(tokens_config(), folder / "pkg", checkpoint_dir=folder / "ckpt", verbose=False)
    assert model.path is not None
    return model.path


# --- the attacks: each rewrites the archive's records; `marker` is the file its payload creates ---


def _document(records: Records, change: Callable[[dict[str, Any]], None]) -> None:
    document = json.loads(records["models/model.json"])
    change(document)
    records["models/model.json"] = json.dumps(document).encode()


def pickled_weight(records: Records, marker: Path) -> None:
    name = "data/weights/model_weights_config.json"
    config = json.loads(records[name])
    meta = next(iter(config["config"].values()))
    meta["use_pickle"] = True
    records[name] = json.dumps(config).encode()
    records[f"data/weights/{meta['path_name']}"] = pickle.dumps(Touch(marker))


def opaque_constant(records: Records, marker: Path) -> None:
    name = "data/constants/model_constants_config.json"
    config = json.loads(records[name])
    config["config"]["evil"] = {"path_name": "opaque_obj_0", "is_param": False,
                                "use_pickle": True, "tensor_meta": None}  # fmt: skip
    records[name] = json.dumps(config).encode()
    records["data/constants/opaque_obj_0"] = pickle.dumps(Touch(marker))


def legacy_weights(records: Records, marker: Path) -> None:
    records["data/weights/model.pt"] = pickle.dumps(Touch(marker))


def pickled_sample_inputs(records: Records, marker: Path) -> None:
    records["data/sample_inputs/model.pt"] = pickle.dumps(Touch(marker))


def os_system_target(records: Records, marker: Path) -> None:
    def change(document: dict[str, Any]) -> None:
        document["graph_module"]["graph"]["nodes"].insert(0, {
            "target": "torch.os.system", "name": "pwn", "metadata": {},
            "inputs": [{"name": "command", "arg": {"as_string": f"touch {marker}"}, "kind": 1}],
            "outputs": [{"as_none": True}],
        })  # fmt: skip

    _document(records, change)


def from_file_target(records: Records, marker: Path) -> None:
    """aten.from_file(shared=True) creates the file it maps: an operator that passes torch's
    own verifier but does I/O."""

    def change(document: dict[str, Any]) -> None:
        graph = document["graph_module"]["graph"]
        graph["tensor_values"]["pwn"] = {
            "dtype": 1, "sizes": [{"as_int": 1}], "requires_grad": False,
            "device": {"type": "cpu", "index": None}, "strides": [{"as_int": 1}],
            "storage_offset": {"as_int": 0}, "layout": 7,
        }  # fmt: skip
        graph["nodes"].insert(0, {
            "target": "torch.ops.aten.from_file.default", "name": "pwn", "metadata": {},
            "inputs": [{"name": "filename", "arg": {"as_string": str(marker)}, "kind": 1},
                       {"name": "shared", "arg": {"as_bool": True}, "kind": 1},
                       {"name": "size", "arg": {"as_int": 1}, "kind": 1}],
            "outputs": [{"as_tensor": {"name": "pwn"}}],
        })  # fmt: skip

    _document(records, change)


def sympy_import(records: Records, marker: Path) -> None:
    payload = f"__import__('pathlib').Path({str(marker)!r}).touch() or "

    def change(document: dict[str, Any]) -> None:
        values = document["graph_module"]["graph"]["tensor_values"]
        for meta in values.values():
            for size in meta["sizes"]:
                if "as_expr" in size:
                    size["as_expr"]["expr_str"] = payload + size["as_expr"]["expr_str"]

    _document(records, change)


def guards_code(records: Records, marker: Path) -> None:
    guard = f"__import__('pathlib').Path({str(marker)!r}).touch() is None"
    _document(records, lambda document: document["guards_code"].append(guard))


def forward_arg_names(records: Records, marker: Path) -> None:
    """A name that is a parameter with an annotation in `def forward(...)`: evaluated when
    `.module()` compiles the module's source."""
    name = f"tokens, x: __import__('pathlib').Path({str(marker)!r}).touch()"

    def change(document: dict[str, Any]) -> None:
        document["graph_module"]["module_call_graph"][0]["signature"]["forward_arg_names"] = [name]

    _document(records, change)


def input_spec_keys(records: Records, marker: Path) -> None:
    """A key of the input structure, written between quotes into the module's forward source
    (torch's own input check rejects the call before that line runs, unless the inputs are
    named to match: no control for this one)."""
    key = f"tokens':tokens, 'x':__import__('pathlib').Path({str(marker)!r}).touch(), 'y"

    def change(document: dict[str, Any]) -> None:
        signature = document["graph_module"]["module_call_graph"][0]["signature"]
        spec = json.loads(signature["in_spec"])
        spec[1]["children_spec"][1]["context"] = json.dumps([key])
        signature["in_spec"] = json.dumps(spec)

    _document(records, change)


def parameter_name(records: Records, marker: Path) -> None:
    """A parameter's name, written between quotes into the module's source (no dots: torch
    splits the name on them)."""
    evil = (f'embed") if 0 else getattr(__import__("os"), "system")("touch {marker}") or '
            'getattr(self, "embed.weight')  # fmt: skip

    def change(document: dict[str, Any]) -> None:
        for spec in document["graph_module"]["signature"]["input_specs"]:
            if spec.get("parameter", {}).get("parameter_name") == "embed.weight":
                spec["parameter"]["parameter_name"] = evil

    _document(records, change)
    name = "data/weights/model_weights_config.json"
    config = json.loads(records[name])
    config["config"][evil] = config["config"].pop("embed.weight")
    records[name] = json.dumps(config).encode()


def keyword_name(records: Records, marker: Path) -> None:
    """A keyword argument's name (a higher-order operator's keywords are written into the
    module's source as `name = value`)."""
    evil = f"x=1, y=__import__('pathlib').Path({str(marker)!r}).touch(), z"

    def change(document: dict[str, Any]) -> None:
        argument = document["graph_module"]["graph"]["nodes"][0]["inputs"][0]
        argument.update(name=evil, kind=2)

    _document(records, change)


def custom_object(records: Records, marker: Path) -> None:
    def change(document: dict[str, Any]) -> None:
        node = document["graph_module"]["graph"]["nodes"][0]
        node["inputs"][0]["arg"] = {"as_custom_obj": {"name": "obj", "class_fqn": "os.system"}}

    _document(records, change)


def legacy_archive(records: Records, marker: Path) -> None:
    """torch 2.7's format: records at the top level, weights pickled."""
    records.clear()
    records["/version"] = b"8.20"
    records["/serialized_exported_program.json"] = b"{}"
    records["/serialized_state_dict.pt"] = pickle.dumps(Touch(marker))


def aoti_library(records: Records, marker: Path) -> None:
    records["data/aotinductor/model/model.so"] = b"\x7fELF"


# name: (attack, what the refusal names, whether the control below shows torch running it)
ATTACKS: dict[str, tuple[Callable[[Records, Path], None], str, bool]] = {
    "pickled weight": (pickled_weight, "stored as a pickle", True),
    "opaque constant": (opaque_constant, "opaque_obj_0.*pickled opaque object", True),
    "legacy weights file": (legacy_weights, r"data/weights/model\.pt.*pickled legacy", True),
    "pickled sample inputs": (pickled_sample_inputs, "sample inputs .* need pickle", True),
    "torch.os.system target": (os_system_target, r"calls 'torch\.os\.system'", False),
    "aten.from_file target": (from_file_target, r"calls 'torch\.ops\.aten\.from_file", True),
    "sympy __import__": (sympy_import, r"shape expression .*__import__", True),
    "guards_code": (guards_code, r"guard .*__import__", True),
    "forward argument names": (forward_arg_names, "forward argument name", True),
    "input spec keys": (input_spec_keys, "key of the program's in_spec", False),
    "parameter name": (parameter_name, "not a plain dotted name", True),
    "keyword argument name": (keyword_name, "a name in the graph is", False),
    "custom object argument": (custom_object, "custom object", False),
    "legacy archive format": (legacy_archive, "legacy", False),
    "AOTInductor library": (aoti_library, "AOTInductor", False),
}


def craft(package: Path, folder: Path, attack: Callable[[Records, Path], None]) -> Path:
    """A copy of ``package`` whose program ``attack`` rewrote (records named from the archive's
    top folder; a leading "/" puts one at the zip's top level), with a manifest recomputed to
    match, as whoever crafts a package can: checksum verification passes."""
    crafted = folder / "crafted"
    shutil.copytree(package, crafted)
    program = crafted / "model" / "program.pt2"
    with zipfile.ZipFile(program) as archive:
        root = archive.namelist()[0].split("/")[0]
        records = {n.split("/", 1)[1]: archive.read(n) for n in archive.namelist()}
    attack(records, folder / "marker")
    with zipfile.ZipFile(program, "w") as archive:
        for name, data in records.items():
            archive.writestr(name[1:] if name.startswith("/") else f"{root}/{name}", data)
    recompute_manifest(crafted)
    return crafted


def serve_spec(package: Path, tmp_path: Path) -> dict[str, str]:
    """What `mlwright serve` hands the server process (tests/byo_torch builds it the same way)."""
    settings = json.dumps({"store": str(tmp_path / "serve.db")})
    return {"MLWRIGHT_SERVE_PACKAGE": str(package), "MLWRIGHT_SERVE_SETTINGS": settings}


def test_our_own_program_passes_the_check_and_predicts(torch_package: Path) -> None:
    check_program(torch_package / "model" / "program.pt2")
    model = mw.load(torch_package)
    assert model.golden is not None
    out = model.predict(model.golden["inputs"])
    assert len(out) == len(model.golden["inputs"]) and "prediction" in out


@pytest.mark.parametrize("name", ATTACKS)
def test_every_loading_path_refuses_the_crafted_program(
    name: str, torch_package: Path, tmp_path: Path, cli: Callable[..., Any]
) -> None:
    attack, reason, _ = ATTACKS[name]
    crafted = craft(torch_package, tmp_path, attack)
    marker = tmp_path / "marker"
    refused = rf"PyTorch program model/program\.pt2 .* is refused: .*{reason}"
    loaders: list[Callable[[], Any]] = [
        lambda: mw.load(crafted),
        lambda: load_any(crafted),
        lambda: _load_pyfunc(str(crafted)),
        lambda: app_from_spec(serve_spec(crafted, tmp_path)),
    ]
    for load in loaders:
        with pytest.raises(PackageError, match=refused):
            load()
        assert not marker.exists()
    data = tmp_path / "x.csv"
    data.write_text("tokens\n1\n")
    result = cli("predict", str(crafted), str(data), "--output", str(tmp_path / "p.csv"))
    assert result.code == 1 and re.search(refused, " ".join(result.err.split()))
    assert not marker.exists()


@pytest.mark.parametrize("name", ["pickled weight", "guards_code"])
def test_mlwright_serve_exits_refusing_the_program_and_never_goes_ready(
    name: str, torch_package: Path, tmp_path: Path
) -> None:
    """The real command: it refuses before it binds (a server that went ready would never exit,
    and the timeout fails the test)."""
    attack, reason, _ = ATTACKS[name]
    crafted = craft(torch_package, tmp_path, attack)
    command = [str(Path(sys.executable).parent / "mlwright"), "serve", str(crafted),
               "--port", str(free_port()), "--store", str(tmp_path / "serve.db")]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert re.search(f"is refused: .*{reason}", " ".join(done.stderr.split())), done.stderr
    assert not (tmp_path / "marker").exists()


@pytest.mark.parametrize("name", [n for n, (_, _, real) in ATTACKS.items() if real])
def test_without_the_check_torch_runs_the_payload(
    name: str, torch_package: Path, tmp_path: Path
) -> None:
    """The control: torch alone (load, build the module, run it once) creates the marker, so
    each refusal above stops a working attack."""
    crafted = craft(torch_package, tmp_path, ATTACKS[name][0])
    with warnings.catch_warnings(), contextlib.suppress(Exception):  # the payload ran, or not
        warnings.simplefilter("ignore")
        module = torch.export.load(str(crafted / "model" / "program.pt2")).module()
        module(tokens=torch.tensor([[1, 2, 3]]))
    assert (tmp_path / "marker").exists()


def test_a_served_untouched_package_still_passes_its_gate(
    torch_package: Path, tmp_path: Path
) -> None:
    with TestClient(app_from_spec(serve_spec(torch_package, tmp_path))) as http:
        assert http.get("/ready").json()["status"] == "ready"


# --- the allow-lists: what torch.export writes passes, nothing else does --------------------------


class TwoInputs(torch.nn.Module):
    """Two inputs whose batch sizes must agree: torch.export writes a guard for it."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = torch.nn.Linear(3, 2), torch.nn.Linear(5, 2)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.a(x) + self.b(y), -1)


class Layers(torch.nn.Module):
    """Convolution, batch norm, a bidirectional LSTM, dropout (eval) and activations."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.norm = torch.nn.Conv1d(3, 4, 3, padding=1), torch.nn.BatchNorm1d(4)
        self.lstm = torch.nn.LSTM(4, 5, batch_first=True, bidirectional=True)
        self.drop, self.head = torch.nn.Dropout(0.3), torch.nn.Linear(10, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.nn.functional.gelu(self.norm(self.conv(x))).transpose(1, 2)
        out, _ = self.lstm(h)
        return torch.sigmoid(self.head(self.drop(out[:, -1])))


class Attention(torch.nn.Module):
    """Embedding, a transformer encoder layer (attention, layer norm) over any length."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(20, 8)
        self.encoder = torch.nn.TransformerEncoderLayer(8, 2, 16, batch_first=True)
        self.head = torch.nn.Linear(8, 3)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(self.embed(tokens)).mean(1))


class FieldNames(torch.nn.Module):
    """Inputs named like fields of the program's document."""

    def __init__(self) -> None:
        super().__init__()
        self.head = torch.nn.Linear(3, 1)

    def forward(self, target: torch.Tensor, name: torch.Tensor) -> torch.Tensor:
        return self.head(target * name).squeeze(-1)


Export = tuple[Callable[[], torch.nn.Module], list[TensorInput], bool, dict[str, Any]]
EXPORTS: dict[str, Export] = {
    "two inputs": (TwoInputs, [TensorInput("x", (3,), "float32"),
                               TensorInput("y", (5,), "float32")],
                   False, {"x": torch.randn(3, 3), "y": torch.randn(3, 5)}),
    "conv, norm, LSTM": (Layers, [TensorInput("x", (3, 9), "float32")], False,
                         {"x": torch.randn(3, 3, 9)}),
    "inputs named target and name": (FieldNames, [TensorInput("target", (3,), "float32"),
                                                  TensorInput("name", (3,), "float32")],
                                     True, {"target": torch.randn(3, 3),
                                            "name": torch.randn(3, 3)}),
    "attention, any length": (Attention, [TensorInput("tokens", (None,), "int64")], True,
                              {"tokens": torch.randint(0, 20, (3, 7))}),
}  # fmt: skip


@pytest.mark.parametrize("name", EXPORTS)
def test_programs_of_common_layers_pass(name: str, tmp_path: Path) -> None:
    """mlwright's own export (dynamic batch, and length where examples differ) of the layers
    users train passes the check, guards and symbolic shapes included."""
    factory, spec, keyword, example = EXPORTS[name]
    program = export_program(factory().eval(), spec, keyword, example)
    (tmp_path / "model").mkdir()
    torch.export.save(program, str(tmp_path / "model" / "program.pt2"))
    check_program(tmp_path / "model" / "program.pt2")


class Erfinv(torch.nn.Module):
    """A model whose program calls an operator outside the allow-list (aten.special_erfinv)."""

    def __init__(self) -> None:
        super().__init__()
        self.embed, self.head = torch.nn.Embedding(12, 4), torch.nn.Linear(4, 2)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(torch.special.erfinv(torch.tanh(self.embed(tokens)) / 2).mean(1))


def test_train_torch_never_packages_a_program_loading_would_refuse(tmp_path: Path) -> None:
    with pytest.raises(TorchTrainingError, match=r"could not be loaded .*aten\.special_erfinv"):
        train(tokens_config(), tmp_path / "pkg", checkpoint_dir=tmp_path / "ckpt",
              model_factory=lambda params: Erfinv(), verbose=False)  # fmt: skip
    assert not (tmp_path / "pkg").exists()


def test_a_record_named_twice_is_refused(torch_package: Path, tmp_path: Path) -> None:
    """zipfile reads the last of two same-named records, torch's reader the first: a checked
    record and a loaded one could differ."""
    program = tmp_path / "program.pt2"
    shutil.copy(torch_package / "model" / "program.pt2", program)
    with zipfile.ZipFile(program) as archive:
        name = next(n for n in archive.namelist() if n.endswith("models/model.json"))
    with warnings.catch_warnings(), zipfile.ZipFile(program, "a") as archive:
        warnings.simplefilter("ignore")  # zipfile's own "Duplicate name" notice
        archive.writestr(name, b"{}")
    with pytest.raises(PackageError, match=r"two records named .*models/model\.json"):
        check_program(program)


@pytest.mark.parametrize(
    "text",
    [
        "Symbol('s52', positive=True, integer=True)",
        "Mul(Integer(2), Min(Integer(8), Mul(Integer(16), Symbol('s52', positive=True))))",
        "Add(Integer(-1), FloorDiv(Symbol('s0', integer=True), Integer(2)))",
    ],
)
def test_the_shape_expressions_torch_writes_pass(text: str) -> None:
    check_sympy(text)


@pytest.mark.parametrize(
    "text",
    [
        "Symbol('__import__')",
        "Symbol('s0', positive=__import__('os').getpid())",
        "Integer(1).__class__",
        "exec('1')",
        "Integer(s0)",
        "Integer('1')",
        "Symbol('s0')[0]",
        "(lambda: Integer(1))()",
        "Mul(Integer(2), Symbol('s0', exec=True))",
        "Integer(1); Integer(2)",
    ],
)
def test_any_other_shape_expression_is_refused(text: str) -> None:
    with pytest.raises(Refused, match="shape expression"):
        check_sympy(text)


@pytest.mark.parametrize(
    "text",
    [
        "L['x'].size()[0] == L['y'].size()[0]",
        "L['x'].size()[1] >= 3",
        "2 <= L['tokens'].size()[1] % 4 + 1 and not L['x'].stride()[0] == -1",
    ],
)
def test_the_guards_torch_writes_pass(text: str) -> None:
    check_guard(text)


@pytest.mark.parametrize(
    "text",
    [
        "L['x'].size()[0] == __import__('os').getpid()",
        "L['x'].__class__ is None",
        "L['x'].size()[0] ** 99999999 > 0",
        "L['x'.join('y')].size()[0] == 1",
        "L['x'].size(0) == 1",
        "L['x'].numpy()[0] == 1",
        "(lambda: 1)() == 1",
        "M['x'].size()[0] == 1",
        "L['x'].size()[0] == 'a'",
    ],
)
def test_any_other_guard_is_refused(text: str) -> None:
    with pytest.raises(Refused, match="guard"):
        check_guard(text)


def test_export_refuses_an_onnx_model_that_reads_external_files(
    torch_package: Path, tmp_path: Path
) -> None:
    """ONNX external data would make onnxruntime read any file on the machine as weights."""
    import onnx

    from mlwright.package.export import ExportError

    crafted = tmp_path / "external"
    shutil.copytree(torch_package, crafted)
    proto = onnx.load(str(crafted / "model" / "model.onnx"))
    weight = proto.graph.initializer[0]
    weight.ClearField("raw_data")
    weight.data_location = onnx.TensorProto.EXTERNAL
    weight.external_data.add(key="location", value="/etc/hostname")
    onnx.save(proto, str(crafted / "model" / "model.onnx"))
    recompute_manifest(crafted)
    with pytest.raises(ExportError, match="refers to external data files"):
        mw.export(crafted, "onnx", tmp_path / "out")
    assert not (tmp_path / "out").exists()
