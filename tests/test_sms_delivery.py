"""SPEC §14: SMS leave through the outbox, sent by the real worker to Eskiz and Play Mobile stand-ins.

The stand-ins (tests/support/sms_gateways.py) speak the gateways' documented HTTP; trikchi talks
real HTTP to them. What the gateway received is what a customer's phone would show.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from datetime import timedelta

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select, update

from config import ConfigError, load_config
from tests.conftest import AuthActions, make_app
from tests.support.sms_gateways import (
    ESKIZ_EMAIL,
    ESKIZ_PASSWORD,
    PLAYMOBILE_LOGIN,
    PLAYMOBILE_PASSWORD,
    Eskiz,
    PlayMobile,
    closed_url,
)
from tests.support.workers import LEASE, Workers
from trikchi import create_app, sms
from trikchi.auth.models import User
from trikchi.database import utcnow
from trikchi.extensions import db
from trikchi.outbox.models import Delivery
from trikchi.outbox.services import enqueue_sms, forget_sms_to
from trikchi.outbox.worker import deliver_due

PHONE = "+998901234567"
MASKED = "+99890*****67"
TEXT = "trikchi: kirish kodi 482910"


@pytest.fixture
def eskiz():
    gateway = Eskiz().start()
    yield gateway
    gateway.stop()


@pytest.fixture
def playmobile():
    gateway = PlayMobile().start()
    yield gateway
    gateway.stop()


def eskiz_settings(gateway: Eskiz, **overrides: object) -> dict[str, object]:
    return {
        "SMS_PROVIDER": "eskiz",
        "ESKIZ_BASE_URL": gateway.url,
        "ESKIZ_EMAIL": ESKIZ_EMAIL,
        "ESKIZ_PASSWORD": ESKIZ_PASSWORD,
        **overrides,
    }


def playmobile_settings(gateway: PlayMobile) -> dict[str, object]:
    return {
        "PLAYMOBILE_URL": gateway.url,
        "PLAYMOBILE_LOGIN": PLAYMOBILE_LOGIN,
        "PLAYMOBILE_PASSWORD": PLAYMOBILE_PASSWORD,
    }


@pytest.fixture
def sms_app(database_url):
    """Apps on the test database with the given SMS settings; engines disposed at the end."""
    apps = []

    def make(**settings: object):
        app = make_app(
            database_url,
            NOTIFY_NEW_DEVICE=False,
            MFA_REQUIRED_ROLES=[],
            OUTBOX_RETRY_BASE_SECONDS=30,
            **settings,
        )
        apps.append(app)
        return app

    yield make
    for app in apps:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def queue(app, to: str = PHONE, text: str = TEXT, count: int = 1) -> None:
    """What part B's endpoints do: an SMS in the request's transaction, committed."""
    with app.app_context():
        for _ in range(count):
            enqueue_sms(to, text)
        db.session.commit()


def deliver(app) -> int:
    with app.app_context():
        return deliver_due()


def sms_rows(app) -> list[Delivery]:
    with app.app_context():
        rows = db.session.scalars(select(Delivery).where(Delivery.kind == "sms").order_by(Delivery.id)).all()
        db.session.expunge_all()
        return list(rows)


def make_due(app) -> None:
    """Skip the back-off: every pending delivery is due now."""
    with app.app_context():
        db.session.execute(update(Delivery).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()


def sms_count(provider: str, result: str) -> float:
    return REGISTRY.get_sample_value("trikchi_sms_total", {"provider": provider, "result": result}) or 0.0


def test_eskiz_gets_a_login_then_the_form_and_one_token_serves_every_send(sms_app, eskiz):
    app = sms_app(**eskiz_settings(eskiz))
    queue(app, count=3)
    assert eskiz.requests == []  # nothing leaves before the worker runs

    assert deliver(app) == 3
    assert eskiz.logins == [{"email": ESKIZ_EMAIL, "password": ESKIZ_PASSWORD}]
    assert [(m.phone, m.text, m.sender) for m in eskiz.delivered()] == [("998901234567", TEXT, "4546")] * 3
    (token,) = eskiz.tokens
    assert all(m.headers["authorization"] == f"Bearer {token}" for m in eskiz.messages)

    queue(app)
    assert deliver(app) == 1  # another pass, another Worker: the process's token is kept
    assert len(eskiz.logins) == 1 and len(eskiz.delivered()) == 4
    assert deliver(app) == 0  # each sent once


def test_a_sent_sms_keeps_only_the_masked_number_and_the_gateway(sms_app, eskiz):
    app = sms_app(**eskiz_settings(eskiz, ESKIZ_FROM="trikchi"))
    queue(app)
    (pending,) = sms_rows(app)
    assert pending.payload == {"to": PHONE, "text": TEXT}  # the worker needs them until it is sent
    deliver(app)
    (sent,) = sms_rows(app)
    assert sent.status == "sent" and sent.attempts == 1 and sent.sent_at and sent.last_error is None
    assert sent.payload == {"to": MASKED, "provider": "eskiz"}
    assert eskiz.delivered()[0].sender == "trikchi"


def test_an_expired_eskiz_token_is_renewed_and_the_send_made_again(sms_app, eskiz):
    app = sms_app(**eskiz_settings(eskiz))
    queue(app)
    deliver(app)
    eskiz.expire_tokens()
    eskiz.requests.clear()
    queue(app, text="second")

    assert deliver(app) == 1
    assert [path for _method, path in eskiz.requests] == [
        "/api/message/sms/send",  # 401: the kept token expired
        "/api/auth/login",
        "/api/message/sms/send",
    ]
    assert len(eskiz.logins) == 2 and [m.text for m in eskiz.delivered()] == [TEXT, "second"]
    assert [row.status for row in sms_rows(app)] == ["sent", "sent"]
    assert sms_rows(app)[1].attempts == 1  # renewed within the attempt


def test_threads_share_one_eskiz_login_and_one_renewal(eskiz):
    """The worker's threads (or several workers in one process) log in once, and renew once."""
    config = {**eskiz_settings(eskiz), "ESKIZ_FROM": "4546"}
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def send(index: int) -> None:
        with httpx.Client(timeout=10) as client:
            start.wait()
            try:
                sms.send(client, config, PHONE, f"text {index}", message_id=f"trikchi{index}", timeout=10)
            except BaseException as error:  # noqa: BLE001 - reported below
                errors.append(error)

    for _round in range(2):
        threads = [threading.Thread(target=send, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        eskiz.expire_tokens()
    assert errors == []
    assert len(eskiz.delivered()) == 16
    assert len(eskiz.logins) == 2  # the first send, and once after the tokens expired


def test_wrong_eskiz_credentials_are_a_failure_that_names_no_secret(sms_app, eskiz):
    app = sms_app(**eskiz_settings(eskiz, ESKIZ_PASSWORD="not-the-key"))
    queue(app)
    deliver(app)
    (row,) = sms_rows(app)
    assert row.status == "pending" and row.last_error == "eskiz: login HTTP 401"
    assert eskiz.messages == []


def test_play_mobile_gets_basic_auth_and_its_messages_json(sms_app, playmobile):
    app = sms_app(SMS_PROVIDER="playmobile", **playmobile_settings(playmobile))
    playmobile.answer = lambda attempt: 503 if attempt == 1 else 200
    queue(app)
    deliver(app)
    (row,) = sms_rows(app)
    assert row.status == "pending" and row.last_error == "playmobile: HTTP 503"
    make_due(app)
    deliver(app)

    (row,) = sms_rows(app)
    assert row.status == "sent" and row.payload == {"to": MASKED, "provider": "playmobile"}
    expected = {
        "messages": [
            {
                "recipient": "998901234567",
                "message-id": f"trikchi{row.id}",
                "sms": {"originator": "3700", "content": {"text": TEXT}},
            }
        ]
    }
    assert playmobile.bodies == [expected, expected]  # a retry carries the same message-id
    assert playmobile.messages[0].headers["content-type"] == "application/json"


@pytest.mark.parametrize("failure", ["5xx", "connection refused", "wrong credentials", "hangs"])
def test_the_fallback_sends_when_the_first_gateway_fails(sms_app, eskiz, playmobile, failure):
    settings = eskiz_settings(eskiz, SMS_FALLBACK_PROVIDER="playmobile", **playmobile_settings(playmobile))
    if failure == "5xx":
        eskiz.answer = lambda _attempt: 502
    elif failure == "connection refused":
        settings["ESKIZ_BASE_URL"] = closed_url()
    elif failure == "wrong credentials":
        settings["ESKIZ_PASSWORD"] = "expired-key"
    else:  # the gateway takes the request and says nothing: the fallback gets its own timeout
        eskiz.hold = threading.Event()
        settings["OUTBOX_TIMEOUT_SECONDS"] = 1
    app = sms_app(**settings)
    before = {
        "eskiz failed": sms_count("eskiz", "failed"),
        "eskiz sent": sms_count("eskiz", "sent"),
        "playmobile sent": sms_count("playmobile", "sent"),
    }
    queue(app)

    assert deliver(app) == 1
    assert [(m.phone, m.text) for m in playmobile.delivered()] == [("998901234567", TEXT)]
    assert eskiz.delivered() == []
    (row,) = sms_rows(app)
    assert row.status == "sent" and row.attempts == 1 and row.last_error is None
    assert row.payload == {"to": MASKED, "provider": "playmobile"}
    assert sms_count("eskiz", "failed") == before["eskiz failed"] + 1
    assert sms_count("eskiz", "sent") == before["eskiz sent"]
    assert sms_count("playmobile", "sent") == before["playmobile sent"] + 1


def test_retried_with_back_off_then_dead_then_an_admin_sees_and_retries_it(sms_app, eskiz, playmobile):
    app = sms_app(
        SMS_MAX_ATTEMPTS=3,
        **eskiz_settings(eskiz, SMS_FALLBACK_PROVIDER="playmobile", **playmobile_settings(playmobile)),
    )
    admin = AuthActions(app.test_client())
    admin.register(email="boss@example.com", name="Boss")
    with app.app_context():
        db.session.execute(update(User).where(User.email == "boss@example.com").values(role="admin"))
        db.session.commit()
    assert admin.login(email="boss@example.com").status_code == 200
    eskiz.answer = lambda _attempt: 500
    playmobile.answer = lambda _attempt: 503
    failed_before = sms_count("eskiz", "failed"), sms_count("playmobile", "failed")
    queue(app)

    before = utcnow()
    deliver(app)
    after = utcnow()
    (row,) = sms_rows(app)
    assert row.status == "pending" and row.attempts == 1
    assert row.last_error == "eskiz: HTTP 500; playmobile: HTTP 503"
    # The first retry waits OUTBOX_RETRY_BASE_SECONDS, give or take the jitter (half to all of it).
    assert before + timedelta(seconds=15) <= row.next_attempt_at <= after + timedelta(seconds=30)
    deliver(app)
    assert sms_rows(app)[0].attempts == 1  # not due yet
    for _ in range(2):
        make_due(app)
        deliver(app)
    make_due(app)
    deliver(app)
    (dead,) = sms_rows(app)
    assert dead.status == "dead" and dead.attempts == 3
    assert len(eskiz.messages) == len(playmobile.messages) == 3
    assert (sms_count("eskiz", "failed"), sms_count("playmobile", "failed")) == (
        failed_before[0] + 3,
        failed_before[1] + 3,
    )

    listed = admin.client.get("/admin/deliveries?kind=sms&status=dead", headers=admin.headers())
    assert listed.status_code == 200 and listed.json["total"] == 1
    (item,) = listed.json["items"]
    assert item["id"] == dead.id and item["kind"] == "sms" and item["target"] == MASKED
    assert item["last_error"] == "eskiz: HTTP 500; playmobile: HTTP 503"
    everything = admin.client.get("/admin/deliveries", headers=admin.headers())
    for page in (listed, everything):
        body = json.dumps(page.json)
        assert "482910" not in body and PHONE not in body and "payload" not in body

    eskiz.answer = lambda _attempt: 200
    retried = admin.client.post(f"/admin/deliveries/{dead.id}/retry", headers=admin.headers())
    assert retried.status_code == 200 and retried.json["status"] == "pending"
    assert retried.json["target"] == MASKED and "482910" not in retried.get_data(as_text=True)
    deliver(app)
    (row,) = sms_rows(app)
    assert row.status == "sent" and row.payload == {"to": MASKED, "provider": "eskiz"}
    assert eskiz.delivered()[-1].text == TEXT


def test_the_log_gateway_writes_the_text_to_the_log(sms_app, caplog):
    app = sms_app()  # testing and development: SMS_PROVIDER=log
    assert app.config["SMS_PROVIDER"] == "log"
    before = sms_count("log", "sent")
    queue(app)
    with caplog.at_level(logging.WARNING, logger="trikchi.sms.gateways"):
        deliver(app)
    (record,) = [r for r in caplog.records if r.name == "trikchi.sms.gateways"]
    assert PHONE in record.getMessage() and TEXT in record.getMessage()
    (row,) = sms_rows(app)
    assert row.status == "sent" and row.payload == {"to": MASKED, "provider": "log"}
    assert sms_count("log", "sent") == before + 1


def test_no_gateway_keeps_the_sms_in_the_outbox_and_logs_no_text(sms_app, caplog):
    app = sms_app(SMS_PROVIDER=None)  # production's default
    queue(app)
    with caplog.at_level(logging.INFO):
        deliver(app)
    (row,) = sms_rows(app)
    assert row.status == "pending" and row.last_error == "SMS_PROVIDER is not set"
    assert row.payload == {"to": PHONE, "text": TEXT}
    assert TEXT not in caplog.text and "482910" not in caplog.text


def test_unsent_sms_to_a_number_can_be_forgotten(sms_app):
    app = sms_app(SMS_PROVIDER=None)
    queue(app, count=2)
    queue(app, to="+998935550011")
    with app.app_context():
        assert forget_sms_to(PHONE) == 2
        db.session.commit()
    assert [row.payload["to"] for row in sms_rows(app)] == ["+998935550011"]


@pytest.mark.slow
def test_a_worker_killed_between_claim_and_answer_loses_no_sms(database_url, eskiz, tmp_path):
    app = make_app(database_url)
    queue(app)
    eskiz.hold = threading.Event()
    env = {
        "SMS_PROVIDER": "eskiz",
        "ESKIZ_BASE_URL": eskiz.url,
        "ESKIZ_EMAIL": ESKIZ_EMAIL,
        "ESKIZ_PASSWORD": ESKIZ_PASSWORD,
    }
    workers = Workers(database_url, tmp_path)
    try:
        doomed = workers.start(**env)
        assert eskiz.seen_first.wait(30), workers.log(0)  # claimed, and the gateway has the request
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=10)
        held, eskiz.hold = eskiz.hold, None
        held.set()  # the gateway answers a dead worker: it never learns the SMS went
        (row,) = sms_rows(app)
        assert row.status == "delivering" and row.payload == {"to": PHONE, "text": TEXT}

        workers.start(**env)
        deadline = time.monotonic() + LEASE + 30
        while sms_rows(app)[0].status != "sent":
            assert time.monotonic() < deadline, workers.log(1)
            time.sleep(0.05)
    finally:
        workers.stop_all()
    # At least once: the lease ran out and the next worker sent it again; nothing was lost.
    assert [m.text for m in eskiz.messages] == [TEXT, TEXT]
    (row,) = sms_rows(app)
    assert row.attempts == 2 and row.payload == {"to": MASKED, "provider": "eskiz"}
    with app.app_context():
        db.engine.dispose()


# --- settings -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"SMS_PROVIDER": "twilio"}, "SMS_PROVIDER"),
        ({"SMS_PROVIDER": "eskiz"}, "ESKIZ_EMAIL"),
        ({"SMS_PROVIDER": "eskiz", "ESKIZ_EMAIL": "shop@example.uz"}, "ESKIZ_PASSWORD"),
        ({"SMS_PROVIDER": "playmobile", "PLAYMOBILE_LOGIN": "shop"}, "PLAYMOBILE_PASSWORD"),
        ({"SMS_FALLBACK_PROVIDER": "playmobile"}, "PLAYMOBILE_LOGIN"),
        ({"SMS_FALLBACK_PROVIDER": "log"}, "SMS_FALLBACK_PROVIDER"),
        (
            {
                "SMS_PROVIDER": "eskiz",
                "ESKIZ_EMAIL": "a@b.uz",
                "ESKIZ_PASSWORD": "x",
                "SMS_FALLBACK_PROVIDER": "eskiz",
            },
            "SMS_FALLBACK_PROVIDER",
        ),
        ({"ESKIZ_BASE_URL": "notify.eskiz.uz/api"}, "ESKIZ_BASE_URL"),
        ({"SMS_MAX_ATTEMPTS": "0"}, "SMS_MAX_ATTEMPTS"),
        (  # two gateways, each up to the timeout, must fit in one lease
            {
                "SMS_FALLBACK_PROVIDER": "playmobile",
                "PLAYMOBILE_LOGIN": "shop",
                "PLAYMOBILE_PASSWORD": "x",
                "OUTBOX_TIMEOUT_SECONDS": "30",
            },
            "OUTBOX_LEASE_SECONDS",
        ),
    ],
)
def test_unusable_sms_settings_are_refused_naming_the_variable(monkeypatch, environ, variable):
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=variable):
        load_config("testing")


