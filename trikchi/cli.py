"""``flask`` commands for operators."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

sessions_cli = AppGroup("sessions", help="Manage sign-in sessions.")


@sessions_cli.command("prune")
def prune_sessions_command() -> None:
    """Delete revoked and expired sessions with their refresh tokens."""
    from trikchi.auth.services import prune_sessions

    count = prune_sessions()
    click.echo(f"Pruned {count} session(s).")


def register_cli(app: Flask) -> None:
    """Attach the command groups to the app."""
    app.cli.add_command(sessions_cli)
