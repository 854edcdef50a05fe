"""The HTTP answer of a sign-in decision, the same for every method that answers with JSON."""

from __future__ import annotations

from flask import Response, jsonify

from trikchi.auth.signin import MfaRequired, SignInResult
from trikchi.auth.tokens import token_response


def sign_in_response(result: SignInResult, status: int = 200) -> Response:
    """The login body and cookies of a session, or the second step's body (no token, no cookie)."""
    if isinstance(result, MfaRequired):
        response = jsonify(result.body())
        response.status_code = status
        response.headers["Cache-Control"] = "no-store"
        return response
    return token_response(result, status)
