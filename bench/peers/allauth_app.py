"""django-allauth's headless API for apps, in one file (settings, URLs and the WSGI application),
set up as its headless documentation does: ``HEADLESS_ONLY``, the ``app`` client, and its JWT
token strategy — access and refresh tokens, the refresh token rotated on every use
(``HEADLESS_JWT_ROTATE_REFRESH_TOKEN``, on by default) — signed with HS256 as trikchi's are,
with stateful validation on (``HEADLESS_JWT_STATEFUL_VALIDATION_ENABLED``): the option that
makes logging out end an access token at once, trikchi's guarantee.

Per request:

- ``GET /_allauth/app/v1/auth/session`` (allauth's own "who am I", with
  ``Authorization: Bearer``): the JWT verified, its session id decrypted (AES-CTR), the Django
  session read from the database and decoded, the user read, the session's authentication
  state and the user answered. Revocable per session. Seven queries in all (allauth 65.22
  reads the session and the user three times each, and the email addresses once).
- ``POST /_allauth/app/v1/tokens/refresh``: the refresh JWT verified, the session read, the
  token's id checked against the session's list, the user read, a new access token and a new
  refresh token signed, the session written back.
- ``POST /_allauth/app/v1/auth/login``: the user found by email, argon2 verification (Django's
  ``Argon2PasswordHasher`` with the bench's parameters), a Django session created and saved,
  the two tokens.

Rate limits are off (``ACCOUNT_RATE_LIMITS = False``), as trikchi's are during the bench:
capacity, not abuse protection, is measured. ``python -m bench.peers.allauth_app setup COUNT``
migrates and creates the users (with verified primary email addresses); bench/run.py starts
``gunicorn -w 2 bench.peers.allauth_app:application`` in bench/.venvs/allauth.
"""

from __future__ import annotations

import os
import sys

from django.contrib.auth.hashers import Argon2PasswordHasher

from bench.peers.common import SQLITE_PRAGMAS, argon2_params, database_path, email, secret, setup_args

MODULE = "bench.peers.allauth_app"  # these settings, the URLconf and the WSGI application

SECRET_KEY = secret()
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
ROOT_URLCONF = MODULE
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
# Persistent connections (Django's docs: opening one per request costs), and SQLite in
# write-ahead-log mode with synchronous=NORMAL, as trikchi runs it.
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": database_path(),
        "CONN_MAX_AGE": None,
        "OPTIONS": {"init_command": ";".join(SQLITE_PRAGMAS)},
    }
}

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "allauth",
    "allauth.account",
    "allauth.headless",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]


class BenchArgon2PasswordHasher(Argon2PasswordHasher):
    """Django's argon2 hasher with the bench's parameters (Django's docs: subclass and set them)."""

    time_cost = argon2_params()["time_cost"]
    memory_cost = argon2_params()["memory_cost"]
    parallelism = argon2_params()["parallelism"]


PASSWORD_HASHERS = [f"{MODULE}.BenchArgon2PasswordHasher"]

ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*"]
ACCOUNT_RATE_LIMITS = False
HEADLESS_ONLY = True
HEADLESS_CLIENTS = ("app",)
HEADLESS_FRONTEND_URLS = {
    "account_confirm_email": "http://localhost/account/verify-email/{key}",
    "account_reset_password_from_key": "http://localhost/account/password/reset/key/{key}",
    "account_signup": "http://localhost/account/signup",
}
HEADLESS_TOKEN_STRATEGY = "allauth.headless.tokens.strategies.jwt.JWTTokenStrategy"
HEADLESS_JWT_ALGORITHM = "HS256"
HEADLESS_JWT_ACCESS_TOKEN_EXPIRES_IN = 15 * 60
HEADLESS_JWT_STATEFUL_VALIDATION_ENABLED = True
HEADLESS_JWT_ROTATE_REFRESH_TOKEN = True

os.environ.setdefault("DJANGO_SETTINGS_MODULE", MODULE)

if __name__ == MODULE:
    from django.core.wsgi import get_wsgi_application
    from django.urls import include, path

    application = get_wsgi_application()
    urlpatterns = [path("_allauth/", include("allauth.headless.urls"))]


def setup(count: int, password: str) -> None:
    """Migrate, then create ``count`` users with verified primary addresses (one hash, shared:
    setup speed only)."""
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)

    from allauth.account.models import EmailAddress
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import User

    hashed = make_password(password)
    users = User.objects.bulk_create(
        User(username=f"bench{n}", email=email(n), password=hashed) for n in range(count)
    )
    EmailAddress.objects.bulk_create(
        EmailAddress(user=user, email=user.email, verified=True, primary=True) for user in users
    )


if __name__ == "__main__":
    from bench.peers import allauth_app  # the settings module, under its own name

    allauth_app.setup(*setup_args(sys.argv))
