"""The OpenAPI document (``GET /openapi.json``), checked by tools nobody on the project wrote.

* openapi-spec-validator: the document is valid OpenAPI;
* Spectral (``spectral:oas``, ``.spectral.yaml``): no errors and no warnings;
* openapi-python-client: a typed client generated from the live document (no warnings) drives
  register -> login -> refresh -> me -> sessions -> logout against the app under gunicorn.

Spectral comes from npm (``package.json``; ``make test`` runs ``npm ci``), the Python tools
from ``requirements-dev.txt``. A missing tool skips with the reason, and fails under ``CI``.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from http.cookies import SimpleCookie
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import requests

from tests.conftest import PASSWORD, make_app, require_or_skip
from tests.support.live import LiveServer
from trikchi.extensions import db

ROOT = Path(__file__).resolve().parents[1]
SPECTRAL = ROOT / "node_modules" / ".bin" / "spectral"
RULESET = ROOT / ".spectral.yaml"
SPECTRAL_SEVERITIES = {0: "error", 1: "warning", 2: "info", 3: "hint"}
FAILING_SEVERITIES = {0, 1}
CLIENT_PACKAGE = "trikchi_openapi_client"
EMAIL = "ada@example.com"


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The document the app serves."""
    app = make_app(f"sqlite:///{tmp_path_factory.mktemp('openapi') / 'trikchi.db'}")
    response = app.test_client().get("/openapi.json")
    with app.app_context():
        db.engine.dispose()
    assert response.status_code == 200, response.data
    return response.get_json()


def where(path: list[object]) -> str:
    """A JSON path as ``paths./auth/login.post.responses.200``."""
    return ".".join(str(part) for part in path) or "(root)"


# --- openapi-spec-validator -------------------------------------------------------------------


def test_the_document_is_valid_openapi(document):
    from openapi_spec_validator.shortcuts import get_validator_cls

    validator = get_validator_cls(document)(document)
    errors = [f"{where(list(error.absolute_path))}: {error.message}" for error in validator.iter_errors()]
    assert not errors, "openapi-spec-validator:\n" + "\n".join(errors)


# --- Spectral ---------------------------------------------------------------------------------


