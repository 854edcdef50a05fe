"""SPEC §12: the seed's refresh cookies open a trikchi session, once; nothing else of the seed works."""

from __future__ import annotations

import string
import threading
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from sqlalchemy import select, update

from config import ConfigError, load_config
from tests.conftest import PASSWORD, AuthActions, make_app
from tests.support import seed
from trikchi.auth.models import AuthSession, User
from trikchi.database import utcnow
from trikchi.events import AuthEvent, Events
from trikchi.extensions import db
from trikchi.seed.models import SeedTokenExchange

SEED_USER = 5


@pytest.fixture
def app(database_url, tmp_path):
    """The app with seed tokens accepted, and the seed's user 5 imported."""
    app = make_app(database_url, SEED_JWT_SECRET=seed.SEED_SECRET)
    source = f"sqlite:///{tmp_path / 'trikchi_data.db'}"
    seed.create_seed_database(
        source,
        [
            {
                "id": SEED_USER,
                "name": "Seed customer",
                "email": "customer@example.com",
                "password_hash": seed.hash_password("Password123"),
                "role": "customer",
                "is_superuser": False,
                "created_at": datetime(2025, 11, 27, 8, 35, 8),
                "updated_at": datetime(2025, 11, 27, 8, 35, 8),
            }
        ],
    )
    result = app.test_cli_runner().invoke(args=["users", "import-seed", source])
    assert "Imported 1 user(s)" in result.output, result.output
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def browser_with(app, token: str) -> AuthActions:
    """A browser still holding the seed's cookie (Path=/, the same name as trikchi's)."""
    browser = AuthActions(app.test_client())
    browser.client.set_cookie("refresh_token", token, path="/")
    return browser


def exchange(browser: AuthActions):
    """What the seed's frontend sends: the cookie, no CSRF header."""
    return browser.refresh(csrf=False)


def test_a_seed_refresh_cookie_opens_a_normal_session(app):
    token = seed.create_refresh_token(SEED_USER)
    browser = browser_with(app, token)

    response = exchange(browser)

    assert response.status_code == 200, response.json
    assert response.json["user_id"] == SEED_USER
    assert response.json["token_type"] == "bearer"
    assert response.headers["Cache-Control"] == "no-store"
    assert browser.refresh_cookie() not in (None, token)  # trikchi's cookie replaced the seed's
    assert browser.csrf_cookie() == response.json["csrf_token"]
    assert browser.me().json["email"] == "customer@example.com"
    with app.app_context():
        session = db.session.scalars(select(AuthSession)).one()
        assert (session.user_id, session.auth_method) == (SEED_USER, "seed")
        events = db.session.scalars(select(AuthEvent).order_by(AuthEvent.id)).all()
        assert [(e.type, e.user_id) for e in events][-2:] == [
            (Events.SEED_TOKEN_EXCHANGED, SEED_USER),
            (Events.LOGIN_SUCCEEDED, SEED_USER),
        ]
        assert events[-1].details == {"method": "seed"}
        assert all(token not in str(e.details) for e in events)
    # From now on it is a trikchi session: rotation, CSRF and all.
    assert browser.refresh(csrf=False).status_code == 401
    assert browser.refresh().status_code == 200
    assert browser.me().status_code == 200


def test_a_replay_inside_the_grace_window_gets_the_sessions_current_token(app):
    token = seed.create_refresh_token(SEED_USER)
    first, second = browser_with(app, token), browser_with(app, token)  # two tabs, one cookie

    assert exchange(first).status_code == 200
    response = exchange(second)

    assert response.status_code == 200, response.json
    # The same refresh token (jti) of the same session: no second branch.
    assert identity(second.refresh_cookie()) == identity(first.refresh_cookie())
    with app.app_context():
        assert len(db.session.scalars(select(AuthSession)).all()) == 1
    assert second.me().status_code == 200


def identity(refresh_token: str) -> tuple[str, str]:
    claims = jwt.decode(refresh_token, options={"verify_signature": False})
    return claims["sid"], claims["jti"]


def age_exchanges(app, seconds: int) -> None:
    with app.app_context():
        db.session.execute(
            update(SeedTokenExchange).values(exchanged_at=utcnow() - timedelta(seconds=seconds))
        )
        db.session.commit()


def respelled(token: str) -> str:
    """The same token with another spelling of the signature's spare base64 bits."""
    alphabet = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"
    return token[:-1] + alphabet[alphabet.index(token[-1]) ^ 1]


def test_a_replay_after_the_grace_window_is_refused_and_ends_the_session(app):
    token = seed.create_refresh_token(SEED_USER)
    owner = browser_with(app, token)
    assert exchange(owner).status_code == 200
    age_exchanges(app, app.config["REFRESH_REUSE_GRACE_SECONDS"] + 1)

    response = exchange(browser_with(app, token))
    assert response.status_code == 401
    assert response.json["error"] == "refresh_token_reused"
    # Nor under another spelling of the signature's spare base64 bits.
    assert exchange(browser_with(app, respelled(token))).status_code == 401

    # Treated as theft, like a reused trikchi token: the session it opened is over.
    assert owner.refresh().status_code == 401
    with app.app_context():
        session = db.session.scalars(select(AuthSession)).one()
        assert session.revoked_reason == "reuse_detected"


