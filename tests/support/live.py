"""Run the real app under gunicorn on 127.0.0.1 for tests that need real processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import NoReturn

import pyotp
import requests

from tests.support.postgres import free_port

ROOT = Path(__file__).resolve().parents[2]


class LiveServer:
    """``gunicorn wsgi:app`` with the given environment; stopped by ``stop()``."""

    def __init__(
        self, env: dict[str, str], workers: int = 4, port: int | None = None, outbox_worker: bool = False
    ) -> None:
        # A caller that must know the URL before the server starts (JWT_ISSUER = its own
        # public URL) picks the port itself with ``free_port()``.
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(env.get("TRIKCHI_TEST_LOGDIR", "/tmp")) / f"gunicorn-{self.port}.log"
        # Every worker must sign with the same keys (development/testing would make
        # random ones per process).
        full_env = {
            **os.environ,
            "SECRET_KEY": "live-secret-" + "s" * 32,
            "JWT_SECRET_KEY": "live-jwt-" + "j" * 32,
        }
        full_env.update(env)
        self.env = dict(full_env)
        full_env.update(
            GUNICORN_BIND=f"127.0.0.1:{self.port}",
            GUNICORN_WORKERS=str(workers),
            GUNICORN_MAX_REQUESTS="0",
        )
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        # No control socket: gunicorn 27's default is one path for every gunicorn on the machine
        # (~/.gunicorn/gunicorn.ctl), which servers started side by side (pytest-xdist's processes,
        # another checkout's suite) would take from each other.
        config = str(ROOT / "gunicorn.conf.py")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", config, "--no-control-socket", "wsgi:app"],
            cwd=ROOT,
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        # Mails and webhooks leave through the outbox: `flask worker` beside gunicorn, as deployed.
        self.worker = (
            subprocess.Popen(
                [sys.executable, "-m", "flask", "--app", "wsgi", "worker", "--poll-interval", "0.05"],
                cwd=ROOT,
                env=self.env,
                stdout=self._log,
                stderr=subprocess.STDOUT,
            )
            if outbox_worker
            else None
        )

    def wait_ready(self, timeout: float = 30) -> LiveServer:
        """Block until ``/healthz`` answers (or fail with the server's log)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._give_up(f"gunicorn exited:\n{self.log()}")
            # A probe is never abandoned while the deadline allows: one left queued in the listen
            # backlog would be answered (and counted in the metrics) later.
            try:
                wait = max(1.0, deadline - time.monotonic())
                if requests.get(self.url + "/healthz", timeout=wait).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self._give_up(f"gunicorn did not start in {timeout}s:\n{self.log()}")

    def _give_up(self, message: str) -> NoReturn:
        """Stop what was started, then fail: a server left running (and its log left open) would
        fail whichever test the garbage collector found it in (a ResourceWarning is an error)."""
        self.stop()
        raise RuntimeError(message)

    def flask(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run ``flask --app wsgi <args>`` with the server's environment (its database, its secrets)."""
        return subprocess.run(
            [sys.executable, "-m", "flask", "--app", "wsgi", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def log(self) -> str:
        """Everything the server printed so far."""
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """Terminate gunicorn and its workers (and the outbox worker)."""
        for process in (self.process, self.worker):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self._log.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def enrol_totp(api: LiveServer, access_token: str) -> pyotp.TOTP:
    """Turn TOTP on for the token's user (the sign-in is fresh); confirmed with the previous step's
    code, so that the next step's code is still unused for the sign-in that follows."""
    setup = requests.post(f"{api.url}/auth/mfa/totp/setup", headers=bearer(access_token), timeout=10)
    assert setup.status_code == 200, setup.text
    authenticator = pyotp.TOTP(setup.json()["secret"])
    step = int(time.time()) // 30
    confirm = requests.post(
        f"{api.url}/auth/mfa/totp/confirm",
        json={"code": authenticator.generate_otp(step - 1)},
        headers=bearer(access_token),
        timeout=10,
    )
    assert confirm.status_code == 200, confirm.text
    return authenticator


def next_code(authenticator: pyotp.TOTP) -> str:
    """A code no sign-in has used yet (the step after this one, inside the accepted window)."""
    return authenticator.generate_otp(int(time.time()) // 30 + 1)


class LiveClient:
    """The Flask test client's ``post`` (``.json`` on the answer) over real HTTP, for the passkey helpers."""

    def __init__(self, url: str, session: requests.Session | None = None) -> None:
        self.url, self.session = url, session or requests.Session()

    def post(self, path: str, json: dict | None = None, headers: dict | None = None):
        response = self.session.post(self.url + path, json=json, headers=headers, timeout=10)
        response.json = response.json()  # type: ignore[method-assign]  # the test client's shape
        return response
