"""Refusing a PyTorch program (``model/program.pt2``) that could run code when torch loads it.

The package's checksums prove only that the files match a manifest whoever made the package can
recompute, so the program is untrusted input. ``torch.export.load`` unpickles (and so runs) any
weight or constant marked ``use_pickle``, every custom or opaque object, the legacy ``.pt``
weight files and the older archive format, and falls back to ``torch.load(weights_only=False)``
for sample inputs that the safe loader refuses; it loads compiled AOTInductor libraries it
finds; and its graph document holds strings that become code (see
:mod:`mlwright.package.program_graph`).

:func:`check_program` reads the archive with ``zipfile`` and ``json`` and accepts only the
layout ``torch.export.save`` writes: raw tensor weights and constants, sample inputs that load
with ``torch.load(weights_only=True)`` (which cannot run code), and a graph document whose every
operator, expression and guard is on an allow-list. It then asks torch's own archive reader for
the same records, so a zip that two readers see differently (duplicate names) is refused too.
"""

from __future__ import annotations

import io
import json
import re
import warnings
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

from mlwright.package.program_graph import Refused, check_attribute_path, check_document

# the records torch.export.save (torch 2.13/2.14) writes for the one program named "model"
FIXED = frozenset(
    {
        "archive_format",
        "archive_version",
        "byteorder",
        ".data/version",
        ".data/serialization_id",
        "models/model.json",
        "data/weights/model_weights_config.json",
        "data/constants/model_constants_config.json",
        "data/sample_inputs/model.pt",
    }
)
WEIGHT_FILE = re.compile(r"data/weights/(weight_[0-9]+)")
CONSTANT_FILE = re.compile(r"data/constants/(tensor_[0-9]+)")
SAMPLE_INPUTS = "data/sample_inputs/model.pt"
FIX = (
    "do not load this package: its program was not written by torch.export for mlwright. "
    "Re-create it with `mlwright train-torch` from a source you trust"
)


def check_program(path: Path) -> None:
    """Raise a PackageError naming what is refused unless the program at ``path`` is one that
    ``torch.export.load`` reads without unpickling, importing or executing anything it holds."""
    problem = program_problem(path)
    if problem is not None:
        from mlwright.package.store import PackageError

        raise PackageError(
            f"the PyTorch program {path.parent.name}/{path.name} in "
            f"{str(path.parent.parent)!r} is refused: {problem}",
            fix=FIX,
        )


def program_problem(path: Path) -> str | None:
    """Why :func:`check_program` refuses the program at ``path`` (None: it is accepted);
    packaging asks too, so that a program mlwright would not load is never written."""
    try:
        records = _read(path)
        _check_layout(records)
        _check_payload_config(records, "data/weights/model_weights_config.json", "weight_")
        _check_payload_config(records, "data/constants/model_constants_config.json", "tensor_")
        _check_sample_inputs(records[SAMPLE_INPUTS])
        check_document(_json(records, "models/model.json"))
        _check_torch_reads_the_same(path, records)
    except Refused as refused:
        return str(refused)
    return None


