"""Health, readiness and API documentation."""