@pytest.mark.parametrize(
    ("make_token", "error"),
    [
        pytest.param(
            lambda: seed.create_refresh_token(SEED_USER, delta=timedelta(seconds=-1)),
            "token_expired",
            id="expired",
        ),
        pytest.param(
            lambda: seed.create_refresh_token(SEED_USER, secret="another secret, as long as the real one"),
            "token_invalid",
            id="another-secret",
        ),
        pytest.param(lambda: seed.create_access_token(SEED_USER), "token_invalid", id="seed-access-token"),
        pytest.param(
            lambda: jwt.encode(
                {"sub": str(SEED_USER), "exp": int(datetime.now(UTC).timestamp()) + 86400, "type": "access"},
                seed.SEED_SECRET,
                algorithm="HS256",
            ),
            "token_invalid",
            id="typed-access-token",
        ),
        pytest.param(
            lambda: jwt.encode(
                {"sub": SEED_USER, "exp": int(datetime.now(UTC).timestamp()) + 86400},
                seed.SEED_SECRET,
                algorithm="HS256",
            ),
            "token_invalid",
            id="numeric-sub",
        ),
        pytest.param(
            lambda: jwt.encode(
                {"sub": str(SEED_USER), "exp": int(datetime.now(UTC).timestamp()) + 86400},
                seed.SEED_SECRET,
                algorithm="HS512",
            ),
            "token_invalid",
            id="other-algorithm",
        ),
        pytest.param(lambda: seed.create_refresh_token(404), "session_ended", id="unknown-user"),
    ],
)
def test_tokens_that_are_not_a_live_seed_refresh_token_are_refused(app, make_token, error):
    response = exchange(browser_with(app, make_token()))
    assert response.status_code == 401
    assert response.json["error"] == error
    with app.app_context():
        assert db.session.scalars(select(AuthSession)).all() == []


def test_a_short_lived_typed_refresh_token_is_accepted(app):
    # A seed that marks its tokens ("type": "refresh") needs no lifetime guess.
    token = jwt.encode(
        {"sub": str(SEED_USER), "exp": int(datetime.now(UTC).timestamp()) + 300, "type": "refresh"},
        seed.SEED_SECRET,
        algorithm="HS256",
    )
    assert exchange(browser_with(app, token)).status_code == 200


def test_seed_tokens_are_never_access_tokens(app):
    browser = AuthActions(app.test_client())
    for token in (seed.create_access_token(SEED_USER), seed.create_refresh_token(SEED_USER)):
        response = browser.me(token)
        assert response.status_code == 401
        assert response.json["error"] == "token_invalid"


def test_an_inactive_users_seed_token_is_refused(app):
    with app.app_context():
        db.session.execute(update(User).where(User.id == SEED_USER).values(is_active=False))
        db.session.commit()
    response = exchange(browser_with(app, seed.create_refresh_token(SEED_USER)))
    assert response.status_code == 401
    assert response.json["error"] == "session_ended"


def test_a_trikchi_user_with_a_seed_id_that_was_not_imported_is_not_reachable(app):
    # trikchi's own user 6 (registered here, not imported): a seed token for "6" must not
    # sign anyone in as that other person.
    with app.app_context():
        db.session.add(User(id=6, name="Native", email="native@example.com", password_hash="x"))
        db.session.commit()
    response = exchange(browser_with(app, seed.create_refresh_token(6)))
    assert response.status_code == 401


def test_after_seed_tokens_until_they_are_refused(database_url, app):
    ended = make_app(
        database_url,
        SEED_JWT_SECRET=seed.SEED_SECRET,
        SEED_TOKENS_UNTIL=datetime.now(UTC) - timedelta(seconds=1),
    )
    browser = browser_with(ended, seed.create_refresh_token(SEED_USER))
    assert exchange(browser).status_code == 401
    assert browser.refresh(csrf="anything").status_code == 401
    with ended.app_context():
        assert db.session.scalars(select(AuthSession)).all() == []
        db.session.remove()
        db.engine.dispose()


def test_without_seed_jwt_secret_seed_tokens_are_refused(database_url, app):
    plain = make_app(database_url)
    response = exchange(browser_with(plain, seed.create_refresh_token(SEED_USER)))
    assert response.status_code == 401
    with plain.app_context():
        db.engine.dispose()


def test_native_refresh_answers_are_unchanged_with_seed_tokens_accepted(app):
    auth = AuthActions(app.test_client())
    auth.signup("native@example.com", PASSWORD)
    response = auth.refresh(csrf=False)
    assert response.status_code == 401
    assert response.json["error"] == "csrf_failed"
    assert auth.refresh().status_code == 200


def test_seed_tokens_until_is_read_as_an_iso_date(monkeypatch):
    monkeypatch.setenv("SEED_TOKENS_UNTIL", "2027-01-31")
    assert load_config("testing").SEED_TOKENS_UNTIL == datetime(2027, 1, 31, tzinfo=UTC)
    monkeypatch.setenv("SEED_TOKENS_UNTIL", "2027-01-31T12:00:00+05:00")
    assert load_config("testing").SEED_TOKENS_UNTIL == datetime(2027, 1, 31, 7, tzinfo=UTC)
    monkeypatch.setenv("SEED_TOKENS_UNTIL", "next month")
    with pytest.raises(ConfigError, match="SEED_TOKENS_UNTIL"):
        load_config("testing")


def test_two_tabs_exchanging_at_the_same_moment_share_one_session(app):
    token = seed.create_refresh_token(SEED_USER)
    tabs = [browser_with(app, token) for _ in range(4)]
    barrier = threading.Barrier(len(tabs))
    answers: list[int] = []

    def exchange_together(tab: AuthActions) -> None:
        barrier.wait(timeout=10)
        answers.append(exchange(tab).status_code)

    threads = [threading.Thread(target=exchange_together, args=(tab,)) for tab in tabs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert answers == [200] * len(tabs)
    assert len({identity(tab.refresh_cookie()) for tab in tabs}) == 1
    with app.app_context():
        assert len(db.session.scalars(select(AuthSession)).all()) == 1