def _read(path: Path) -> dict[str, bytes | None]:
    """The archive's records by name under its one top folder: the bytes of every record that
    is interpreted, None for the raw tensor files (never parsed, so never read here)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if not n.endswith("/")]
            _check_names(names)
            cut = len(names[0].split("/", 1)[0]) + 1
            return {
                name[cut:]: None if _is_tensor_file(name[cut:]) else archive.read(name)
                for name in names
            }
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise Refused(f"it is not a readable zip archive ({exc})") from None


def _check_names(names: list[str]) -> None:
    """One top folder (torch's layout; the legacy format has none), each name once (zip readers
    disagree on which of two records with one name counts)."""
    if {"version", "serialized_exported_program.json"} & set(names):
        raise Refused("it is the legacy (pre-pt2) export format, whose weights torch unpickles")
    if (
        not names
        or len({name.split("/", 1)[0] for name in names}) != 1
        or not all("/" in name for name in names)
    ):
        raise Refused("it is not a torch.export archive (all records in one top folder)")
    twice = sorted(name for name, n in Counter(names).items() if n > 1)
    if twice:
        raise Refused(
            f"the archive holds two records named {twice[0]!r}, and zip readers "
            "disagree on which one counts"
        )


def _is_tensor_file(name: str) -> bool:
    return bool(WEIGHT_FILE.fullmatch(name) or CONSTANT_FILE.fullmatch(name))


def _check_layout(records: dict[str, bytes | None]) -> None:
    """The current pt2 format, one program named ``model``, and no record torch would treat
    as pickle, a compiled library or a legacy artifact."""
    if records.get("archive_format") != b"pt2" or records.get("archive_version") != b"0":
        raise Refused("it is not the pt2 archive format, version 0, that torch.export.save writes")
    for name in sorted(records):
        if name not in FIXED and not _is_tensor_file(name):
            raise Refused(f"it holds {name!r}, {_why_unknown(name)}")
    missing = sorted(FIXED - set(records) - {".data/serialization_id", "byteorder"})
    if missing:
        raise Refused(f"it lacks {missing}")


def _why_unknown(name: str) -> str:
    if name.startswith("data/aotinductor/"):
        return "a compiled AOTInductor artifact (native code torch would load)"
    if name.endswith(".pt") or name.endswith(".pkl"):
        return "a pickled legacy payload (torch unpickles it, which can run code)"
    if "custom_obj_" in name or "opaque_obj_" in name:
        kind = "custom" if "custom_obj_" in name else "opaque"
        return f"a pickled {kind} object (torch unpickles it, which can run code)"
    return "which torch.export.save does not write for an exported program"


def _check_payload_config(records: dict[str, bytes | None], name: str, prefix: str) -> None:
    """Every weight or constant is a raw tensor file of the archive, never pickled."""
    config = _json(records, name)
    entries = config.get("config") if isinstance(config, dict) else None
    if not isinstance(entries, dict):
        raise Refused(f"{name} is not a payload configuration")
    folder = name.rsplit("/", 1)[0]
    for fqn, meta in entries.items():
        check_attribute_path(fqn, f"the name of a tensor in {name}")
        if not isinstance(meta, dict):
            raise Refused(f"{name} describes {fqn!r} with {meta!r}")
        file = meta.get("path_name")
        if meta.get("use_pickle") is not False:
            raise Refused(
                f"{fqn!r} is stored as a pickle ({name} sets use_pickle), and "
                "unpickling can run code"
            )
        if not (
            isinstance(file, str) and file.startswith(prefix) and file[len(prefix) :].isdigit()
        ):
            raise Refused(
                f"{fqn!r} is stored in {file!r}, not a raw tensor file "
                "(custom and opaque objects are pickled)"
            )
        if f"{folder}/{file}" not in records:
            raise Refused(f"{fqn!r} is stored in {file!r}, which the archive lacks")
        if not isinstance(meta.get("tensor_meta"), dict):
            raise Refused(f"{fqn!r} has no tensor description in {name}")


def _check_sample_inputs(payload: bytes | None) -> None:
    """torch loads the sample inputs with weights_only=True and, when that fails, unpickles them
    freely: only inputs the safe loader reads are accepted (reading them here cannot run code)."""
    if not payload:
        return
    import torch

    try:
        with warnings.catch_warnings():  # its notices about the pickle protocol: refused anyway
            warnings.simplefilter("ignore")
            loaded = torch.load(io.BytesIO(payload), weights_only=True, map_location="cpu")
    except Exception as exc:
        raise Refused(
            f"its sample inputs ({SAMPLE_INPUTS}) need pickle to load: torch.load with "
            f"weights_only=True refuses them ({_unpickler_reason(exc)}), and torch.export.load "
            "would then unpickle them, which can run code"
        ) from None
    if not isinstance(loaded, (tuple, dict)):
        raise Refused(f"its sample inputs ({SAMPLE_INPUTS}) are a {type(loaded).__name__}")


def _unpickler_reason(exc: Exception) -> str:
    """What torch's weights-only unpickler refused (the text after "WeightsUnpickler error:")."""
    text = str(exc)
    _, found, rest = text.partition("WeightsUnpickler error:")
    lines = [line.strip() for line in (rest if found else text).splitlines() if line.strip()]
    return (lines[0] if lines else type(exc).__name__)[:200]


def _check_torch_reads_the_same(path: Path, records: dict[str, bytes | None]) -> None:
    """torch's archive reader (not zipfile) lists the same records and gives the same bytes for
    each one checked here; reading records runs nothing."""
    import torch

    try:
        reader = torch._C.PyTorchFileReader(str(path))
        names = reader.get_all_records()
        same = sorted(names) == sorted(records) and all(
            reader.get_record(name) == payload
            for name, payload in records.items()
            if payload is not None
        )
    except (RuntimeError, ValueError, OSError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise Refused(f"torch's archive reader cannot read it ({first[:200]})") from None
    if not same:
        raise Refused("torch's archive reader sees different records than zipfile does")


def _json(records: dict[str, bytes | None], name: str) -> Any:
    try:
        return json.loads(records[name] or b"")
    except (ValueError, RecursionError):
        raise Refused(f"{name} is not valid JSON") from None


__all__ = ["check_program", "program_problem"]
