"""The framework's limit: a bare FastAPI JSON endpoint (no dependency, no database, no auth),
served like the FastAPI peers (uvicorn with uvloop and httptools, bench/.venvs/seed)."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/bare")
async def bare():
    """Return a small JSON object (what /auth/me returns, minus all of the work)."""
    return {"id": 1, "name": "Ada", "email": "ada@example.com", "role": "customer"}
