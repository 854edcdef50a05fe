"""``/.well-known/jwks.json`` and ``/.well-known/openid-configuration``: where verifiers find the keys."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import current_app, jsonify
from marshmallow import Schema, fields

from trikchi.http import Blueprint
from trikchi.keys import ring

JWKS_PATH = "/.well-known/jwks.json"

blp = Blueprint(
    "keys", __name__, url_prefix="/.well-known", description="Public keys that verify access tokens."
)


class JWKSchema(Schema):
    """A public JSON Web Key (RFC 7517): key type and public parameters, never private ones."""

    kty = fields.String(required=True, metadata={"example": "EC"})
    kid = fields.String(required=True)
    alg = fields.String(required=True, metadata={"example": "ES256"})
    use = fields.String(required=True, metadata={"example": "sig"})
    crv = fields.String(metadata={"description": "EC and OKP keys."})
    x = fields.String(metadata={"description": "EC and OKP keys."})
    y = fields.String(metadata={"description": "EC keys."})
    n = fields.String(metadata={"description": "RSA keys."})
    e = fields.String(metadata={"description": "RSA keys."})


class JWKSetSchema(Schema):
    """A JWK Set."""

    keys = fields.List(fields.Nested(JWKSchema), required=True)


class DiscoverySchema(Schema):
    """The part of OpenID Connect discovery a token verifier needs."""

    issuer = fields.String(required=True, metadata={"description": "Equal to the `iss` of every token."})
    jwks_uri = fields.String(required=True)
    id_token_signing_alg_values_supported = fields.List(fields.String(), required=True)


@blp.route("/jwks.json", methods=["GET"])
@blp.response(200, JWKSetSchema)
@blp.doc(operationId="getJwks")
def jwks():
    """The public keys that verify access tokens.

    The standby, current and previous keys, each with its `kid` and the one algorithm it
    verifies. Cacheable for `JWKS_MAX_AGE_SECONDS`; a new key is published here before it
    signs. Empty in HS256 mode, where only trikchi can verify its tokens.
    """
    keys = ring.key_ring().jwks() if ring.is_asymmetric() else []
    response = jsonify(keys=keys)
    response.headers["Cache-Control"] = f"public, max-age={current_app.config['JWKS_MAX_AGE_SECONDS']}"
    return response


@blp.route("/openid-configuration", methods=["GET"])
@blp.response(200, DiscoverySchema)
@blp.doc(operationId="getOpenidConfiguration")
def openid_configuration():
    """Discovery: the issuer and where its keys are.

    For middlewares that start from an issuer URL. `issuer` is `JWT_ISSUER`; `jwks_uri` is
    under it when it is a URL (the service's public address), else under `PUBLIC_URL`; with
    neither, it is the path `/.well-known/jwks.json`, to be resolved against the address this
    document was fetched from. Never built from the request's `Host` header.
    """
    config = current_app.config
    issuer = config["JWT_ISSUER"]
    if ring.is_asymmetric():  # the algorithms of the published keys (a rotation may change it)
        algorithms = list(dict.fromkeys(key["alg"] for key in ring.key_ring().jwks()))
    else:
        algorithms = ["HS256"]
    response = jsonify(
        issuer=issuer, jwks_uri=jwks_uri(config), id_token_signing_alg_values_supported=algorithms
    )
    response.headers["Cache-Control"] = f"public, max-age={config['JWKS_MAX_AGE_SECONDS']}"
    return response


def jwks_uri(config: Mapping[str, Any]) -> str:
    """Where the JWKS is published, from the configuration alone.

    The request's ``Host`` (or an ``X-Forwarded-Host`` a proxy passed on) is written by the
    client: an address built from it would let anyone have this document name their server
    as the key source, and a cache keyed on the path alone keep that answer for everyone.
    Without a configured public address, a path (RFC 3986 relative reference) is the one
    answer that is right for every caller.
    """
    issuer = config["JWT_ISSUER"]
    base = issuer.rstrip("/") if issuer.startswith(("https://", "http://")) else config["PUBLIC_URL"]
    return (base or "") + JWKS_PATH
