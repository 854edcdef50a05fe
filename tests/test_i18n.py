"""SPEC §10 languages: every message and every mail in uz, ru and en; the language chosen by the
user's locale, else Accept-Language, else DEFAULT_LOCALE; the ``error`` codes never change."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from tests.conftest import AuthActions, make_app
from tests.support.mails import FRONTEND, html_of, text_of, unique, wait_for_subject
from trikchi.extensions import db
from trikchi.i18n import LOCALES, TRANSLATIONS_DIR
from trikchi.mails import KINDS, render_mail

ROOT = Path(__file__).resolve().parent.parent
MAIL_DIR = ROOT / "trikchi" / "templates" / "mail"
PLACEHOLDER = re.compile(r"\{\w+\}|%\(\w+\)s")
# Words that give away English left in a Russian or Uzbek text.
ENGLISH = re.compile(r"\b(the|your|you|and|link|password|account|email|sign|this|was|please)\b", re.I)


def extracted_messages() -> set[str]:
    """The messages of the code, extracted as `make messages` does (its keywords, babel.cfg)."""
    makefile = (ROOT / "Makefile").read_text()
    block = re.search(r"^MESSAGE_KEYWORDS := (.*?)(?<!\\)\n", makefile, re.M | re.S).group(1)
    names = [word for word in shlex.split(block.replace("\\\n", " ")) if word != "-k"]
    keywords = {"_": None, "gettext": None, "lazy_gettext": None, **dict.fromkeys(names)}
    method_map = [("trikchi/**.py", "python")]
    found = {message for _f, _l, message, _c, _ctx in extract_from_dir(ROOT, method_map, keywords=keywords)}
    return {m for m in found if isinstance(m, str)}


@pytest.fixture(scope="module")
def messages() -> set[str]:
    found = extracted_messages()
    assert "This link is invalid, expired or already used." in found  # the extraction works
    assert "The token is invalid." in found and "Validation failed." in found
    return found


@pytest.mark.parametrize("locale", LOCALES)
def test_every_message_is_translated_in_every_language(messages, locale):
    with (TRANSLATIONS_DIR / locale / "LC_MESSAGES" / "messages.po").open("rb") as source:
        catalog = read_po(source, locale=locale)
    entries = {m.id: m for m in catalog if m.id}
    missing = sorted(messages - set(entries))
    assert missing == [], f"{locale}: not in the catalog (run `make messages` and translate): {missing}"
    for message_id in messages:
        entry = entries[message_id]
        assert entry.string, f"{locale}: empty translation of {message_id!r}"
        assert not entry.fuzzy, f"{locale}: fuzzy translation of {message_id!r}"
        assert set(PLACEHOLDER.findall(entry.string)) == set(PLACEHOLDER.findall(message_id)), message_id
        if locale != "en":
            assert entry.string != message_id, f"{locale}: {message_id!r} is left in English"
            assert not ENGLISH.search(entry.string.replace("Content-Type", "")), (locale, entry.string)


def test_the_template_catalog_matches_the_code(messages):
    with (TRANSLATIONS_DIR / "messages.pot").open("rb") as source:
        template = {m.id for m in read_po(source) if m.id}
    assert messages == template, "run `make messages`"


SAMPLE = {
    "name": "Zarina <b>",
    "link": f"{FRONTEND}/x?token=abc.def",
    "hours": 24,
    "minutes": 30,
    "new_email": "new@example.com",
    "when": "2026-11-25 16:40 UTC",
    "ip": "203.0.113.9",
    "user_agent": "Firefox",
    "reset": False,
}


def test_every_mail_kind_exists_in_every_language_and_nothing_else():
    expected = {f"{locale}/{kind}.{ext}" for locale in LOCALES for kind in KINDS for ext in ("txt", "html")}
    present = {str(p.relative_to(MAIL_DIR)) for p in MAIL_DIR.glob("*/*.*")}
    assert present == expected


@pytest.mark.parametrize("kind", KINDS)
def test_every_mail_renders_in_every_language(app, kind):
    variants = [{}]
    if kind == "password_changed":
        variants = [{"reset": False}, {"reset": True}]
    if kind == "second_factor_changed":
        variants = [
            {"change": c}
            for c in ("totp_enabled", "totp_disabled", "passkey_added", "passkey_removed", "phone_changed")
        ]
    with app.test_request_context():
        for variant in variants:
            rendered = {}
            for locale in LOCALES:
                subject, text, html = render_mail(kind, locale, **{**SAMPLE, **variant})
                assert subject and "\n" not in subject
                if kind == "confirm_email_change":  # to an unproven address: greets nobody by name
                    assert "Zarina" not in text + html
                else:
                    assert "Zarina <b>" in text and "Zarina &lt;b&gt;" in html  # HTML escapes, text does not
                assert f'lang="{locale}"' in html and "{{" not in text + html and "{%" not in text + html
                if kind in ("verify_email", "password_reset", "confirm_email_change"):
                    assert SAMPLE["link"] in text and f'href="{SAMPLE["link"]}"' in html
                if locale != "en":
                    prose = re.sub(r"https?://\S+|\S+@\S+|trikchi\.uz|Firefox", "", subject + text)
                    assert not ENGLISH.search(prose), (locale, kind, ENGLISH.search(prose))
                rendered[locale] = text
            assert len(set(rendered.values())) == len(LOCALES)  # three different texts


def test_errors_follow_accept_language_and_keep_their_code(client):
    bodies = {}
    for header in ("en", "ru-RU,ru;q=0.9,en;q=0.5", "uz", "de-DE", None):
        headers = {"Accept-Language": header} if header else {}
        response = client.post(
            "/auth/login", json={"email": "x@example.com", "password": "wrong pass"}, headers=headers
        )
        assert response.status_code == 401
        bodies[header] = response.json
    assert {b["error"] for b in bodies.values()} == {"invalid_credentials"}
    assert bodies["en"]["message"] == "Invalid email or password."
    assert bodies["ru-RU,ru;q=0.9,en;q=0.5"]["message"] == "Неверный адрес почты или пароль."
    assert bodies["uz"]["message"] == "Elektron pochta yoki parol notoʻgʻri."
    assert bodies["de-DE"]["message"] == bodies[None]["message"] == "Invalid email or password."


def test_field_messages_are_translated_with_their_values(client):
    response = client.post(
        "/auth/register",
        json={"name": "x" * 101, "email": "nope", "password": "short", "extra": 1},
        headers={"Accept-Language": "ru"},
    )
    assert response.status_code == 422 and response.json["error"] == "validation_failed"
    errors = response.json["errors"]
    assert set(errors) == {"name", "email", "password", "extra"}
    assert errors["name"] == ["Длина должна быть от 1 до 100."]
    assert errors["email"] == ["Некорректный адрес электронной почты."]
    assert errors["extra"] == ["Неизвестное поле."]
    assert response.json["message"] == "Данные не прошли проверку."


def test_the_users_locale_wins_over_accept_language(auth):
    auth.signup()
    assert auth.client.patch("/auth/me", json={"locale": "uz"}, headers=auth.headers()).status_code == 200
    response = auth.client.delete(
        "/auth/sessions/" + "0" * 32, headers={**auth.headers(), "Accept-Language": "ru"}
    )
    assert response.status_code == 404 and response.json["error"] == "not_found"
    assert response.json["message"] == "Bunday seans yoʻq."
    # Before the user is known (a bad token), the browser's language decides.
    response = auth.client.get("/auth/me", headers={"Authorization": "Bearer x.y.z", "Accept-Language": "ru"})
    assert response.json["error"] == "token_invalid" and response.json["message"] == "Токен недействителен."


def test_default_locale_applies_without_accept_language(database_url):
    app = make_app(database_url, DEFAULT_LOCALE="ru")
    response = app.test_client().get("/auth/nowhere")
    assert response.status_code == 404 and response.json["message"] == "По этому адресу ничего нет."
    assert response.json["error"] == "not_found"
    with app.app_context():
        db.engine.dispose()


def test_success_messages_are_translated(client):
    response = client.post(
        "/auth/password_reset/request", json={"email": "x@example.com"}, headers={"Accept-Language": "uz"}
    )
    assert response.status_code == 202
    assert (
        response.json["message"]
        == "Agar bu manzil uchun hisob mavjud boʻlsa, parolni tiklash havolasi yuborildi."
    )


@pytest.fixture
def mail_app(mail_app_factory):
    return mail_app_factory(NOTIFY_NEW_DEVICE=False)


def test_mails_are_written_in_the_users_language(mail_app, smtp_server):
    email = unique("uzbek")
    user = AuthActions(mail_app.test_client())
    user.signup(email=email)
    user.client.patch("/auth/me", json={"locale": "uz"}, headers=user.headers())
    user.client.post("/auth/verify_email/request", headers={**user.headers(), "Accept-Language": "ru"})
    message = wait_for_subject(smtp_server, email, "trikchi.uz uchun elektron pochtangizni tasdiqlang")
    assert "Assalomu alaykum, Ada!" in text_of(message)
    assert 'lang="uz"' in html_of(message)
    # The link works: the verification follows it.
    token = re.search(r"verify-email\?token=(\S+)", text_of(message)).group(1)
    assert mail_app.test_client().post("/auth/verify_email", json={"token": token}).json["email_verified"]


def test_mails_to_a_user_without_a_language_follow_the_request(mail_app, smtp_server):
    email = unique("russian")
    AuthActions(mail_app.test_client()).register(email=email)
    anonymous = mail_app.test_client()
    anonymous.post("/auth/password_reset/request", json={"email": email}, headers={"Accept-Language": "ru"})
    message = wait_for_subject(smtp_server, email, "Сброс пароля trikchi.uz")
    assert "Здравствуйте, Ada!" in text_of(message)


def test_mails_fall_back_to_the_default_locale(mail_app_factory, smtp_server):
    app = mail_app_factory(DEFAULT_LOCALE="uz", NOTIFY_NEW_DEVICE=False)
    email = unique("default")
    AuthActions(app.test_client()).register(email=email)
    app.test_client().post("/auth/password_reset/request", json={"email": email})
    wait_for_subject(smtp_server, email, "trikchi.uz parolini tiklash")
