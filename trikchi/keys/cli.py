"""``flask keys``: the signing key life cycle from the shell (SPEC §7)."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from trikchi.keys import material

keys_cli = AppGroup("keys", help="Manage the keys that sign access tokens.")


def _refused(error: Exception) -> click.ClickException:
    return click.ClickException(str(error))


@keys_cli.command("list")
def list_command() -> None:
    """Every key: kid, algorithm, state and when it changed state (never key material)."""
    from trikchi.keys.services import summaries

    rows = summaries()
    if not rows:
        click.echo(
            "No signing keys." + ("" if current_app.config["JWT_ALGORITHM"] != "HS256" else " (HS256 mode)")
        )
        return
    for key in rows:
        when = key.retired_at or key.deactivated_at or key.activated_at or key.created_at
        click.echo(f"{key.kid}  {key.alg:<5}  {key.state:<8}  since {when.isoformat(timespec='seconds')}")


@keys_cli.command("add")
@click.option("--alg", type=click.Choice(material.ASYMMETRIC_ALGORITHMS), help="Default: JWT_ALGORITHM.")
def add_command(alg: str | None) -> None:
    """Create a standby key: published in the JWKS now, signing after `flask keys rotate`."""
    from trikchi.keys.services import KeyOperationRefused, add_key, publication_wait

    try:
        key = add_key(alg)
    except KeyOperationRefused as error:
        raise _refused(error) from None
    wait = int(publication_wait().total_seconds())
    click.echo(f"Added standby key {key.kid} ({key.alg}); `flask keys rotate` is possible in {wait} s.")


@keys_cli.command("rotate")
@click.option("--force", is_flag=True, help="Rotate even if verifiers may not have fetched the new key yet.")
def rotate_command(force: bool) -> None:
    """Standby → current (signs from now on), current → previous (still verifies)."""
    from trikchi.keys.services import KeyOperationRefused, last_token_lifetime, rotate

    try:
        current, previous = rotate(force=force)
    except KeyOperationRefused as error:
        raise _refused(error) from None
    click.echo(f"{current.kid} ({current.alg}) is current; every worker follows within KEYS_RELOAD_SECONDS.")
    if previous is not None:
        wait = int(last_token_lifetime().total_seconds())
        click.echo(f"{previous.kid} is previous; `flask keys retire {previous.kid}` is possible in {wait} s.")


@keys_cli.command("retire")
@click.argument("kid")
@click.option("--force", is_flag=True, help="Retire even if tokens it signed may still be unexpired.")
def retire_command(kid: str, force: bool) -> None:
    """Previous → retired: removed from the JWKS, tokens it signed are refused."""
    from trikchi.keys.services import KeyOperationRefused, retire

    try:
        key = retire(kid, force=force)
    except KeyOperationRefused as error:
        raise _refused(error) from None
    click.echo(f"{key.kid} is retired.")


@keys_cli.command("reencrypt")
def reencrypt_command() -> None:
    """Re-encrypt every private key under the first SIGNING_KEYS_SECRET (after adding a new one)."""
    from trikchi.keys.services import reencrypt_all

    try:
        count = reencrypt_all()
    except material.KeyDecryptionError as error:
        raise _refused(error) from None
    click.echo(f"Re-encrypted {count} key(s).")
