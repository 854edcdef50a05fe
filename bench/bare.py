"""The framework's limit: a bare Flask JSON endpoint, served by the same gunicorn settings."""

from flask import Flask, jsonify

app = Flask(__name__)


@app.get("/bare")
def bare():
    """Return a small JSON object (what /auth/me returns, minus everything we do)."""
    return jsonify(id=1, name="Ada", email="ada@example.com", role="customer")
