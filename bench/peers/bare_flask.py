"""The framework's limit: a bare Flask JSON endpoint (no extension, no database, no auth)."""

from flask import Flask, jsonify

app = Flask(__name__)


@app.get("/bare")
def bare():
    """Return a small JSON object (what /auth/me returns, minus all of the work)."""
    return jsonify(id=1, name="Ada", email="ada@example.com", role="customer")
