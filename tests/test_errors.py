"""Every failure is the same JSON shape; never HTML, never a traceback."""

from __future__ import annotations

import logging

from sqlalchemy.exc import OperationalError

from trikchi.auth import services
from trikchi.errors import ErrorCode


def assert_error(response, status: int) -> None:
    assert response.status_code == status
    assert response.mimetype == "application/json"
    body = response.json
    assert body["code"] == status and isinstance(body["message"], str) and isinstance(body["status"], str)
    assert body["error"] in {code.value for code in ErrorCode}
    text = response.get_data(as_text=True)
    assert "<html" not in text.lower() and "Traceback" not in text


def test_unknown_route_is_404_json(client):
    assert_error(client.get("/no/such/page"), 404)


def test_wrong_method_is_405_json_with_allow(client):
    response = client.get("/auth/login")
    assert_error(response, 405)
    assert "POST" in response.headers["Allow"]


def test_unexpected_exception_is_500_json_and_logged(app, client, monkeypatch, caplog):
    def boom(*_args, **_kwargs):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(services, "authenticate", boom)
    with caplog.at_level(logging.ERROR):
        response = client.post("/auth/login", json={"email": "a@example.com", "password": "whatever1"})
    assert_error(response, 500)
    assert "secret internal detail" not in response.get_data(as_text=True)
    assert any("secret internal detail" in (r.exc_text or "") or r.exc_info for r in caplog.records)


def test_database_error_is_503_json(app, client, monkeypatch):
    def down(*_args, **_kwargs):
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(services, "authenticate", down)
    response = client.post("/auth/login", json={"email": "a@example.com", "password": "whatever1"})
    assert_error(response, 503)
    assert response.headers["Retry-After"]


def test_unreachable_database_is_503_on_readyz_and_endpoints(backend):
    from tests.conftest import make_app

    url = (
        "postgresql+psycopg://postgres@127.0.0.1:1/none"
        if backend == "postgresql"
        else "sqlite:////nonexistent-dir/trikchi.db"
    )
    app = make_app(url)
    client = app.test_client()
    assert_error(client.get("/readyz"), 503)
    assert_error(client.post("/auth/login", json={"email": "a@example.com", "password": "whatever1"}), 503)
    assert client.get("/healthz").status_code == 200


def test_error_codes_of_http_failures(client):
    assert client.get("/no/such/page").json["error"] == "not_found"
    assert client.get("/auth/login").json["error"] == "method_not_allowed"
    bad_json = client.post("/auth/login", data="{", content_type="application/json")
    assert bad_json.status_code == 400 and bad_json.json["error"] == "invalid_json"
    form = client.post("/auth/login", data="a=b")
    assert form.status_code == 415 and form.json["error"] == "unsupported_media_type"
    invalid = client.post("/auth/register", json={"email": "x"})
    assert invalid.status_code == 422 and invalid.json["error"] == "validation_failed"
    big = client.post("/auth/login", data="x" * 70000, content_type="application/json")
    assert big.status_code == 413 and big.json["error"] == "payload_too_large"


def test_unexpected_and_unavailable_have_their_codes(client, monkeypatch):
    monkeypatch.setattr(services, "authenticate", lambda *_a, **_k: 1 / 0)
    body = {"email": "a@example.com", "password": "whatever1"}
    assert client.post("/auth/login", json=body).json["error"] == "internal_error"

    def down(*_args, **_kwargs):
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(services, "authenticate", down)
    assert client.post("/auth/login", json=body).json["error"] == "service_unavailable"
