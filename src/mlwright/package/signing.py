"""Who made a package: Ed25519 signatures over its manifest, and the trust policy that checks them.

The checksum manifest (``mlwright.json``) proves a package is whole, not who wrote it: anyone can
recompute it. A signature (``mlwright.sig``) over the manifest's exact bytes proves that the holder
of a private key wrote this manifest, and the manifest covers every file mlwright reads.

- Signing: when ``MLWRIGHT_SIGNING_KEY`` names a private key (``mlwright keys new`` makes one),
  every package and export mlwright writes is signed; ``mlwright keys sign`` signs one later.
- Trust: ``MLWRIGHT_TRUSTED_KEYS`` (public key files or folders of ``*.pub``, separated like
  ``PATH``) or the keys in ``<config>/mlwright/trusted-keys/`` (``mlwright keys trust``). When
  either names a key, every load refuses a package that is unsigned, signed by another key, or
  whose manifest changed after signing. With no trusted key, signatures are checked when
  present (a signature that does not match its manifest is refused) but not required.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlwright.errors import SignatureError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

SIGNATURE = "mlwright.sig"
SIGNING_KEY_ENV = "MLWRIGHT_SIGNING_KEY"
TRUSTED_KEYS_ENV = "MLWRIGHT_TRUSTED_KEYS"
_FORMAT = 1


@dataclass(frozen=True)
class Signature:
    """The contents of ``mlwright.sig``."""

    key_id: str
    public_key: str  # raw Ed25519 public key, base64
    signature: str  # over the signed file's bytes, base64
    signed_file: str

    def tag(self) -> str:
        """The registry tag value: enough to compare with a downloaded package's file."""
        return f"ed25519:{self.key_id}:{self.signature}"


@dataclass(frozen=True)
class Verdict:
    """What the trust policy concluded about a folder."""

    signature: Signature | None
    trusted: bool  # signed by a key the trust policy names (then a policy is in force)

    def describe(self) -> str:
        if self.signature is None:
            return "unsigned"
        who = "a trusted key" if self.trusted else "no trust policy here to vouch for it"
        return f"signed by {self.signature.key_id} ({who})"


# --- keys -----------------------------------------------------------------------------------------


def config_dir() -> Path:
    """``$XDG_CONFIG_HOME/mlwright`` (``~/.config/mlwright`` by default)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "mlwright"


def key_id(public: Ed25519PublicKey) -> str:
    """A short, stable name for a public key: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(_raw(public)).hexdigest()[:16]


def new_key(folder: Path, name: str) -> tuple[Path, Path, str]:
    """A new Ed25519 key pair as ``NAME.key`` (private, PKCS#8 PEM, owner-only) and ``NAME.pub``
    in ``folder``; returns (private path, public path, key id). Existing files are never
    overwritten."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if not name or not all(c.isalnum() or c in "-_." for c in name) or name.startswith("."):
        raise SignatureError(
            f"key name {name!r} is not usable as a file name",
            fix="use letters, digits, '-', '_' or '.', e.g. --name release",
        )
    folder = folder.expanduser().resolve()
    private_path, public_path = folder / f"{name}.key", folder / f"{name}.pub"
    for path in (private_path, public_path):
        if path.exists():
            raise SignatureError(
                f"{path} already exists; refusing to overwrite a key",
                fix="choose another --name or --output folder",
            )
    key = Ed25519PrivateKey.generate()
    folder.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    public = key.public_key()
    public_path.write_bytes(
        public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private_path, public_path, key_id(public)


def load_private(path: Path) -> Ed25519PrivateKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = _load_key(
        path,
        "signing key",
        lambda data: serialization.load_pem_private_key(data, password=None),
        "an unencrypted PEM private key",
        fix="make one with `mlwright keys new` and point MLWRIGHT_SIGNING_KEY at its .key",
    )
    if not isinstance(key, Ed25519PrivateKey):
        raise SignatureError(
            f"signing key {str(path)!r} is a {type(key).__name__}, not an Ed25519 key",
            fix="make an Ed25519 key with `mlwright keys new`",
        )
    return key


def load_public(path: Path) -> Ed25519PublicKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    fix = "use the .pub file that `mlwright keys new` wrote"
    key = _load_key(
        path, "trusted key", serialization.load_pem_public_key, "a PEM public key", fix=fix
    )
    if not isinstance(key, Ed25519PublicKey):
        raise SignatureError(
            f"trusted key {str(path)!r} is a {type(key).__name__}, not an Ed25519 key", fix=fix
        )
    return key


def _load_key(path: Path, what: str, parse: Callable[[bytes], Any], form: str, *, fix: str) -> Any:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SignatureError(
            f"{what} {str(path)!r} cannot be read ({exc.strerror or exc})",
            fix=f"check the path given for the {what}",
        ) from None
    if len(data) > 64 * 1024:
        raise SignatureError(f"{what} {str(path)!r} is too large to be a key", fix="check the path")
    try:
        return parse(data)
    except (ValueError, TypeError) as exc:
        raise SignatureError(f"{what} {str(path)!r} is not {form} ({exc})", fix=fix) from None


def _raw(public: Ed25519PublicKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def signing_key_path() -> Path | None:
    """The private key packages are signed with, when one is configured."""
    value = os.environ.get(SIGNING_KEY_ENV, "").strip()
    return Path(value).expanduser() if value else None


def trusted_keys() -> dict[str, Ed25519PublicKey]:
    """The trust policy's keys by key id: ``MLWRIGHT_TRUSTED_KEYS`` when set, else the trust
    folder in the config directory. Empty: no policy."""
    value = os.environ.get(TRUSTED_KEYS_ENV, "").strip()
    if value:
        sources = [Path(p).expanduser() for p in value.split(os.pathsep) if p.strip()]
        for source in sources:
            if not source.exists():
                raise SignatureError(
                    f"{TRUSTED_KEYS_ENV} names {str(source)!r}, which does not exist",
                    fix="list public key files (.pub) or folders of them, separated by "
                    f"{os.pathsep!r}",
                )
    else:
        folder = config_dir() / "trusted-keys"
        sources = [folder] if folder.is_dir() else []
    keys: dict[str, Ed25519PublicKey] = {}
    for source in sources:
        files = sorted(source.glob("*.pub")) if source.is_dir() else [source]
        for file in files:
            public = load_public(file)
            keys[key_id(public)] = public
    if value and not keys:  # a policy asked for that trusts nothing must not turn itself off
        raise SignatureError(
            f"{TRUSTED_KEYS_ENV} names no public key (no *.pub file in {value!r})",
            fix="point it at the .pub files that `mlwright keys new` wrote, or unset it",
        )
    return keys


def trust(public_file: Path) -> tuple[Path, str]:
    """Copy a public key into the config directory's trust folder; returns (path, key id)."""
    public = load_public(public_file)
    ident = key_id(public)
    folder = config_dir() / "trusted-keys"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{ident}.pub"
    target.write_bytes(public_file.read_bytes())
    return target, ident


