"""Flask-Security-Too, set up as its quickstart ("Basic Flask-SQLAlchemy Application", the
fsqla_v4 models) and its single-page-application notes configure it, with its refresh tokens
on (``SECURITY_REFRESH_TOKEN``, new in 5.9: the refresh token in an HttpOnly cookie,
``fs_refresh``, rotated on every use).

Per request:

- ``GET /me`` (the app's own view, ``@auth_required("token")``, as the docs protect a view):
  the ``Authentication-Token`` header's itsdangerous signature and age checked, the user read
  by ``fs_uniquifier``, the user's fields answered. No session: a token is revocable per user
  only (changing the user's uniquifier ends all of that user's tokens), not one sign-in.
- ``POST /refresh-token`` (Flask-Security's own): the cookie's signature checked, its refresh
  tracker read (family, generation, expiry, idle time, revocation), the user read, the tracker's
  generation incremented (a reused token revokes the family), a new auth token and cookie.
- ``POST /login`` (Flask-Security's own, JSON): the user read by email, argon2 verification
  (libpass, with the bench's parameters) of the salted HMAC of the password, a new refresh
  tracker written, the auth token and the refresh cookie.

Departures from the quickstart: no ``pool_pre_ping`` (a SQLite file cannot drop a connection;
trikchi does not ping SQLite either); SQLite in WAL mode with ``synchronous=NORMAL``, as trikchi
runs it. ``python -m bench.peers.flask_security_app
setup COUNT`` creates the tables and the users; bench/run.py starts it as ``gunicorn -w 2
bench.peers.flask_security_app:app`` in bench/.venvs/flask-security.
"""

from __future__ import annotations

import sys

from flask import Flask, jsonify
from flask_security import Security, SQLAlchemyUserDatastore, auth_required, current_user, hash_password
from flask_security.models import fsqla_v4 as fsqla
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import event

from bench.peers.common import argon2_params, database_path, email, secret, setup_args, sqlite_pragmas

app = Flask(__name__)
app.config["SECRET_KEY"] = secret()
app.config["SECURITY_PASSWORD_SALT"] = secret()[::-1]
app.config["SECURITY_PASSWORD_HASH"] = "argon2"
app.config["SECURITY_PASSWORD_HASH_PASSLIB_OPTIONS"] = {
    f"argon2__{name}": value for name, value in argon2_params().items()
}
app.config["REMEMBER_COOKIE_SAMESITE"] = "strict"
app.config["SESSION_COOKIE_SAMESITE"] = "strict"
app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{database_path()}"
app.config["SQLALCHEMY_TRACK_MODIFICATIONS"] = False

# The single-page-application configuration of the docs (spa.rst): JSON only, CSRF enforced
# for session and basic authentication, token-based calls let through.
app.config["SECURITY_FLASH_MESSAGES"] = False
app.config["SECURITY_REDIRECT_BEHAVIOR"] = "spa"
app.config["SECURITY_CSRF_PROTECT_MECHANISMS"] = ["session", "basic"]
app.config["SECURITY_CSRF_IGNORE_UNAUTH_ENDPOINTS"] = True
app.config["WTF_CSRF_CHECK_DEFAULT"] = False
app.config["WTF_CSRF_TIME_LIMIT"] = None

# Refresh tokens (patterns.rst, "Authentication and Refresh Tokens"): a 15-minute auth token,
# as trikchi's access token, renewed with the rotating refresh token. The cookie stays Secure as
# the default has it (the bench sends it as a header; a browser would need HTTPS).
app.config["SECURITY_REFRESH_TOKEN"] = True

CSRFProtect(app)
db = SQLAlchemy(app)
with app.app_context():
    event.listen(db.engine, "connect", sqlite_pragmas)  # SQLite as trikchi runs it
fsqla.FsModels.set_db_info(db)


class Role(db.Model, fsqla.FsRoleMixin):
    pass


class FsRefreshTracker(db.Model, fsqla.FsRefreshTrackerMixin):
    pass


class User(db.Model, fsqla.FsUserMixin):
    def get_security_payload(self):
        """The user in JSON answers (the docs: "Override this to return any/all the user object")."""
        return {"id": self.id, "email": self.email}


user_datastore = SQLAlchemyUserDatastore(db, User, Role, refresh_tracker_model=FsRefreshTracker)
security = Security(app, user_datastore)


@app.get("/me")
@auth_required("token")
def me():
    user = current_user
    return jsonify(id=user.id, email=user.email, active=user.active, create_datetime=user.create_datetime)


def setup(count: int, password: str) -> None:
    """Create the tables and ``count`` users (one hash, shared: setup speed only)."""
    with app.app_context():
        db.create_all()
        hashed = hash_password(password)
        for n in range(count):
            user_datastore.create_user(email=email(n), password=hashed)
        db.session.commit()


if __name__ == "__main__":
    setup(*setup_args(sys.argv))
