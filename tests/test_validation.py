"""Bad input gets the spec'd JSON error, names the field, and writes nothing."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError
from sqlalchemy import func, select

from tests.conftest import PASSWORD, AuthActions, make_app
from trikchi.auth.models import User
from trikchi.auth.schemas import RegisterSchema
from trikchi.events import AuthEvent
from trikchi.extensions import db

GOOD = {"name": "Ada", "email": "ada@example.com", "password": PASSWORD}
LONGEST_EMAIL = "ab@" + ".".join(["b" * 63, "c" * 63, "d" * 63, "e" * 59])  # 254 characters


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
        # Found by schemathesis: what the document refuses was trimmed into a name, or passed the
        # regex ($ also matches before a final newline in Python).
        pytest.param({"json": {**GOOD, "name": "Ada\n"}}, 422, "name", id="name-final-newline"),
        pytest.param({"json": {**GOOD, "name": "\x1fAda"}}, 422, "name", id="name-control-space"),
        pytest.param({"json": {**GOOD, "name": "Ada\x85"}}, 422, "name", id="name-next-line"),
        pytest.param({"json": {**GOOD, "name": "\u3000\u00a0"}}, 422, "name", id="name-unicode-spaces"),
        pytest.param(
            {"json": {**GOOD, "name": "  " + "x" * 100}}, 422, "name", id="name-too-long-with-spaces"
        ),
        # A lone surrogate cannot be stored (UTF-8): it was a 500.
        pytest.param(
            {
                "data": json.dumps({**GOOD, "name": "Ada\ud800"}),
                "content_type": "application/json",
            },
            422,
            "name",
            id="name-lone-surrogate",
        ),
        pytest.param(
            {"json": {**GOOD, "email": "  " + LONGEST_EMAIL + "  "}},
            422,
            "email",
            id="email-too-long-with-spaces",
        ),
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


# One mailbox, one account: addresses are stored and compared in one form (trikchi.addresses).
FULLWIDTH_DOMAIN = "ada@\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.com"  # ada@ｅｘａｍｐｌｅ.com
FULLWIDTH_LOCAL = "\uff41\uff44\uff41@example.com"  # ａｄａ@example.com


def stored_emails(app) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(select(User.email).order_by(User.id)))


@pytest.mark.parametrize(
    "spelling",
    [
        FULLWIDTH_DOMAIN,
        "ADA@EXAMPLE.COM",
        " Ada@Example.com ",
        "ada@\uff25\uff38\uff21\uff2d\uff30\uff2c\uff25.com",
    ],
)
def test_an_address_written_another_way_is_the_same_account(app, auth, spelling):
    user_id = auth.signup(email="ada@example.com").json["user_id"]
    again = auth.client.post("/auth/register", json={**GOOD, "email": spelling})
    assert again.status_code == 409 and again.json["error"] == "email_taken"
    assert stored_emails(app) == ["ada@example.com"]
    login = auth.login(email=spelling)
    assert login.status_code == 200 and login.json["user_id"] == user_id


def test_a_fullwidth_domain_reset_request_reaches_the_one_account(app, auth):
    from trikchi.outbox.models import Delivery

    auth.register(email="ada@example.com")
    response = auth.client.post("/auth/password_reset/request", json={"email": FULLWIDTH_DOMAIN})
    assert response.status_code == 202
    with app.app_context():
        (event,) = db.session.scalars(select(AuthEvent).where(AuthEvent.type == "password_reset_requested"))
        assert event.user_id is not None  # the account was found under its stored form
        assert db.session.scalar(select(func.count()).select_from(Delivery)) == 1


@pytest.mark.parametrize(
    "email", [FULLWIDTH_LOCAL, "\u043a\u0438\u0440\u0438\u043b\u043b@mail.ru", "\u00df@example.com"]
)
def test_a_local_part_mail_cannot_reach_is_refused(app, client, email):
    response = client.post("/auth/register", json={**GOOD, "email": email})
    assert response.status_code == 422, response.json
    assert response.json["errors"]["email"] == [
        "Write the part before the @ in Latin characters: mail cannot be delivered to other characters."
    ]
    assert rows(app, User) == 0
    ru = client.post("/auth/register", json={**GOOD, "email": email}, headers={"Accept-Language": "ru"})
    assert ru.json["errors"]["email"] == [
        "Часть адреса до @ пишите латиницей: письма на другие символы не доставляются."
    ]


def test_an_email_change_to_an_undeliverable_or_same_address_is_refused(auth):
    auth.signup(email="ada@example.com")
    reauth = auth.client.post("/auth/reauthenticate", json={"password": PASSWORD}, headers=auth.headers())
    headers = auth.headers(reauth.json["access_token"])
    refused = auth.client.post("/auth/email", json={"new_email": FULLWIDTH_LOCAL}, headers=headers)
    assert refused.status_code == 422 and "new_email" in refused.json["errors"]
    same = auth.client.post("/auth/email", json={"new_email": FULLWIDTH_DOMAIN}, headers=headers)
    assert same.status_code == 422 and same.json["errors"]["new_email"] == [
        "This is already your email address."
    ]


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("Ali.Valiyev+shop@Gmail.com", "ali.valiyev+shop@gmail.com"),
        ("ivan_petrov@mail.ru", "ivan_petrov@mail.ru"),
        ("zarina@umail.uz", "zarina@umail.uz"),
        ("o'g'il@example.uz", "o'g'il@example.uz"),
        (
            "ada@\u041f\u0420\u0418\u041c\u0415\u0420.\u0420\u0424",
            "ada@\u043f\u0440\u0438\u043c\u0435\u0440.\u0440\u0444",
        ),
        ("ada@xn--e1afmkfd.xn--p1ai", "ada@\u043f\u0440\u0438\u043c\u0435\u0440.\u0440\u0444"),
    ],
)
def test_ordinary_and_international_domains_register_in_one_form(app, auth, typed, stored):
    response = auth.register(email=typed)
    assert response.status_code == 201, response.json
    assert response.json["email"] == stored
    assert auth.login(email=stored).status_code == 200
    assert auth.login(email=typed).status_code == 200


def test_an_idn_domain_written_as_punycode_is_the_same_account(auth):
    assert auth.register(email="ada@\u043f\u0440\u0438\u043c\u0435\u0440.\u0440\u0444").status_code == 201
    again = auth.register(email="ada@xn--e1afmkfd.xn--p1ai")
    assert again.status_code == 409 and again.json["error"] == "email_taken"


@pytest.mark.parametrize("email", ["ada@example", "ada@localhost", "ada@[127.0.0.1]", '"a b"@example.com'])
def test_addresses_mail_cannot_reach_are_invalid(app, client, email):
    response = client.post("/auth/register", json={**GOOD, "email": email})
    assert response.status_code == 422 and response.json["errors"]["email"] == ["Not a valid email address."]


def test_an_account_stored_before_the_rule_still_signs_in(app, auth):
    """Before trikchi.addresses an address was stored trimmed and lower-cased, nothing more."""
    from trikchi.auth.passwords import passwords

    with app.app_context():
        db.session.add(User(name="Old", email=FULLWIDTH_LOCAL, password_hash=passwords.hash(PASSWORD)))
        db.session.commit()
    assert auth.login(email=FULLWIDTH_LOCAL).status_code == 200
    reset = auth.client.post("/auth/password_reset/request", json={"email": FULLWIDTH_LOCAL})
    assert reset.status_code == 202


def test_provider_addresses_take_the_one_form_or_none():
    from trikchi.social.profile import clean_email

    assert clean_email(" Ada@" + FULLWIDTH_DOMAIN.split("@")[1]) == "ada@example.com"
    assert clean_email(FULLWIDTH_LOCAL) is None
    assert clean_email("ada@example") is None
    assert clean_email(42) is None


def test_the_smtp_envelope_carries_the_idna_2008_domain():
    from trikchi.addresses import smtp_address

    # Python's IDNA 2003 codec (Flask-Mail's) would send this to strasse.de, another domain.
    assert smtp_address("ada@stra\u00dfe.de") == "ada@xn--strae-oqa.de"
    assert (
        smtp_address("ada@\u043f\u0440\u0438\u043c\u0435\u0440.\u0440\u0444") == "ada@xn--e1afmkfd.xn--p1ai"
    )
    assert smtp_address("ada@example.com") == "ada@example.com"


def test_mail_to_an_idn_domain_goes_to_its_idna_2008_address(mail_app_factory, smtp_server):
    mail_app = mail_app_factory()
    from tests.support.mails import unique

    local = unique("idn").split("@")[0]
    AuthActions(mail_app.test_client()).register(email=f"{local}@stra\u00dfe.de")
    mail_app.test_client().post("/auth/password_reset/request", json={"email": f"{local}@STRASSE.de"})
    mail_app.test_client().post("/auth/password_reset/request", json={"email": f"{local}@stra\u00dfe.de"})
    assert "reset-password?token=" in str(smtp_server.wait_for(f"{local}@xn--strae-oqa.de"))
    assert smtp_server.messages_to(f"{local}@strasse.de") == []


# --- the document (GET /openapi.json) says what the service takes (issue 28, schemathesis) ---------


def schema_of(client, name: str) -> dict:
    return client.get("/openapi.json").json["components"]["schemas"][name]


def test_an_address_of_254_characters_registers(auth):
    assert auth.register(email=LONGEST_EMAIL).status_code == 201


def test_a_name_is_stored_without_the_spaces_around_it(auth):
    assert auth.register(name="\u3000 Ada Lovelace\u00a0 ").json["name"] == "Ada Lovelace"


NAME_CHARACTERS = "aZ\u00e9 \t\n\r\x0b\x0c\x00\x1c\x1f\x7f\x85\x9f\xa0\u1680\u2000\u2028\u3000\ufeff"


@pytest.fixture(scope="module")
def name_document():
    """The register body's ``name`` in the document."""
    app = make_app("sqlite://")
    yield schema_of(app.test_client(), "Register")["properties"]["name"]
    with app.app_context():
        db.engine.dispose()


