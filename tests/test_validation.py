"""Bad input gets the spec'd JSON error, names the field, and writes nothing."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from tests.conftest import PASSWORD
from trikchi.auth.models import User
from trikchi.events import AuthEvent
from trikchi.extensions import db

GOOD = {"name": "Ada", "email": "ada@example.com", "password": PASSWORD}


def rows(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


@pytest.mark.parametrize(
    ("kwargs", "status", "field"),
    [
        pytest.param(
            {"data": '{"name": "Ada",', "content_type": "application/json"}, 400, None, id="malformed-json"
        ),
        pytest.param(
            {"data": "name=Ada", "content_type": "application/x-www-form-urlencoded"},
            415,
            None,
            id="form-encoded",
        ),
        pytest.param({"data": '{"name": "Ada"}', "content_type": "text/plain"}, 415, None, id="text-plain"),
        pytest.param({"data": '{"name": "Ada"}'}, 415, None, id="no-content-type"),
        pytest.param({"json": [GOOD]}, 422, None, id="array-body"),
        pytest.param({"json": "Ada"}, 422, None, id="string-body"),
        pytest.param({"json": {**GOOD, "role": "admin"}}, 422, "role", id="unknown-field-role"),
        pytest.param({"json": {**GOOD, "name": 42}}, 422, "name", id="name-wrong-type"),
        pytest.param({"json": {**GOOD, "email": ["a@b.c"]}}, 422, "email", id="email-wrong-type"),
        pytest.param({"json": {**GOOD, "password": 12345678}}, 422, "password", id="password-wrong-type"),
        pytest.param({"json": {**GOOD, "name": None}}, 422, "name", id="name-null"),
        pytest.param(
            {"json": {"email": GOOD["email"], "password": PASSWORD}}, 422, "name", id="name-missing"
        ),
        pytest.param({"json": {**GOOD, "name": "   "}}, 422, "name", id="name-blank"),
        # Found by schemathesis: PostgreSQL cannot store NUL, and was answering 500.
        pytest.param({"json": {**GOOD, "name": "Ada\u0000"}}, 422, "name", id="name-with-nul"),
        pytest.param({"json": {**GOOD, "name": "Ada\u0007"}}, 422, "name", id="name-with-control-char"),
        # A lone surrogate cannot be encoded to UTF-8 for hashing.
        pytest.param(
            {
                "data": '{"name": "Ada", "email": "ada@example.com", "password": "abcdefgh\\ud800"}',
                "content_type": "application/json",
            },
            422,
            "password",
            id="password-lone-surrogate",
        ),
        pytest.param({"json": {**GOOD, "name": "x" * 101}}, 422, "name", id="name-too-long"),
        pytest.param({"json": {**GOOD, "email": "not-an-email"}}, 422, "email", id="email-invalid"),
        pytest.param(
            {"json": {**GOOD, "email": "a" * 250 + "@example.com"}}, 422, "email", id="email-too-long"
        ),
        pytest.param({"json": {**GOOD, "password": "short7!"}}, 422, "password", id="password-too-short"),
        pytest.param({"json": {**GOOD, "password": "x" * 129}}, 422, "password", id="password-too-long"),
        pytest.param({"json": {**GOOD, "password": "Password123"}}, 422, "password", id="password-common"),
        pytest.param(
            {"json": {**GOOD, "password": "QWERTYUIOP"}}, 422, "password", id="password-common-case"
        ),
        pytest.param(
            {"json": {**GOOD, "password": "ADA@example.com"}}, 422, "password", id="password-is-email"
        ),
    ],
)
def test_bad_registration_is_refused_and_stores_nothing(app, client, kwargs, status, field):
    response = client.post("/auth/register", **kwargs)
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json
    body = response.json
    assert body["code"] == status and isinstance(body["message"], str) and body["message"]
    if field:
        assert field in body["errors"], body
    assert rows(app, User) == 0
    assert rows(app, AuthEvent) == 0


def test_body_over_64_kib_is_413(app, client):
    response = client.post("/auth/register", json={**GOOD, "name": "x" * (65 * 1024)})
    assert response.status_code == 413
    assert response.is_json and response.json["code"] == 413
    assert rows(app, User) == 0


DEEP = "[" * 5000
DIGITS = "1" * 60000


@pytest.mark.parametrize(
    ("path", "body"),
    [
        pytest.param("/auth/register", DEEP, id="5000-open-brackets"),
        pytest.param("/auth/register", DEEP + "]" * 5000, id="5000-nested-arrays"),
        pytest.param(
            "/auth/register",
            '{"name": "Ada", "email": "ada@example.com", "password": ' + DEEP,
            id="deep-field",
        ),
        pytest.param("/auth/register", DIGITS, id="60000-digit-body"),
        pytest.param(
            "/auth/register",
            f'{{"name": "Ada", "email": "ada@example.com", "password": {DIGITS}}}',
            id="60000-digit-field",
        ),
        # Login reads the body twice: the per-account rate limit's key (request.get_json) and the view.
        pytest.param("/auth/login", DEEP + "]" * 5000, id="login-deep"),
        pytest.param(
            "/auth/login", f'{{"email": "ada@example.com", "password": {DIGITS}}}', id="login-digits"
        ),
    ],
)
def test_json_python_cannot_parse_is_400_invalid_json_and_stores_nothing(app, client, path, body):
    response = client.post(path, data=body, content_type="application/json")
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.json["error"] == "invalid_json"
    assert rows(app, User) == 0
    assert rows(app, AuthEvent) == 0


def test_unparsable_login_json_leaves_the_rate_limiter_alone(client, caplog):
    # The per-account limit keys on the body's email (request.get_json(silent=True)); a RecursionError
    # there was swallowed by Flask-Limiter, which logged it and fell back to in-memory storage.
    for body in (DEEP + "]" * 5000, f'{{"email": "ada@example.com", "password": {DIGITS}}}'):
        response = client.post("/auth/login", data=body, content_type="application/json")
        assert response.status_code == 400 and response.json["error"] == "invalid_json"
    assert not [record for record in caplog.records if record.name == "flask-limiter"]


def post_chunked(client, path: str, body: str):
    """``body`` without a Content-Length, as gunicorn passes a chunked body on (wsgi.input_terminated)."""
    return client.post(
        path,
        data=body,
        content_type="application/json",
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )


def test_a_chunked_body_over_64_kib_is_413_as_with_a_content_length(app, client):
    body = json.dumps({**GOOD, "name": "x" * (65 * 1024)})
    with_length = client.post("/auth/register", data=body, content_type="application/json")
    chunked = post_chunked(client, "/auth/register", body)
    assert chunked.status_code == with_length.status_code == 413
    assert chunked.json == with_length.json and chunked.json["error"] == "payload_too_large"
    assert rows(app, User) == 0


def test_a_chunked_body_of_exactly_64_kib_is_read_whole(client):
    padding = 64 * 1024 - len(json.dumps({**GOOD, "name": ""}))
    response = post_chunked(client, "/auth/register", json.dumps({**GOOD, "name": "x" * padding}))
    assert response.status_code == 422 and set(response.json["errors"]) == {"name"}  # too long, not cut off


@pytest.mark.parametrize(
    "body",
    [
        {"email": "ada@example.com"},
        {"email": "ada@example.com", "password": ""},
        {"email": "ada@example.com", "password": PASSWORD, "remember": True},
        {"email": 1, "password": PASSWORD},
        {"email": "ada@example.com", "password": "abc\ud800def"},
    ],
)
def test_bad_login_input_is_422(client, body):
    response = client.post("/auth/login", json=body)
    assert response.status_code == 422
    assert response.json["errors"]


def test_a_password_of_exactly_8_and_128_characters_is_accepted(auth):
    assert auth.register(email="a@example.com", password="zq8#kv2m").status_code == 201
    assert auth.register(email="b@example.com", password="k" * 127 + "q").status_code == 201


def test_no_composition_rules(auth):
    assert auth.register(password="lowercase only words here").status_code == 201
