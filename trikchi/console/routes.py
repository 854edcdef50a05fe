"""``/console/``: the console's built files, as they are (no template, nothing inline)."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, redirect, send_from_directory

STATIC = Path(__file__).resolve().parent / "static"

blp = Blueprint("console", __name__, url_prefix="/console")


@blp.get("")
def bare():
    """``/console`` → ``/console/``, where the page's relative paths resolve."""
    return redirect("/console/", code=308)


@blp.get("/")
def index():
    """The console's page; the browser asks again each time (a new build shows at once)."""
    return send_from_directory(STATIC, "index.html", max_age=0)


@blp.get("/<path:filename>")
def asset(filename: str):
    """A built script, style or picture of the console (404 for anything else)."""
    return send_from_directory(STATIC, filename, max_age=0)