# --- signatures -----------------------------------------------------------------------------------


def sign(root: Path, signed_file: str, key_path: Path | None = None) -> Signature | None:
    """Sign ``root/signed_file`` with ``key_path`` (default: the configured key) into
    ``root/mlwright.sig``; None when no key is configured."""
    key_path = key_path or signing_key_path()
    if key_path is None:
        return None
    key = load_private(key_path)
    public = key.public_key()
    signature = Signature(
        key_id=key_id(public),
        public_key=base64.b64encode(_raw(public)).decode(),
        signature=base64.b64encode(key.sign((root / signed_file).read_bytes())).decode(),
        signed_file=signed_file,
    )
    payload = {"format": _FORMAT, "algorithm": "ed25519", **signature.__dict__}
    (root / SIGNATURE).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return signature


def read_signature(root: Path) -> Signature | None:
    """``root/mlwright.sig``, parsed; None when the folder has none."""
    path = root / SIGNATURE
    if not path.is_file():
        return None
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != _FORMAT or data.get("algorithm") != "ed25519":
            raise ValueError(f"format {data.get('format')!r}, algorithm {data.get('algorithm')!r}")
        fields = {k: data[k] for k in ("key_id", "public_key", "signature", "signed_file")}
        if not all(isinstance(v, str) for v in fields.values()):
            raise ValueError("a field is not a string")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SignatureError(
            f"{path} is not a signature mlwright can read ({exc})",
            fix="sign the package again with `mlwright keys sign`",
        ) from None
    return Signature(**fields)


def check(root: Path, signed_file: str) -> Verdict:
    """Apply the trust policy to the folder at ``root``; raises SignatureError on a refusal."""
    keys = trusted_keys()
    signature = read_signature(root)
    if signature is None:
        if keys:
            raise SignatureError(
                f"{str(root)!r} is not signed, and packages must be signed by a trusted key "
                f"({', '.join(sorted(keys))})",
                fix="sign it (`mlwright keys sign PACKAGE --key KEY`, or set "
                f"{SIGNING_KEY_ENV} when training), or load it where no trust policy is set",
            )
        return Verdict(None, trusted=False)
    if signature.signed_file != signed_file:
        raise SignatureError(
            f"{root / SIGNATURE} signs {signature.signed_file!r}, not {signed_file!r}",
            fix="sign the package again with `mlwright keys sign`",
        )
    public = keys.get(signature.key_id)
    if public is None and keys:
        raise SignatureError(
            f"{str(root)!r} is signed by key {signature.key_id}, which is not trusted here "
            f"(trusted: {', '.join(sorted(keys))})",
            fix=f"if you trust its author, add their public key to {TRUSTED_KEYS_ENV} or run "
            "`mlwright keys trust THEIR_KEY.pub`",
        )
    if public is None:  # no policy: the key in the file proves consistency, not origin
        public = _embedded(root, signature)
    _verify(root, signature, public)
    return Verdict(signature, trusted=bool(keys))


def _embedded(root: Path, signature: Signature) -> Ed25519PublicKey:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        public = Ed25519PublicKey.from_public_bytes(base64.b64decode(signature.public_key))
    except (ValueError, TypeError):
        raise SignatureError(
            f"{root / SIGNATURE} holds a damaged public key",
            fix="sign the package again with `mlwright keys sign`",
        ) from None
    if key_id(public) != signature.key_id:
        raise SignatureError(
            f"{root / SIGNATURE}: its key id does not match its public key",
            fix="sign the package again with `mlwright keys sign`",
        )
    return public


def _verify(root: Path, signature: Signature, public: Ed25519PublicKey) -> None:
    from cryptography.exceptions import InvalidSignature

    try:
        public.verify(
            base64.b64decode(signature.signature), (root / signature.signed_file).read_bytes()
        )
    except (InvalidSignature, ValueError):
        raise SignatureError(
            f"{str(root)!r}: the signature by key {signature.key_id} does not match "
            f"{signature.signed_file} (the package changed after it was signed)",
            fix="do not load it; retrain, or fetch the package again from its author",
        ) from None
