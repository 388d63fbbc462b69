"""Signed packages and the trust policy: who wrote a package, not only whether it is whole."""

from __future__ import annotations

import json
import shutil
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import mlwright as mw
from mlwright.package.export import verify_export
from mlwright.package.signing import SIGNATURE, SignatureError, new_key, read_signature, sign
from mlwright.package.store import MANIFEST
from mlwright.track.mlflow import SIGNATURE_TAG, find_version
from tests.conftest import CliResult, make_frame
from tests.security.packages import recompute_manifest, register


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    folder = tmp_path_factory.mktemp("keys")
    return {name: new_key(folder, name)[:2] for name in ("release", "stranger")}


@pytest.fixture
def signed(linear_package: Path, keys: dict[str, tuple[Path, Path]], tmp_path: Path) -> Path:
    copy = tmp_path / "signed"
    shutil.copytree(linear_package, copy)
    assert sign(copy, MANIFEST, keys["release"][0]) is not None
    return copy


def test_keys_new_writes_an_owner_only_key_pair_and_never_overwrites(
    cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    made = cli("keys", "new", "--name", "ci", "--output", str(tmp_path))
    assert made.code == 0, made.err
    private, public = tmp_path / "ci.key", tmp_path / "ci.pub"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert b"PRIVATE KEY" in private.read_bytes() and b"PUBLIC KEY" in public.read_bytes()
    assert f"MLWRIGHT_SIGNING_KEY={private}" in made.out
    again = cli("keys", "new", "--name", "ci", "--output", str(tmp_path))
    assert again.code == 1
    assert "refusing to overwrite a key" in again.err
    assert cli("keys", "new", "--name", "../x", "--output", str(tmp_path)).code == 1


def test_train_and_export_sign_with_the_configured_key(
    keys: dict[str, tuple[Path, Path]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    private, public = keys["release"]
    monkeypatch.setenv("MLWRIGHT_SIGNING_KEY", str(private))
    model = mw.train(
        make_frame(200), target="churned", name="sec-signed", max_trials=1,
        families=("linear",), out=str(tmp_path / "pkg"),
    )  # fmt: skip
    signature = read_signature(tmp_path / "pkg")
    assert signature is not None
    # the registry records the signature; the version loads under the policy
    version, tags = find_version("sec-signed", alias="champion")
    assert tags[SIGNATURE_TAG] == signature.tag()
    monkeypatch.setenv("MLWRIGHT_TRUSTED_KEYS", str(public))
    assert mw.load(tmp_path / "pkg").name == model.name
    assert mw.load(f"sec-signed/{version}").name == model.name
    exported = mw.export(model, "onnx", tmp_path / "onnx")
    assert (exported.output / SIGNATURE).is_file()
    verdict = verify_export(exported.output)
    assert verdict is not None and verdict.trusted
    (exported.output / "model.onnx").write_bytes(b"replaced")
    with pytest.raises(mw.MlwrightError, match=r"model\.onnx was modified"):
        verify_export(exported.output)


def test_the_trust_policy_refuses_unsigned_foreign_and_altered_packages(
    linear_package: Path,
    signed: Path,
    keys: dict[str, tuple[Path, Path]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    cli: Callable[..., CliResult],
) -> None:
    monkeypatch.setenv("MLWRIGHT_TRUSTED_KEYS", str(keys["release"][1]))
    assert mw.load(signed).name == "churned"
    with pytest.raises(SignatureError, match="is not signed, and packages must be signed"):
        mw.load(linear_package)
    data = tmp_path / "rows.csv"
    make_frame(5).drop(columns="churned").to_csv(data, index=False)
    for command in (
        ("predict", str(linear_package), str(data), "--output", str(tmp_path / "out.csv")),
        ("serve", str(linear_package), "--port", "1", "--store", str(tmp_path / "s.db")),
    ):
        refused = cli(*command)
        assert refused.code == 1
        assert "is not signed" in refused.err
    assert not (tmp_path / "out.csv").exists()
    foreign = tmp_path / "foreign"
    shutil.copytree(linear_package, foreign)
    sign(foreign, MANIFEST, keys["stranger"][0])
    with pytest.raises(SignatureError, match="which is not trusted here"):
        mw.load(foreign)
    # someone without the key edits a signed package and recomputes its manifest
    golden = signed / "golden" / "expected.json"
    golden.write_text(json.dumps(json.loads(golden.read_text())[::-1]))
    recompute_manifest(signed)
    with pytest.raises(SignatureError, match="changed after it was signed"):
        mw.load(signed)
    monkeypatch.delenv("MLWRIGHT_TRUSTED_KEYS")  # without a policy, a broken signature still fails
    with pytest.raises(SignatureError, match="changed after it was signed"):
        mw.load(signed)
    assert mw.load(linear_package).name == "churned"  # and unsigned packages load as before


def test_trusting_a_key_in_the_config_folder_turns_the_policy_on(
    linear_package: Path,
    signed: Path,
    keys: dict[str, tuple[Path, Path]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    cli: Callable[..., CliResult],
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    assert cli("keys", "verify", str(linear_package)).code == 0
    assert cli("keys", "trust", str(keys["release"][1])).code == 0
    verified = cli("keys", "verify", str(signed))
    assert verified.code == 0
    assert "(a trusted key)" in verified.out
    refused = cli("keys", "verify", str(linear_package))
    assert refused.code == 1
    assert "is not signed" in refused.err
    unsigned = tmp_path / "later"
    shutil.copytree(linear_package, unsigned)
    assert cli("keys", "sign", str(unsigned), "--key", str(keys["release"][0])).code == 0
    assert mw.load(unsigned).name == "churned"


def test_a_registry_version_whose_signature_was_swapped_is_refused(
    linear_package: Path, signed: Path
) -> None:
    """The registry records the signature: replacing the stored package by an unsigned one
    (with a matching checksum tag) or dropping the tag is caught on every load."""
    signature = read_signature(signed)
    assert signature is not None
    unsigned = register(linear_package, "sec-swap", {SIGNATURE_TAG: signature.tag()})
    with pytest.raises(mw.MlwrightError, match="signature does not match the one recorded"):
        mw.load(f"sec-swap/{unsigned}")
    untagged = register(signed, "sec-swap")
    with pytest.raises(mw.MlwrightError, match="the version records no signature"):
        mw.load(f"sec-swap/{untagged}")
    tagged = register(signed, "sec-swap", {SIGNATURE_TAG: signature.tag()})
    assert mw.load(f"sec-swap/{tagged}").name == "churned"


def test_unusable_keys_are_named(
    linear_package: Path,
    keys: dict[str, tuple[Path, Path]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    junk = tmp_path / "junk.pub"
    junk.write_text("not a key")
    monkeypatch.setenv("MLWRIGHT_TRUSTED_KEYS", str(junk))
    with pytest.raises(SignatureError, match=r"trusted key .*junk\.pub' is not a PEM public key"):
        mw.load(linear_package)
    monkeypatch.setenv("MLWRIGHT_TRUSTED_KEYS", str(tmp_path / "missing.pub"))
    with pytest.raises(SignatureError, match=r"MLWRIGHT_TRUSTED_KEYS names .*missing\.pub"):
        mw.load(linear_package)
    monkeypatch.delenv("MLWRIGHT_TRUSTED_KEYS")
    copy = tmp_path / "copy"
    shutil.copytree(linear_package, copy)
    with pytest.raises(SignatureError, match="is not an unencrypted PEM private key"):
        sign(copy, MANIFEST, keys["release"][1])  # the public half by mistake
    assert not (copy / SIGNATURE).exists()


def test_a_trust_policy_that_names_no_key_is_an_error(
    linear_package: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "release.pem").write_text("not a .pub file")
    monkeypatch.setenv("MLWRIGHT_TRUSTED_KEYS", str(tmp_path / "keys"))
    with pytest.raises(SignatureError, match="names no public key"):
        mw.load(linear_package)


def test_reload_refuses_an_unsigned_version_under_a_policy(
    linear_package: Path, signed: Path, keys: dict[str, tuple[Path, Path]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from fastapi.testclient import TestClient

    from mlwright.serve.app import ServeSettings, create_app

    signature = read_signature(signed)
    assert signature is not None
    unsigned = register(linear_package, "sec-reload")
    trusted = register(signed, "sec-reload", {SIGNATURE_TAG: signature.tag()})
    monkeypatch.setenv("MLWRIGHT_TRUSTED_KEYS", str(keys["release"][1]))
    app = create_app(mw.load(signed), settings=ServeSettings(admin_token="t0ken"))  # type: ignore[arg-type]
    with TestClient(app.state.asgi) as client:

        def reload(version: str) -> Any:
            body = {"model": f"sec-reload/{version}"}
            return client.post(
                "/v1/admin/reload", json=body, headers={"Authorization": "Bearer t0ken"}
            )

        refused = reload(unsigned)
        assert refused.status_code == 409
        assert "is not signed" in refused.json()["reason"]
        assert reload(trusted).json() == {"status": "swapped", "version": trusted}
