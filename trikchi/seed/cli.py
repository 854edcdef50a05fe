"""``flask users import-seed DATABASE_URL``: the operator's side of the import."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from trikchi.auth.models import ROLES


def _role_pairs(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    """``--map-role seller=customer`` → {"seller": "customer"}."""
    mapping = {}
    for value in values:
        seed_role, _, role = value.partition("=")
        if not seed_role.strip() or role not in ROLES:
            raise click.BadParameter(
                f"{value!r}: expected SEED_ROLE=ROLE with ROLE one of {', '.join(ROLES)}"
            )
        mapping[seed_role.strip().lower()] = role
    return mapping


@click.command("import-seed")
@with_appcontext
@click.argument("database_url")
@click.option("--batch-size", type=click.IntRange(1, 10_000), default=1000, show_default=True)
@click.option(
    "--map-role",
    "role_map",
    multiple=True,
    callback=_role_pairs,
    metavar="SEED_ROLE=ROLE",
    help="Import the seed's role SEED_ROLE as ROLE (repeatable); customer and admin map to themselves.",
)
@click.option("--dry-run", is_flag=True, help="Check every row and report, but write nothing.")
def import_seed_command(database_url: str, batch_size: int, role_map: dict[str, str], dry_run: bool) -> None:
    """Import the users of the seed's service from DATABASE_URL, with the same ids.

    Idempotent: users imported before are left as they are. Rows that cannot be imported
    are listed by seed id with the reason, and skipped.
    """
    from trikchi.seed.importer import REASONS, SeedSourceError, import_seed_users, source_engine

    try:
        source = source_engine(database_url)
    except SeedSourceError as error:
        raise click.ClickException(str(error)) from None
    try:
        report = import_seed_users(
            source,
            batch_size=batch_size,
            role_map=role_map,
            dry_run=dry_run,
            progress=lambda done, total: (
                click.echo(f"… {done}/{total} rows", err=True) if total > batch_size else None
            ),
        )
    except SeedSourceError as error:
        raise click.ClickException(str(error)) from None
    finally:
        source.dispose()
    verb = "Would import" if dry_run else "Imported"
    click.echo(
        f"{verb} {report.imported} user(s) of {report.total}; {report.already_present} already present;"
        f" {len(report.skipped)} skipped."
    )
    for skipped in report.skipped:
        detail = f" ({skipped.detail})" if skipped.detail else ""
        click.echo(
            f"  skipped seed id {skipped.seed_id}: {skipped.reason}{detail} — {REASONS[skipped.reason]}"
        )
    if report.sequence_next is not None:
        click.echo(f"New users get ids from {report.sequence_next} on.")
