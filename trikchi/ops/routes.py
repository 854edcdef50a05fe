"""``/healthz``, ``/readyz`` and the Swagger UI assets served from the package."""

from __future__ import annotations

from flask import Blueprint as FlaskBlueprint
from flask import Flask
from marshmallow import Schema, fields
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from trikchi.errors import ServiceUnavailable
from trikchi.extensions import db
from trikchi.http import Blueprint, document_errors

blp = Blueprint("ops", __name__, description="Liveness and readiness probes.")


class StatusSchema(Schema):
    """A probe's answer."""

    status = fields.String(required=True, metadata={"example": "ok"})


@blp.route("/healthz", methods=["GET"])
@blp.response(200, StatusSchema)
@blp.doc(operationId="getHealth")
def healthz():
    """The process is alive (touches nothing else).

    For liveness probes: answers 200 as long as the process serves requests, whatever the database
    does.
    """
    return {"status": "ok"}


@blp.route("/readyz", methods=["GET"])
@blp.response(200, StatusSchema)
@blp.doc(operationId="getReadiness")
@document_errors(blp, 503)
def readyz():
    """The database answers.

    For readiness probes and load balancers: 200 when the database answers a query, else 503 with
    `Retry-After`.
    """
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        raise ServiceUnavailable("The database does not answer.") from None  # the handler rolls back
    finally:
        db.session.rollback()
    return {"status": "ok"}


def register_swagger_assets(app: Flask) -> None:
    """Serve Swagger UI's files from the swagger-ui-bundle package: /docs works offline."""
    from swagger_ui_bundle import swagger_ui_path

    assets = FlaskBlueprint(
        "swagger_ui_assets",
        __name__,
        static_folder=swagger_ui_path,
        static_url_path="/docs/assets",
    )
    app.register_blueprint(assets)
