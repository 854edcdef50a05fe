"""Configuration from the environment, and production's refusal of weak secrets."""

from __future__ import annotations

import pytest

from config import ConfigError, load_config
from trikchi import create_app

STRONG = "k" * 32


@pytest.fixture
def production_env(monkeypatch):
    monkeypatch.setenv("SECRET_KEY", STRONG)
    monkeypatch.setenv("JWT_SECRET_KEY", STRONG)
    monkeypatch.setenv("DATABASE_URL", "sqlite:///unused.db")
    return monkeypatch


@pytest.mark.parametrize("variable", ["SECRET_KEY", "JWT_SECRET_KEY"])
def test_production_refuses_a_missing_secret(production_env, variable):
    production_env.delenv(variable)
    with pytest.raises(ConfigError, match=variable):
        create_app("production")


@pytest.mark.parametrize("variable", ["SECRET_KEY", "JWT_SECRET_KEY"])
def test_production_refuses_a_short_secret(production_env, variable):
    production_env.setenv(variable, "k" * 31)
    with pytest.raises(ConfigError, match=variable):
        create_app("production")


def test_production_starts_with_strong_secrets_and_secure_cookies(production_env):
    app = create_app("production")
    assert app.config["JWT_COOKIE_SECURE"] is True
    assert app.config["DEBUG"] is False
    assert app.config["ARGON2_TIME_COST"] == 3 and app.config["ARGON2_MEMORY_COST"] == 65536


def test_development_makes_random_keys_and_plain_http_cookies(monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("JWT_SECRET_KEY", raising=False)
    config = load_config("development")
    assert len(config.JWT_SECRET_KEY) >= 32 and config.JWT_COOKIE_SECURE is False


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("ACCESS_TOKEN_MINUTES", "5")
    monkeypatch.setenv("REFRESH_TOKEN_DAYS", "7")
    monkeypatch.setenv("COOKIE_SAMESITE", "Strict")
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@db/trikchi")
    config = load_config("testing")
    assert config.JWT_ACCESS_TOKEN_EXPIRES.total_seconds() == 300
    assert config.JWT_REFRESH_TOKEN_EXPIRES.days == 7
    assert config.JWT_COOKIE_SAMESITE == "Strict"
    assert config.SQLALCHEMY_DATABASE_URI == "postgresql+psycopg://u:p@db/trikchi"


@pytest.mark.parametrize(
    ("variable", "value"),
    [("ACCESS_TOKEN_MINUTES", "soon"), ("COOKIE_SECURE", "maybe"), ("COOKIE_SAMESITE", "lax-ish")],
)
def test_bad_settings_name_the_variable(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=variable):
        load_config("testing")


def test_unknown_config_name_is_refused():
    with pytest.raises(ConfigError, match="TRIKCHI_CONFIG"):
        load_config("staging")