def test_spectral_finds_no_errors_or_warnings(document, tmp_path):
    if shutil.which("node") is None:
        require_or_skip("node not found: install Node.js 20 and npm to lint the document with Spectral")
    if not SPECTRAL.exists():
        require_or_skip(f"{SPECTRAL.relative_to(ROOT)} not found: run `npm ci` (make test does)")
    path = tmp_path / "openapi.json"
    path.write_text(json.dumps(document, indent=2))
    report = tmp_path / "spectral.json"
    # Exit status 1 only says there were findings; the JSON report says which.
    result = subprocess.run(
        [
            str(SPECTRAL),
            "lint",
            "--ruleset",
            str(RULESET),
            "--format",
            "json",
            "--output",
            str(report),
            "--fail-severity",
            "warn",
            str(path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    try:
        findings = json.loads(report.read_text())
    except (OSError, json.JSONDecodeError):
        pytest.fail(f"spectral exited {result.returncode}, no report:\n{result.stdout}\n{result.stderr}")
    failing = [finding for finding in findings if finding["severity"] in FAILING_SEVERITIES]
    assert not failing, f"Spectral ({RULESET.name}): {len(failing)} finding(s):\n" + "\n".join(
        f"{SPECTRAL_SEVERITIES[f['severity']]} {f['code']} at {where(f['path'])}: {f['message']}"
        for f in failing
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- openapi-python-client --------------------------------------------------------------------


@pytest.fixture
def live_server(database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    """The app under gunicorn on a migrated database."""
    server = LiveServer(
        {
            "TRIKCHI_CONFIG": "testing",
            "DATABASE_URL": database_url,
            "RATELIMIT_STORAGE_URI": "memory://",
            "TRIKCHI_TEST_LOGDIR": str(tmp_path),
        },
        workers=2,
    )
    try:
        yield server.wait_ready()
    finally:
        server.stop()


@pytest.fixture
def live_document(live_server: LiveServer, tmp_path: Path) -> Path:
    """The document the app under gunicorn serves, in a file."""
    response = requests.get(live_server.url + "/openapi.json", timeout=30)
    assert response.status_code == 200, response.text
    path = tmp_path / "openapi.json"
    path.write_text(response.text)
    return path


@pytest.fixture
def generated_client(live_document: Path, tmp_path: Path) -> Iterator[ModuleType]:
    """The package openapi-python-client generates from the live document, imported."""
    for module in ("openapi_python_client", "httpx", "attrs"):
        if importlib.util.find_spec(module) is None:
            require_or_skip(f"{module} is not installed (pip install -r requirements-dev.txt)")
    config = tmp_path / "openapi-python-client.yaml"
    # No post hooks: how the throwaway code is formatted does not matter.
    config.write_text(json.dumps({"package_name_override": CLIENT_PACKAGE, "post_hooks": []}))
    output = tmp_path / "generated"
    output.mkdir()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            str(live_document),
            "--config",
            str(config),
            "--meta",
            "none",
            "--output-path",
            str(output / CLIENT_PACKAGE),
            "--fail-on-warning",  # a warning means part of the API is missing from the client
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, (
        f"openapi-python-client exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    )
    sys.path.insert(0, str(output))
    try:
        yield importlib.import_module(CLIENT_PACKAGE)
    finally:
        sys.path.remove(str(output))
        for name in [name for name in sys.modules if name.split(".")[0] == CLIENT_PACKAGE]:
            del sys.modules[name]


def operation(package: ModuleType, tag: str, name: str) -> ModuleType:
    """The generated module of an operation (``operationId`` in snake case, under its tag)."""
    return importlib.import_module(f"{package.__name__}.api.{tag}.{name}")


def model_of(document: dict[str, Any], package: ModuleType, path: str, method: str, status: str) -> type:
    """The generated model of a documented JSON response (of its items, for an array).

    Schema names are PascalCase already (marshmallow schema classes), so the generated model
    has the same name.
    """
    schema = document["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]
    name = schema.get("items", schema)["$ref"].rsplit("/", 1)[-1]
    model = getattr(importlib.import_module(f"{package.__name__}.models"), name, None)
    assert model is not None, f"the generated client has no model {name} ({method.upper()} {path} {status})"
    return model


def cookies_set_by(response: Any) -> dict[str, str]:
    """The cookies a generated ``Response`` sets (``Set-Cookie`` headers)."""
    jar: SimpleCookie = SimpleCookie()
    for header in response.headers.get_list("set-cookie"):
        jar.load(header)
    return {name: morsel.value for name, morsel in jar.items()}


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
# The generated code passes cookie parameters per request, which httpx 0.28 deprecates.
@pytest.mark.filterwarnings("ignore:Setting per-request cookies:DeprecationWarning")
def test_a_generated_client_signs_in_refreshes_and_signs_out(
    backend, live_server, live_document, generated_client
):
    client_module = importlib.import_module(f"{generated_client.__name__}.client")
    models = importlib.import_module(f"{generated_client.__name__}.models")
    document = json.loads(live_document.read_text())

    # Undocumented status codes raise errors.UnexpectedStatus instead of parsing to None.
    def anonymous():
        # A new client per call: it sends only what the operation's parameters say (no cookie jar).
        return client_module.Client(base_url=live_server.url, raise_on_unexpected_status=True)

    def bearer(token: str):
        return client_module.AuthenticatedClient(
            base_url=live_server.url, token=token, raise_on_unexpected_status=True
        )

    token_model = model_of(document, generated_client, "/auth/refresh_token", "post", "200")
    # Login answers the token body, or (a second factor on) the mfa_required body: one of the two.
    login_schema = document["paths"]["/auth/login"]["post"]["responses"]["200"]["content"]["application/json"]
    assert [alt["$ref"].rsplit("/", 1)[-1] for alt in login_schema["schema"]["oneOf"]] == [
        "Token",
        "MfaRequired",
    ]
    assert hasattr(models, "MfaRequired")
    user_model = model_of(document, generated_client, "/auth/me", "get", "200")
    session_model = model_of(document, generated_client, "/auth/sessions", "get", "200")

    # register
    registered = operation(generated_client, "auth", "register").sync_detailed(
        client=anonymous(), body=models.Register(name="Ada", email=EMAIL, password=PASSWORD)
    )
    assert registered.status_code == 201, registered.content
    assert isinstance(registered.parsed, user_model) and registered.parsed.email == EMAIL

    # login: the access token in the body, the refresh token in a cookie
    login = operation(generated_client, "auth", "login").sync_detailed(
        client=anonymous(), body=models.Login(email=EMAIL, password=PASSWORD)
    )
    assert login.status_code == 200, login.content
    token = login.parsed
    assert isinstance(token, token_model), token
    assert token.access_token and token.csrf_token
    first_cookie = cookies_set_by(login)["refresh_token"]

    # refresh: the refresh cookie and the X-CSRF-TOKEN header, as documented parameters
    refresh_token = operation(generated_client, "auth", "refresh_token")
    refreshed = refresh_token.sync_detailed(
        client=anonymous(), refresh_token=first_cookie, x_csrf_token=token.csrf_token
    )
    assert refreshed.status_code == 200, refreshed.content
    assert isinstance(refreshed.parsed, token_model), refreshed.parsed
    assert refreshed.parsed.access_token != token.access_token
    rotated_cookie = cookies_set_by(refreshed)["refresh_token"]
    assert rotated_cookie != first_cookie
    token = refreshed.parsed

    # me
    me = operation(generated_client, "auth", "get_me").sync_detailed(client=bearer(token.access_token))
    assert me.status_code == 200, me.content
    assert isinstance(me.parsed, user_model) and me.parsed.email == EMAIL
    assert me.parsed.id == registered.parsed.id

    # sessions: this one, marked current
    sessions = operation(generated_client, "auth", "list_sessions").sync_detailed(
        client=bearer(token.access_token)
    )
    assert sessions.status_code == 200, sessions.content
    assert isinstance(sessions.parsed, list) and len(sessions.parsed) == 1, sessions.parsed
    assert isinstance(sessions.parsed[0], session_model) and sessions.parsed[0].current is True

    # logout
    logout = operation(generated_client, "auth", "logout").sync_detailed(
        client=anonymous(), refresh_token=rotated_cookie, x_csrf_token=token.csrf_token
    )
    assert logout.status_code == 200, logout.content
    assert isinstance(logout.parsed, model_of(document, generated_client, "/auth/logout", "post", "200"))

    # the signed-out refresh token is refused with the documented error shape
    refused = refresh_token.sync_detailed(
        client=anonymous(), refresh_token=rotated_cookie, x_csrf_token=token.csrf_token
    )
    assert refused.status_code == 401, refused.content
    error = refused.parsed
    assert isinstance(error, models.Error), error
    assert error.code == 401 and isinstance(error.status, str) and error.message
    # Typed all the way: the model gives back exactly the JSON the server sent.
    assert error.to_dict() == json.loads(refused.content)
