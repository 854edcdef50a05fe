"""SPEC §11: Prometheus metrics — what is counted, who may scrape, and sums across gunicorn workers."""

from __future__ import annotations

import os
import uuid

import pytest
import requests
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import PASSWORD, AuthActions, make_app, migrate_to_head
from tests.support.live import LiveServer
from trikchi.extensions import db


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """``{(sample name, labels): value}`` of a Prometheus text exposition."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_metrics_are_served_to_allowed_addresses_only(app):
    client = app.test_client()
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    assert "trikchi_http_requests_total" in response.get_data(as_text=True)
    refused = client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert refused.status_code == 404 and refused.json["error"] == "not_found"
    assert "trikchi" not in refused.get_data(as_text=True).split('"message"')[0]
    ipv6 = client.get("/metrics", environ_base={"REMOTE_ADDR": "::1"})
    assert ipv6.status_code == 200


def test_allowed_networks_and_switching_metrics_off(database_url):
    on = make_app(database_url, METRICS_ALLOWED_IPS=["10.0.0.0/8"])
    assert on.test_client().get("/metrics", environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 200
    assert on.test_client().get("/metrics").status_code == 404  # 127.0.0.1 is not in the list now
    off = make_app(database_url, METRICS_ENABLED=False)
    response = off.test_client().get("/metrics")
    assert response.status_code == 404 and response.is_json
    for app in (on, off):
        with app.app_context():
            db.engine.dispose()


def test_requests_sign_ins_refreshes_reuse_and_429s_are_counted(database_url):
    app = make_app(database_url, RATELIMIT_LOGIN="4 per minute")
    before = {
        "me": value("trikchi_http_requests_total", method="GET", endpoint="/auth/me", status="200"),
        "me_count": value(
            "trikchi_http_request_duration_seconds_count", method="GET", endpoint="/auth/me", status="200"
        ),
        "ok": value("trikchi_signins_total", method="password", result="success"),
        "bad": value("trikchi_signins_total", method="password", result="failure"),
        "refresh": value("trikchi_refreshes_total"),
        "reuse": value("trikchi_refresh_reuse_detections_total"),
        "429": value("trikchi_rate_limited_total", endpoint="/auth/login"),
        "unmatched": value("trikchi_http_requests_total", method="GET", endpoint="<unmatched>", status="404"),
    }
    user = AuthActions(app.test_client())
    user.signup()  # login 1
    for _ in range(3):
        user.me()
    assert user.login(password="wrong password here").status_code == 401  # login 2
    spent = user.refresh_cookie()
    assert user.refresh().status_code == 200
    thief = app.test_client()
    thief.set_cookie("refresh_token", spent)
    thief.set_cookie("csrf_refresh_token", user.csrf_cookie())
    # (within the grace window a replay is refused without revoking; the reuse counter needs it over)
    app.config["REFRESH_REUSE_GRACE_SECONDS"] = 0
    assert thief.post("/auth/refresh_token", headers={"X-CSRF-TOKEN": user.csrf_cookie()}).status_code == 401
    for _ in range(3):
        user.login()  # logins 3, 4 (allowed) and 5 (429)
    for path in (f"/{uuid.uuid4().hex}", f"/{uuid.uuid4().hex}"):
        assert app.test_client().get(path).status_code == 404

    assert (
        value("trikchi_http_requests_total", method="GET", endpoint="/auth/me", status="200") - before["me"]
        == 3
    )
    assert (
        value("trikchi_http_request_duration_seconds_count", method="GET", endpoint="/auth/me", status="200")
        - before["me_count"]
        == 3
    )
    assert value("trikchi_signins_total", method="password", result="success") - before["ok"] == 3
    assert value("trikchi_signins_total", method="password", result="failure") - before["bad"] == 1
    assert value("trikchi_refreshes_total") - before["refresh"] == 1
    assert value("trikchi_refresh_reuse_detections_total") - before["reuse"] == 1
    assert value("trikchi_rate_limited_total", endpoint="/auth/login") - before["429"] == 1
    assert (
        value("trikchi_http_requests_total", method="GET", endpoint="<unmatched>", status="404")
        - before["unmatched"]
        == 2
    )
    exposition = app.test_client().get("/metrics").get_data(as_text=True)
    assert 'endpoint="/auth/me"' in exposition and "<unmatched>" in exposition
    with app.app_context():
        db.engine.dispose()


@pytest.mark.slow
def test_counters_add_up_across_four_gunicorn_workers(tmp_path):
    path = tmp_path / "trikchi.db"
    migrate_to_head(f"sqlite:///{path}")
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_99999.db").write_bytes(b"stale")  # an earlier run's file: removed at start
    server = LiveServer(
        {
            "TRIKCHI_CONFIG": "testing",
            "DATABASE_URL": f"sqlite:///{path}",
            "TRIKCHI_TEST_LOGDIR": str(tmp_path),
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        },
        workers=4,
    )
    try:
        server.wait_ready()
        base = server.url
        health_before = 0
        # wait_ready's probes are counted too: read them first, from the scrape itself.
        first = samples(requests.get(base + "/metrics", timeout=30).text)
        health_before = first.get(
            (
                "trikchi_http_requests_total",
                frozenset({"method": "GET", "endpoint": "/healthz", "status": "200"}.items()),
            ),
            0,
        )
        for _ in range(40):
            assert requests.get(base + "/healthz", timeout=30).status_code == 200
        body = {"name": "Ada", "email": "ada@example.com", "password": PASSWORD}
        assert requests.post(base + "/auth/register", json=body, timeout=30).status_code == 201
        tokens = []
        for _ in range(3):
            response = requests.post(
                base + "/auth/login", json={"email": body["email"], "password": PASSWORD}, timeout=30
            )
            assert response.status_code == 200
            tokens.append(response.json()["access_token"])
        for _ in range(2):
            wrong = {"email": body["email"], "password": "not the password"}
            assert requests.post(base + "/auth/login", json=wrong, timeout=30).status_code == 401
        for token in tokens * 4:
            headers = {"Authorization": f"Bearer {token}"}
            assert requests.get(base + "/auth/me", headers=headers, timeout=30).status_code == 200
        for _ in range(5):
            assert requests.get(base + f"/users/{uuid.uuid4().hex}", timeout=30).status_code == 404

        scraped = samples(requests.get(base + "/metrics", timeout=30).text)
    finally:
        server.stop()

    def count(name: str, **labels: str) -> float:
        return scraped.get((name, frozenset(labels.items())), 0)

    assert count("trikchi_http_requests_total", method="GET", endpoint="/healthz", status="200") == (
        health_before + 40
    )
    assert count("trikchi_http_requests_total", method="GET", endpoint="/auth/me", status="200") == 12
    assert (
        count("trikchi_http_request_duration_seconds_count", method="GET", endpoint="/auth/me", status="200")
        == 12
    )
    assert count("trikchi_http_requests_total", method="POST", endpoint="/auth/login", status="200") == 3
    assert count("trikchi_http_requests_total", method="POST", endpoint="/auth/login", status="401") == 2
    assert count("trikchi_http_requests_total", method="POST", endpoint="/auth/register", status="201") == 1
    assert count("trikchi_signins_total", method="password", result="success") == 3
    assert count("trikchi_signins_total", method="password", result="failure") == 2
    assert count("trikchi_http_requests_total", method="GET", endpoint="<unmatched>", status="404") == 5
    assert not any("/users/" in dict(labels).get("endpoint", "") for _name, labels in scraped)
    # The sums came from several processes' files (the stale one was removed at start).
    pids = {name.rsplit("_", 1)[1] for name in os.listdir(metrics_dir) if name.startswith("counter_")}
    assert len(pids) >= 2 and "99999.db" not in pids
