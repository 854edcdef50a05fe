"""Real servers the tests start themselves (PostgreSQL, gunicorn)."""
