"""`mlwright keys ...`: signing keys, signing a package, checking one against the trust policy."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlwright.cli.options import examples

keys_app = typer.Typer(
    help="Signing keys and the trust policy: who may have written the models you load.",
    no_args_is_help=True,
    epilog=examples("mlwright keys new --name release", "mlwright keys verify models/churn"),
)


@keys_app.command(
    "new",
    epilog=examples("mlwright keys new", "mlwright keys new --name release -o ~/.mlwright-keys"),
)
def keys_new(
    name: Annotated[str, typer.Option(help="File name of the key pair (NAME.key, NAME.pub).")] = (
        "mlwright"
    ),
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Folder for the keys (default: <config>/keys)."),
    ] = None,
) -> None:
    """Make an Ed25519 key pair: NAME.key (private, owner-only) and NAME.pub (to share); then
    `export MLWRIGHT_SIGNING_KEY=.../NAME.key` signs what you train and export."""
    from mlwright.api import SIGNING_KEY_ENV, TRUSTED_KEYS_ENV, new_key

    private, public, ident = new_key(name, output)
    typer.echo(f"key {ident}")
    typer.echo(f"  private: {private}   (keep it secret; never commit it)")
    typer.echo(f"  public:  {public}   (give it to whoever loads your models)")
    typer.echo(f"sign what you train and export:  export {SIGNING_KEY_ENV}={private}")
    typer.echo(f"require it where models load:    export {TRUSTED_KEYS_ENV}={public}")


@keys_app.command(
    "sign",
    epilog=examples(
        "mlwright keys sign models/churn",
        "mlwright keys sign exports/churn --key ~/.config/mlwright/keys/release.key",
    ),
)
def keys_sign(
    folder: Annotated[Path, typer.Argument(help="A package or export folder written by mlwright.")],
    key: Annotated[
        Path | None,
        typer.Option(help="Private key (default: MLWRIGHT_SIGNING_KEY)."),
    ] = None,
) -> None:
    """Sign a package or an export that was written without a key (its checksums are checked
    first)."""
    from mlwright.api import SIGNING_KEY_ENV, sign
    from mlwright.errors import ConfigError

    signature = sign(folder, key)
    if signature is None:
        raise ConfigError(
            "no signing key given",
            fix=f"pass --key FILE.key or set {SIGNING_KEY_ENV} (`mlwright keys new` makes one)",
        )
    typer.echo(f"signed {folder} with key {signature.key_id}")


@keys_app.command(
    "verify",
    epilog=examples(
        "mlwright keys verify models/churn",
        "MLWRIGHT_TRUSTED_KEYS=release.pub mlwright keys verify exports/churn",
    ),
)
def keys_verify(
    folder: Annotated[Path, typer.Argument(help="A package or export folder written by mlwright.")],
) -> None:
    """Check a package or export: its checksums, then its signature against the trust policy
    (exit 1 when loading it would be refused)."""
    from mlwright.api import trusted_keys, verify

    verdict = verify(folder)
    typer.echo(f"{folder}: checksums ok; {verdict.describe()}")
    keys = ", ".join(trusted_keys()) if verdict.trusted else ""
    typer.echo(f"trust policy: {keys or 'none (signatures are checked, not required)'}")


@keys_app.command("trust", epilog=examples("mlwright keys trust release.pub"))
def keys_trust(
    public: Annotated[Path, typer.Argument(help="A public key (.pub) to trust.")],
) -> None:
    """Trust a public key on this machine (copied into <config>/trusted-keys). From then on,
    every model loaded here must be signed by a trusted key."""
    from mlwright.api import trust

    path, ident = trust(public)
    typer.echo(f"trusting key {ident} ({path}); unsigned or foreign packages are now refused")
