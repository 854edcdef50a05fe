"""trikchi benchmark: the real service under gunicorn with production settings, driven by wrk.

Every figure is a ratio against a baseline measured in the same run on the same machine:

- login         vs raw argon2 verifications (same parameters, same number of processes)
- GET /auth/me  vs a bare Flask JSON endpoint under the same gunicorn settings
- refresh       vs the same bare endpoint

Run with ``make bench`` (``BENCH_SECONDS`` sets each load's length, default 10).
Loads are bounded in time and go to 127.0.0.1 only.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.postgres import ThrowawayPostgres, find_bindir, free_port  # noqa: E402

SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
PASSWORD = "correct horse battery staple"
TARGETS = {"login": 0.90, "me": 0.50, "refresh": 0.20}
MEMORY_LIMIT_MIB = 200


def gunicorn_settings() -> dict[str, str]:
    """The gunicorn defaults of gunicorn.conf.py, as this machine resolves them."""
    namespace: dict[str, object] = {}
    exec((ROOT / "gunicorn.conf.py").read_text(), namespace)  # noqa: S102 - our own config file
    return {key: str(namespace[key]) for key in ("workers", "threads", "worker_class")}


class Gunicorn:
    """A gunicorn master serving ``app`` on a free loopback port."""

    def __init__(self, app: str, env: dict[str, str], logdir: Path, probe: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(logdir / f"gunicorn-{self.port}.log", "wb")  # noqa: SIM115
        full_env = {
            **os.environ,
            **env,
            "GUNICORN_BIND": f"127.0.0.1:{self.port}",
            "GUNICORN_MAX_REQUESTS": "0",
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), app],
            cwd=ROOT,
            env=full_env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + probe, timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                time.sleep(0.2)
        raise RuntimeError(f"{app} did not start")

    def worker_pids(self) -> list[int]:
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.process.pid:
                pids.append(int(stat.parent.name))
        return pids

    def peak_worker_mib(self) -> float:
        """The largest peak resident set (VmHWM) among the workers."""
        peaks = []
        for pid in self.worker_pids():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            match = re.search(r"VmHWM:\s+(\d+) kB", status)
            if match:
                peaks.append(int(match.group(1)) / 1024)
        return max(peaks, default=0.0)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()


def wrk(url: str, script: str, env: dict[str, str], connections: int) -> dict[str, float]:
    """Run wrk for SECONDS and return its JSON summary plus requests per second."""
    threads = min(connections, 2)
    if script == "refresh.lua":
        threads = connections  # one session per thread
    lua = Path(tempfile.mkdtemp()) / script
    lua.write_text((ROOT / "bench" / script).read_text() + "\n" + (ROOT / "bench" / "report.lua").read_text())
    result = subprocess.run(
        [
            "wrk",
            "-t",
            str(threads),
            "-c",
            str(connections),
            "-d",
            f"{SECONDS}s",
            "--timeout",
            "10s",
            "-s",
            str(lua),
            url,
        ],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=SECONDS + 60,
        check=True,
    )
    shutil.rmtree(lua.parent)
    line = next(line for line in result.stdout.splitlines() if line.startswith("WRK_RESULT "))
    summary = json.loads(line.split(" ", 1)[1])
    # Only successful answers count as throughput.
    summary["rps"] = (summary["requests"] - summary["non_2xx"]) / summary["seconds"]
    return summary


def _verify_loop(args: tuple[dict[str, int], float]) -> int:
    from argon2 import PasswordHasher

    params, seconds = args
    hasher = PasswordHasher(**params)
    stored = hasher.hash(PASSWORD)
    count = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        hasher.verify(stored, PASSWORD)
        count += 1
    return count


def argon2_baseline(processes: int, params: dict[str, int]) -> float:
    """Raw argon2 verifications per second on ``processes`` processes."""
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        started = time.monotonic()
        counts = pool.map(_verify_loop, [(params, SECONDS)] * processes)
        elapsed = time.monotonic() - started
    return sum(counts) / max(elapsed, SECONDS)


def prepare_users(url: str, sessions_needed: int) -> tuple[str, list[tuple[str, str]]]:
    """Register the bench user; return an access token and ``sessions_needed`` refresh sessions."""
    body = {"name": "Bench", "email": "bench@example.com", "password": PASSWORD}
    requests.post(url + "/auth/register", json=body, timeout=30)
    sessions = []
    token = ""
    for _ in range(sessions_needed):
        response = requests.post(
            url + "/auth/login", json={"email": body["email"], "password": PASSWORD}, timeout=60
        )
        response.raise_for_status()
        token = response.json()["access_token"]
        sessions.append((response.cookies["refresh_token"], response.json()["csrf_token"]))
    return token, sessions


def migrate(env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "-m", "flask", "db", "upgrade"],
        cwd=ROOT,
        env={**os.environ, **env, "FLASK_APP": "trikchi"},
        check=True,
        capture_output=True,
    )


def bench_backend(name: str, database_url: str, logdir: Path) -> dict[str, object]:
    settings = gunicorn_settings()
    env = {
        "TRIKCHI_CONFIG": "production",
        "DATABASE_URL": database_url,
        "SECRET_KEY": secrets.token_urlsafe(48),
        "JWT_SECRET_KEY": secrets.token_urlsafe(48),
        "RATELIMIT_ENABLED": "false",  # capacity, not abuse protection, is measured here
    }
    migrate(env)
    workers, threads = int(settings["workers"]), int(settings["threads"])
    connections = max(workers * threads, 2)
    bare = Gunicorn("bench.bare:app", env, logdir, "/bare")
    try:
        bare_result = wrk(bare.url + "/bare", "me.lua", {"BENCH_TOKEN": "unused"}, connections * 2)
        bare_mib = bare.peak_worker_mib()
    finally:
        bare.stop()

    app = Gunicorn("wsgi:app", env, logdir, "/healthz")
    try:
        token, sessions = prepare_users(app.url, connections)
        me = wrk(app.url + "/auth/me", "me.lua", {"BENCH_TOKEN": token}, connections * 2)
        refresh = wrk(
            app.url + "/auth/refresh_token",
            "refresh.lua",
            {"BENCH_SESSIONS": ";".join(f"{r},{c}" for r, c in sessions)},
            connections,
        )
        login_body = json.dumps({"email": "bench@example.com", "password": PASSWORD})
        login = wrk(app.url + "/auth/login", "login.lua", {"BENCH_LOGIN_BODY": login_body}, connections)
        app_mib = app.peak_worker_mib()
    finally:
        app.stop()

    from config import ProductionConfig

    os.environ.setdefault("SECRET_KEY", env["SECRET_KEY"])
    os.environ.setdefault("JWT_SECRET_KEY", env["JWT_SECRET_KEY"])
    production = ProductionConfig()
    params = {
        "time_cost": production.ARGON2_TIME_COST,
        "memory_cost": production.ARGON2_MEMORY_COST,
        "parallelism": production.ARGON2_PARALLELISM,
    }
    raw = argon2_baseline(workers, params)
    return {
        "backend": name,
        "gunicorn": settings,
        "bare": bare_result,
        "me": me,
        "refresh": refresh,
        "login": login,
        "argon2_verifies_per_s": raw,
        "argon2_params": params,
        "peak_worker_mib": app_mib,
        "bare_peak_worker_mib": bare_mib,
    }


def table(results: list[dict]) -> str:
    rows = [
        "| backend | endpoint | req/s | baseline | baseline req/s | ratio | target "
        "| p50 ms | p99 ms | non-2xx |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        for key, baseline_name, baseline in (
            ("login", "raw argon2 verify", r["argon2_verifies_per_s"]),
            ("me", "bare Flask JSON", r["bare"]["rps"]),
            ("refresh", "bare Flask JSON", r["bare"]["rps"]),
        ):
            m = r[key]
            ratio = m["rps"] / baseline if baseline else 0
            verdict = "ok" if ratio >= TARGETS[key] else "MISSED"
            label = {
                "login": "POST /auth/login",
                "me": "GET /auth/me",
                "refresh": "POST /auth/refresh_token",
            }[key]
            rows.append(
                f"| {r['backend']} | {label} | {m['rps']:.1f} | {baseline_name} | {baseline:.1f} | "
                f"{ratio:.0%} | ≥ {TARGETS[key]:.0%} {verdict} | {m['p50_ms']:.1f} | {m['p99_ms']:.1f} "
                f"| {m['non_2xx']} |"
            )
        b = r["bare"]
        rows.append(
            f"| {r['backend']} | GET /bare (baseline) | {b['rps']:.1f} | | | | "
            f"| {b['p50_ms']:.1f} | {b['p99_ms']:.1f} | {b['non_2xx']} |"
        )
    memory = [
        f"- {r['backend']}: peak worker RSS {r['peak_worker_mib']:.0f} MiB "
        f"({'ok' if r['peak_worker_mib'] <= MEMORY_LIMIT_MIB else 'MISSED'}, limit {MEMORY_LIMIT_MIB} MiB; "
        f"bare Flask worker {r['bare_peak_worker_mib']:.0f} MiB)"
        for r in results
    ]
    g = results[0]["gunicorn"]
    header = (
        f"gunicorn: {g['workers']} workers × {g['threads']} threads ({g['worker_class']}), "
        f"argon2 {results[0]['argon2_params']}, {SECONDS} s per load, {os.cpu_count()} CPUs"
    )
    return "\n".join([header, "", *rows, "", *memory])


def main() -> int:
    if shutil.which("wrk") is None:
        print("wrk not found: run `bash scripts/system-deps.sh wrk` (Debian package wrk)", file=sys.stderr)
        return 2
    logdir = Path(tempfile.mkdtemp(prefix="trikchi-bench-"))
    results = []
    sqlite_path = logdir / "bench.db"
    results.append(bench_backend("sqlite", f"sqlite:///{sqlite_path}", logdir))
    bindir = find_bindir()
    if bindir is not None:
        postgres = ThrowawayPostgres(bindir).start()
        try:
            results.append(bench_backend("postgresql", postgres.create_database("bench"), logdir))
        finally:
            postgres.stop()
    else:
        print("PostgreSQL binaries not found: PostgreSQL skipped", file=sys.stderr)
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps(results, indent=2))
    report = table(results)
    (out / "latest.md").write_text(report + "\n")
    print(report)
    shutil.rmtree(logdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
