"""``flask`` commands for operators."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup
from marshmallow import ValidationError
from sqlalchemy import select

from trikchi.auth.models import ROLES, User
from trikchi.errors import AppError

sessions_cli = AppGroup("sessions", help="Manage sign-in sessions.")
users_cli = AppGroup("users", help="Manage users and roles.")
stats_cli = AppGroup("stats", help="The counts behind GET /admin/stats.")


@sessions_cli.command("prune")
def prune_sessions_command() -> None:
    """Delete revoked and expired sessions with their refresh tokens."""
    from trikchi.auth.sessions import prune_sessions

    count = prune_sessions()
    click.echo(f"Pruned {count} session(s).")


def _user_by_email(email: str) -> User:
    from trikchi.auth.schemas import normalize_email
    from trikchi.extensions import db

    user = db.session.scalar(select(User).where(User.email == normalize_email(email)))
    if user is None:
        raise click.ClickException(f"No user with email {email}.")
    return user


def _fail(error: AppError) -> click.ClickException:
    details = "; ".join(
        f"{field}: {' '.join(map(str, msgs))}" for field, msgs in (error.errors or {}).items()
    )
    return click.ClickException(f"{error.message} {details}".strip())


@users_cli.command("create")
@click.option("--email", required=True, help="The user's email address.")
@click.option("--name", required=True, help="The user's display name.")
@click.option("--role", type=click.Choice(ROLES), default="customer", show_default=True)
@click.password_option("--password", help="Prompted (hidden, twice) when not given; may be piped in.")
def create_user_command(email: str, name: str, role: str, password: str) -> None:
    """Create a user with a role (the password is prompted, hidden, twice)."""
    from trikchi.auth.schemas import RegisterSchema
    from trikchi.auth.services import register_user

    try:
        data = RegisterSchema().load({"name": name, "email": email, "password": password})
    except ValidationError as error:
        raise _fail(AppError("Invalid user.", errors=error.messages)) from None
    try:
        user = register_user(data["name"], data["email"], data["password"], None, role=role)
    except AppError as error:
        raise _fail(error) from None
    click.echo(f"Created {user.role} {user.email} (id {user.id}).")


@users_cli.command("set-role")
@click.argument("email")
@click.argument("role", type=click.Choice(ROLES))
def set_role_command(email: str, role: str) -> None:
    """Give the user with EMAIL the role ROLE."""
    from trikchi.admin.services import update_user

    user = _user_by_email(email)
    try:
        update_user(None, user.id, None, role=role)
    except AppError as error:
        raise _fail(error) from None
    click.echo(f"{user.email} is now {role}.")


@users_cli.command("deactivate")
@click.argument("email")
def deactivate_command(email: str) -> None:
    """Deactivate the user with EMAIL and end all their sessions."""
    from trikchi.admin.services import update_user

    user = _user_by_email(email)
    try:
        update_user(None, user.id, None, is_active=False)
    except AppError as error:
        raise _fail(error) from None
    click.echo(f"{user.email} is deactivated; their sessions are revoked.")


@users_cli.command("prune-guests")
@click.option(
    "--batch-size",
    type=click.IntRange(1, 10_000),
    default=500,
    show_default=True,
    help="Guests removed per transaction (each batch is committed before the next).",
)
def prune_guests_command(batch_size: int) -> None:
    """Remove guests whose sessions were neither opened nor refreshed for GUEST_TTL_DAYS."""
    from trikchi.auth.guests import prune_guests

    count = prune_guests(batch_size=batch_size)
    click.echo(f"Removed {count} idle guest(s).")


@stats_cli.command("rollup")
@click.option(
    "--days",
    type=click.IntRange(1, 90),
    default=90,
    show_default=True,
    help="The last DAYS UTC days (today included) whose closed days are rolled up.",
)
@click.option(
    "--redo", is_flag=True, help="Count the days rolled up already again, and replace their counts."
)
def stats_rollup_command(days: int, redo: bool) -> None:
    """Count the closed UTC days not rolled up yet, so that GET /admin/stats reads them ready."""
    from trikchi.admin.stats import roll_up

    count = roll_up(days, redo=redo)
    click.echo(f"Rolled up {count} day(s).")


def register_cli(app: Flask) -> None:
    """Attach the command groups to the app."""
    from trikchi.keys.cli import keys_cli
    from trikchi.outbox.cli import worker_command
    from trikchi.seed.cli import import_seed_command

    users_cli.add_command(import_seed_command)
    app.cli.add_command(sessions_cli)
    app.cli.add_command(users_cli)
    app.cli.add_command(stats_cli)
    app.cli.add_command(keys_cli)
    app.cli.add_command(worker_command)