@pytest.fixture
def production_env(monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "k" * 32)
    monkeypatch.setenv("JWT_SECRET_KEY", "k" * 32)
    monkeypatch.setenv("DATABASE_URL", "sqlite:///unused.db")
    return monkeypatch


def test_production_refuses_the_log_gateway(production_env):
    production_env.setenv("SMS_PROVIDER", "log")
    with pytest.raises(ConfigError, match="SMS_PROVIDER=log writes sign-in codes to the log"):
        load_config("production")


def test_production_without_a_gateway_starts_and_warns(production_env, caplog):
    production_env.setenv("LOG_FORMAT", "text")  # JSON lines bypass pytest's log capture
    with caplog.at_level(logging.WARNING):
        app = create_app("production")
    assert app.config["SMS_PROVIDER"] is None
    assert "SMS_PROVIDER is not set" in caplog.text
    production_env.setenv("SMS_PROVIDER", "eskiz")
    production_env.setenv("ESKIZ_EMAIL", "shop@example.uz")
    production_env.setenv("ESKIZ_PASSWORD", "key")
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert create_app("production").config["SMS_PROVIDER"] == "eskiz"
    assert "SMS_PROVIDER" not in caplog.text


def test_numbers_are_masked_for_staff():
    assert sms.mask_number(PHONE) == MASKED
    assert sms.mask_number(MASKED) == MASKED  # a sent SMS's stored number stays as it is
    assert sms.mask_number("+12") == "*12" and sms.mask_number(None) is None
