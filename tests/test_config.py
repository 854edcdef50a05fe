"""Configuration from the environment: each concern's checks, production's refusal of weak secrets,
the configuration page against the declarations, and one line and exit 1 for a bad setting."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from config import (
    CONFIGS,
    DOCS_BEGIN,
    DOCS_END,
    ConfigError,
    documented_default,
    documented_settings,
    load_config,
    settings_table,
)
from tests.support.postgres import free_port
from trikchi import create_app
from trikchi.settings import Derived

STRONG = "k" * 32
ROOT = Path(__file__).resolve().parents[1]


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


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DATABASE_URL", "nonsense"),
        ("LOG_LEVEL", "verbose"),
        ("METRICS_ALLOWED_IPS", "127.0.0.1,localhost"),
        ("RATELIMIT_LOGIN", "30 per minit"),
        ("RATELIMIT_STORAGE_URI", "redis:/cache:6379"),
        ("MAIL_USE_SSL", "true"),  # with MAIL_USE_TLS's default, STARTTLS inside TLS: no mail would leave
        ("FRONTEND_URL", "shop.example"),
        ("COOKIE_SAMESITE", "None"),  # without Secure, which development's cookies lack
        ("WEBHOOK_URLS", "https://hooks.example/trikchi"),  # without WEBHOOK_SECRET
        ("OUTBOX_TIMEOUT_SECONDS", "60"),  # as long as the lease
    ],
)
def test_unusable_settings_are_refused_when_the_app_is_built(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=variable):
        load_config("testing")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DATABASE_URL", "hunter2://db"),
        ("RATELIMIT_STORAGE_URI", "redis:/:hunter2@cache:6379"),
        ("SIGNING_KEYS_SECRET", "hunter2"),
    ],
)
def test_a_refused_value_that_may_hold_a_password_is_not_repeated(monkeypatch, variable, value):
    monkeypatch.setenv("JWT_ALGORITHM", "EdDSA")
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=variable) as refused:
        load_config("testing")
    assert "hunter2" not in str(refused.value)


def test_an_empty_environment_gets_the_declared_defaults():
    for cls in CONFIGS.values():
        config = cls(environ={})
        defaults = cls.defaults()
        for section in cls.sections:
            for setting in section.declared():
                default = defaults.get(setting.name, setting.default)
                if not isinstance(default, Derived):
                    assert getattr(config, setting.name) == default, (cls.NAME, setting.name)


# The configuration page: docs/configuration.md, its tables printed from the declarations.

DOCS = ROOT / "docs" / "configuration.md"


def documented_rows() -> dict[str, tuple[str, str]]:
    """variable -> (meaning, default), as docs/configuration.md's tables have them."""
    text = DOCS.read_text()
    assert DOCS_BEGIN in text and DOCS_END in text, "the markers around the tables are gone"
    block = text.split(DOCS_BEGIN)[1].split(DOCS_END)[0]
    rows = {}
    for line in block.splitlines():
        if line.startswith("| `"):
            name, meaning, default = (
                cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", line.strip()[1:-1])
            )
            assert name.strip("`") not in rows, f"{name} is documented twice"
            rows[name.strip("`")] = (meaning, default)
    return rows


def test_every_documented_variable_exists_with_its_documented_default_and_every_setting_is_documented():
    documented = {name: default for name, (_, default) in documented_rows().items()}
    declared = {setting.name: documented_default(setting) for _, setting in documented_settings()}
    assert documented == declared, "run: .venv/bin/python config.py docs/configuration.md"


def test_the_configuration_page_is_printed_from_the_declarations():
    assert DOCS_BEGIN + DOCS.read_text().split(DOCS_BEGIN)[1].split(DOCS_END)[0] + DOCS_END == (
        settings_table()
    ), "run: .venv/bin/python config.py docs/configuration.md"


# A read of os.environ or os.getenv (not of a WSGI environ) naming its variable.
ENVIRONMENT_READ = re.compile(
    r"""os\.(?:environ\.get\(|environ\.setdefault\(|getenv\(|environ\[)\s*["']([A-Z][A-Z0-9_]*)["']"""
)


def test_every_variable_the_code_reads_is_declared():
    sources = [
        ROOT / "config.py",
        ROOT / "wsgi.py",
        ROOT / "gunicorn.conf.py",
        *(ROOT / "trikchi").rglob("*.py"),
    ]
    read = {name for path in sources for name in ENVIRONMENT_READ.findall(path.read_text())}
    declared = {setting.name for _, setting in documented_settings()}
    assert read and read <= declared, read - declared


# A bad setting stops `flask …` and `gunicorn wsgi:app` with one line and exit status 1.

BAD_SETTINGS = [
    pytest.param(
        {"ACCESS_TOKEN_MINUTES": "abc"},
        "trikchi: configuration error: ACCESS_TOKEN_MINUTES must be a whole number of at least 1, got 'abc';"
        " correct it, or unset it for the default (15)",
        id="not-a-number",
    ),
    pytest.param(
        {"SECRET_KEY": None},
        "trikchi: configuration error: SECRET_KEY must be set in production; generate one with:"
        " python -c 'import secrets; print(secrets.token_urlsafe(48))'",
        id="production-without-secret",
    ),
]


def production_environment(tmp_path: Path, changes: dict[str, str | None]) -> dict[str, str]:
    """This process's environment without trikchi's variables, then production's with ``changes``."""
    declared = {setting.name for _, setting in documented_settings()}
    env = {name: value for name, value in os.environ.items() if name not in declared}
    env.update(
        TRIKCHI_CONFIG="production",
        SECRET_KEY=STRONG,
        JWT_SECRET_KEY=STRONG,
        DATABASE_URL=f"sqlite:///{tmp_path / 'trikchi.db'}",
    )
    for name, value in changes.items():
        if value is None:
            env.pop(name)
        else:
            env[name] = value
    return env


@pytest.mark.parametrize(("changes", "line"), BAD_SETTINGS)
def test_a_bad_setting_stops_flask_db_upgrade_with_one_line(tmp_path, changes, line):
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"],
        cwd=ROOT,
        env=production_environment(tmp_path, changes),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (result.returncode, result.stderr, result.stdout) == (1, line + "\n", "")
    assert not (tmp_path / "trikchi.db").exists()


@pytest.mark.slow
@pytest.mark.parametrize(("changes", "line"), BAD_SETTINGS)
def test_a_bad_setting_stops_gunicorn_with_one_line(tmp_path, changes, line):
    env = production_environment(tmp_path, changes)
    env.update(GUNICORN_BIND=f"127.0.0.1:{free_port()}", GUNICORN_WORKERS="1")
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (result.returncode, result.stderr, result.stdout) == (1, line + "\n", "")


@pytest.mark.slow
def test_a_bad_gunicorn_setting_stops_gunicorn_with_one_line(tmp_path):
    env = production_environment(tmp_path, {"GUNICORN_WORKERS": "many"})
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.splitlines() == [
        "trikchi: configuration error: GUNICORN_WORKERS must be a whole number of at least 1, got 'many';"
        " correct it, or unset it for the default (2 × CPUs)"
    ]
