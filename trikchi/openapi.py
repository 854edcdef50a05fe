"""The OpenAPI document: flask-smorest's Api with trikchi's error schema and document metadata.

The document is checked in ``make test`` by openapi-spec-validator, Spectral
(``spectral:oas``) and a client generated from it, so what is written here is
what a client author gets.
"""

from __future__ import annotations

from typing import Any

import flask_smorest
from apispec import BasePlugin
from marshmallow import Schema, fields, validate

from trikchi.error_codes import ERROR_DESCRIPTIONS, ErrorCode

DESCRIPTION = """\
trikchi is the authentication service of trikchi.uz: registration, sign-in,
sessions with rotating refresh tokens, and account administration.

The access token travels in the `Authorization: Bearer` header. The refresh
token lives only in the HttpOnly `refresh_token` cookie; `POST /auth/refresh_token`
and `POST /auth/logout` also need the `X-CSRF-TOKEN` header equal to the
`csrf_token` of the login body (double-submit).

Every error is JSON in one shape (`Error`): branch on its `error` code, show its
`message`.
"""


def _error_values() -> str:
    return "\n".join(f"- `{code}`: {ERROR_DESCRIPTIONS[code]}" for code in ErrorCode)


class ErrorSchema(Schema):
    """Every error body of the API."""

    code = fields.Integer(required=True, metadata={"description": "The HTTP status code.", "example": 401})
    status = fields.String(
        required=True, metadata={"description": "The HTTP reason phrase.", "example": "Unauthorized"}
    )
    error = fields.String(
        required=True,
        validate=validate.OneOf([code.value for code in ErrorCode]),
        metadata={
            "description": "Stable machine-readable code; branch on it.\n\n" + _error_values(),
            "example": ErrorCode.INVALID_CREDENTIALS.value,
        },
    )
    message = fields.String(
        required=True,
        metadata={"description": "What happened, for people.", "example": "Invalid email or password."},
    )
    errors = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        metadata={"description": "Field name → messages, on validation failures."},
    )
    banned_until = fields.DateTime(
        allow_none=True,
        metadata={"description": "On `account_banned`: when the ban ends; null: until lifted."},
    )


class Api(flask_smorest.Api):
    """flask-smorest's Api with one ``Error`` schema whose fields are all required."""

    ERROR_SCHEMA = ErrorSchema

    def _register_pagination_header(self) -> None:
        """trikchi's lists carry their page in the body, not in an ``X-Pagination`` header."""


class SchemaRules(BasePlugin):
    """A schema's rules across its fields, which marshmallow cannot describe, in its component.

    A marshmallow schema states them as JSON Schema in ``OPENAPI_RULES`` (e.g. ``oneOf`` for
    "exactly one of these fields"), beside the ``validates_schema`` method that enforces them, so
    that a client (and schemathesis) knows which requests are well formed.
    """

    def schema_helper(self, name: str, definition: dict[str, Any], **kwargs: Any) -> dict[str, Any] | None:
        return getattr(kwargs.get("schema"), "OPENAPI_RULES", None)


#: The flask-smorest API (and so the OpenAPI document); ``create_app`` binds it.
api = Api(spec_kwargs={"extra_plugins": [SchemaRules()]})


def spec_options() -> dict[str, Any]:
    """``API_SPEC_OPTIONS``: what the document says about itself."""
    return {
        "info": {
            "description": DESCRIPTION,
            "contact": {
                "name": "trikchi.uz engineering",
                "url": "https://trikchi.uz",
                "email": "dev@trikchi.uz",
            },
        },
        "servers": [{"url": "/", "description": "This trikchi instance."}],
    }


def refresh_parameters(required: bool) -> list[dict[str, Any]]:
    """The refresh cookie and the CSRF header, as parameters a generated client can pass."""
    return [
        {
            "in": "cookie",
            "name": "refresh_token",
            "required": required,
            "description": "The refresh token cookie set by login or refresh (HttpOnly; browsers send it).",
            "schema": {"type": "string"},
        },
        {
            "in": "header",
            "name": "X-CSRF-TOKEN",
            "required": required,
            "description": "The `csrf_token` of the login/refresh body (= the `csrf_refresh_token` cookie).",
            "schema": {"type": "string"},
        },
    ]


SET_REFRESH_COOKIES = {
    "Set-Cookie": {
        "description": "`refresh_token` (HttpOnly) and `csrf_refresh_token`, Path=/, SameSite=Lax.",
        "schema": {"type": "string"},
    }
}