@settings(max_examples=300, derandomize=True, deadline=None, database=None)
@given(name=st.text(alphabet=NAME_CHARACTERS, max_size=8) | st.text(alphabet=NAME_CHARACTERS, min_size=98))
def test_the_document_describes_the_names_the_service_takes(name_document, name):
    """A name the document's schema takes (its ``pattern`` over the whole text, as JSON Schema
    reads it) is a name the service takes, and no other."""
    valid = (
        name_document["minLength"] <= len(name) <= name_document["maxLength"]
        and re.fullmatch(name_document["pattern"], name) is not None
    )
    try:
        stored = RegisterSchema().fields["name"].deserialize(name)
    except ValidationError:
        assert not valid, f"{name!r} is valid in the document but refused"
    else:
        assert valid, f"{name!r} is invalid in the document but taken"
        assert stored == name.strip() and stored


def test_mfa_verify_documents_exactly_one_code(client):
    assert schema_of(client, "MfaVerify")["oneOf"] == [
        {"required": ["code"]},
        {"required": ["recovery_code"]},
    ]
    for body in ({"code": "123456", "recovery_code": "123456"}, {}):
        response = client.post("/auth/mfa/verify", json={"mfa_token": "x", **body})
        assert response.status_code == 422 and "code" in response.json["errors"]


@pytest.mark.parametrize("field", ["code", "recovery_code"])
def test_a_code_with_a_final_newline_is_refused(client, field):
    response = client.post("/auth/mfa/verify", json={"mfa_token": "x", field: "123456\n"})
    assert response.status_code == 422 and field in response.json["errors"]
