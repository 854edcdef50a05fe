"""trikchi beside the Python systems people would pick instead, one server at a time, driven by wrk.

Each server runs alone on SQLite with 2 workers (gunicorn sync workers; uvicorn workers for
FastAPI), hashes passwords with argon2id at trikchi's ``ARGON2_*`` parameters, and is loaded
with the same three loads:

- "me": the caller's own record (``GET /auth/me`` or the peer's equivalent) with a different
  user's token on each request, ``BENCH_USERS`` (64) users in turn (bench/me.lua), after a
  one-second warm-up;
- refresh: ``REFRESH_SESSIONS`` (16) sessions of as many users, each refreshing in a loop with
  the token of its previous answer (bench/refresh.lua), where the server has a refresh flow;
- login: the right password for one user, in a loop (bench/login.lua).

The servers (bench/peers/, each peer in a venv of its own under bench/.venvs/, made by
``make bench`` from bench/requirements/): trikchi under gunicorn with its production settings,
the seed's own stack, fastapi-users, Flask-Security-Too, django-allauth headless, and each
framework's bare endpoint (Flask, FastAPI, Django), which does nothing but answer a small JSON
object: the framework's limit, for scale. Raw argon2 verifications (same parameters, 2
processes) are measured in the same run.

The targets (issue 28), as ratios in that one run: trikchi's ``/auth/me`` ≥ 1.2× the fastest
peer's "me", its refresh ≥ 1.5× the fastest peer with rotating refresh tokens, its login ≥ 0.9
of raw argon2, its peak worker RSS ≤ 200 MiB. The bare endpoints are no peers.

Run with ``make bench``. ``BENCH_SECONDS`` sets each load's length (default 10),
``BENCH_ONLY`` a comma-separated subset of the servers (their keys: see SERVERS). Results go to
bench/results/latest.md and latest.json. Loads are bounded in time and go to 127.0.0.1 only.

Each load also records the share of the CPUs that processes outside the bench used meanwhile
("other CPU"): above 5 % the load is run once more (``BENCH_RETRIES``, default 1) and the less
disturbed attempt kept, and verdicts that still rest on a disturbed load say "(noisy)".
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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.postgres import free_port  # noqa: E402

SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
USERS = int(os.environ.get("BENCH_USERS", "64"))
ONLY = [key for key in os.environ.get("BENCH_ONLY", "").split(",") if key]
PASSWORD = "correct horse battery staple"
WORKERS = 2  # every server: 2 worker processes, one per core of this 2-core machine
ME_CONNECTIONS = 8
REFRESH_SESSIONS = 16  # one connection each
LOGIN_CONNECTIONS = 4
NOISY_SHARE = 0.05  # other processes using more of the CPUs than this during a load: noisy
# A noisy load is run again up to this many times; the least disturbed attempt is kept.
RETRIES = int(os.environ.get("BENCH_RETRIES", "1"))
VENVS = ROOT / "bench" / ".venvs"

# The targets. Ratios are of successful requests per second.
TARGETS = {
    "me": 1.2,  # GET /auth/me ≥ 1.2 × the fastest peer's "me"
    "refresh": 1.5,  # refresh ≥ 1.5 × the fastest peer with rotating refresh tokens
    "login": 0.9,  # login ≥ 0.9 × raw argon2 verifications
    "rss_mib": 200.0,  # trikchi's peak worker RSS ≤ 200 MiB
}


# ---------------------------------------------------------------------------------------------
# The servers


def email(n: int) -> str:
    return f"bench{n}@example.com"


@dataclass(frozen=True)
class Credentials:
    """What one sign-in gives a client: the token "me" takes, and the refresh token (with
    trikchi's CSRF value) where the server has a refresh flow."""

    access: str
    refresh: str | None = None
    csrf: str | None = None


def trikchi_sign_in(url: str, n: int) -> Credentials:
    response = requests.post(url + "/auth/login", json={"email": email(n), "password": PASSWORD}, timeout=60)
    response.raise_for_status()
    body = response.json()
    return Credentials(body["access_token"], response.cookies["refresh_token"], body["csrf_token"])


def seed_sign_in(url: str, n: int) -> Credentials:
    response = requests.post(url + "/auth/login", json={"email": email(n), "password": PASSWORD}, timeout=60)
    response.raise_for_status()
    return Credentials(response.json()["access_token"], response.cookies["refresh_token"])


def fastapi_users_sign_in(url: str, n: int) -> Credentials:
    response = requests.post(
        url + "/auth/db/login", data={"username": email(n), "password": PASSWORD}, timeout=60
    )
    response.raise_for_status()
    return Credentials(response.json()["access_token"])


def flask_security_sign_in(url: str, n: int) -> Credentials:
    response = requests.post(
        url + "/login?include_auth_token", json={"email": email(n), "password": PASSWORD}, timeout=60
    )
    response.raise_for_status()
    user = response.json()["response"]["user"]
    return Credentials(user["authentication_token"], response.cookies["fs_refresh"])


def allauth_sign_in(url: str, n: int) -> Credentials:
    response = requests.post(
        url + "/_allauth/app/v1/auth/login", json={"email": email(n), "password": PASSWORD}, timeout=60
    )
    response.raise_for_status()
    meta = response.json()["meta"]
    return Credentials(meta["access_token"], meta["refresh_token"])


@dataclass(frozen=True)
class Spec:
    """One server of the bench and what its endpoints do."""

    key: str
    label: str
    venv: str | None  # bench/.venvs/<venv>; None: the project's venv
    module: str | None  # bench.peers.<module> (its ``setup`` creates the users); None: trikchi
    app: str
    server: str  # "gunicorn" or "uvicorn"
    probe: str
    me: str
    me_does: tuple[str, str, str]  # database reads, session check, revocable
    peer: bool = True  # a peer the targets compare with (not trikchi, not a bare endpoint)
    sign_in: Callable[[str, int], Credentials] | None = None
    auth_header: str = "Authorization"
    auth_prefix: str = "Bearer "
    login: str | None = None
    login_form: bool = False  # an OAuth2 password form instead of JSON
    refresh: str | None = None
    refresh_flavour: str | None = None  # bench/refresh.lua
    rotates: bool = False
    refresh_does: str = "none"
    packages: tuple[str, ...] = field(default=())


SERVERS = [
    Spec(
        "trikchi",
        "trikchi",
        None,
        None,
        "wsgi:app",
        "gunicorn",
        "/healthz",
        "/auth/me",
        ("1 (user + session)", "yes", "per session, at once"),
        peer=False,
        sign_in=trikchi_sign_in,
        login="/auth/login",
        refresh="/auth/refresh_token",
        refresh_flavour="trikchi",
        rotates=True,
        refresh_does="rotating cookie + CSRF; reuse revokes the session",
        packages=("Flask", "Flask-JWT-Extended", "SQLAlchemy", "gunicorn", "argon2-cffi"),
    ),
    Spec(
        "seed",
        "seed stack",
        "seed",
        "seed_stack",
        "bench.peers.seed_stack:app",
        "uvicorn",
        "/docs",
        "/auth/me",
        ("1 (user)", "no", "no (valid until exp)"),
        sign_in=seed_sign_in,
        login="/auth/login",
        refresh="/auth/refresh_token",
        refresh_flavour="seed",
        refresh_does="not rotating, not revocable (30-day JWT cookie)",
        packages=(
            "fastapi",
            "starlette",
            "pydantic",
            "uvicorn",
            "uvloop",
            "httptools",
            "PyJWT",
            "SQLAlchemy",
            "passlib",
        ),
    ),
    Spec(
        "fastapi-users",
        "fastapi-users (database tokens)",
        "fastapi-users",
        "fastapi_users_app",
        "bench.peers.fastapi_users_app:app",
        "uvicorn",
        "/docs",
        "/users/me",
        ("2 (token, user)", "token row", "per token, at once"),
        sign_in=fastapi_users_sign_in,
        login="/auth/db/login",
        login_form=True,
        refresh_does="none: fastapi-users has no refresh flow",
        packages=(
            "fastapi-users",
            "fastapi-users-db-sqlalchemy",
            "fastapi",
            "SQLAlchemy",
            "aiosqlite",
            "pwdlib",
            "uvicorn",
        ),
    ),
    Spec(
        "flask-security",
        "Flask-Security-Too",
        "flask-security",
        "flask_security_app",
        "bench.peers.flask_security_app:app",
        "gunicorn",
        "/login",
        "/me",
        ("1 (user)", "no", "per user only (all its tokens)"),
        sign_in=flask_security_sign_in,
        auth_header="Authentication-Token",
        auth_prefix="",
        login="/login?include_auth_token",
        refresh="/refresh-token",
        refresh_flavour="flask-security",
        rotates=True,
        refresh_does="rotating cookie; reuse revokes the family",
        packages=("Flask-Security-Too", "Flask", "Flask-SQLAlchemy", "SQLAlchemy", "libpass", "gunicorn"),
    ),
    Spec(
        "allauth",
        "django-allauth headless (JWT)",
        "allauth",
        "allauth_app",
        "bench.peers.allauth_app:application",
        "gunicorn",
        "/_allauth/app/v1/config",
        "/_allauth/app/v1/auth/session",
        ("7 (session ×3, user ×3, email)", "yes", "per session, at once"),
        sign_in=allauth_sign_in,
        login="/_allauth/app/v1/auth/login",
        refresh="/_allauth/app/v1/tokens/refresh",
        refresh_flavour="allauth",
        rotates=True,
        refresh_does="rotating token in the body; reuse refused",
        packages=("django-allauth", "Django", "PyJWT", "gunicorn"),
    ),
    Spec(
        "bare-flask",
        "bare Flask",
        None,
        None,
        "bench.peers.bare_flask:app",
        "gunicorn",
        "/bare",
        "/bare",
        ("0", "no", "—"),
        peer=False,
    ),
    Spec(
        "bare-fastapi",
        "bare FastAPI",
        "seed",
        None,
        "bench.peers.bare_fastapi:app",
        "uvicorn",
        "/bare",
        "/bare",
        ("0", "no", "—"),
        peer=False,
    ),
    Spec(
        "bare-django",
        "bare Django",
        "allauth",
        None,
        "bench.peers.bare_django:application",
        "gunicorn",
        "/bare",
        "/bare",
        ("0", "no", "—"),
        peer=False,
    ),
]


def python(spec: Spec) -> str:
    if spec.venv is None:
        return sys.executable
    path = VENVS / spec.venv / "bin" / "python"
    if not path.exists():
        raise SystemExit(f"{path} is missing: run `make bench`, which creates the bench's venvs")
    return str(path)


def versions(spec: Spec) -> str:
    """The versions of the packages that matter, as installed in the server's venv."""
    if not spec.packages:
        return ""
    code = (
        "import sys\nfrom importlib import metadata\n"
        "print(', '.join(f'{n} {metadata.version(n)}' for n in sys.argv[1:]))"
    )
    result = subprocess.run(
        [python(spec), "-c", code, *spec.packages], capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


# ---------------------------------------------------------------------------------------------
# Measuring: the CPU share of other processes, servers, wrk, raw argon2

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_busy_ticks() -> int:
    """CPU time of every process on the machine (all CPUs), plus time the hypervisor stole.

    Interrupt time is left out: on loopback most of it is the bench's own traffic.
    """
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, steal = fields[0], fields[1], fields[2], fields[7]
    return user + nice + system + steal


def _our_ticks() -> int:
    """CPU time of this process tree (live processes plus their reaped children)."""
    parents, times = {}, {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        parents[pid] = int(fields[1])
        times[pid] = sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    root = os.getpid()
    total = 0
    for pid in times:
        ancestor, depth = pid, 0
        while ancestor != root and ancestor > 1 and depth < 64:
            ancestor, depth = parents.get(ancestor, 0), depth + 1
        if ancestor == root:
            total += times[pid]
    return total


class CpuWatch:
    """The share of the machine's CPUs that processes other than the bench's used meanwhile.

    Other work on the machine (another engineer's tests, say) takes cores from the server
    under test; this says how much, so noisy figures can be told from real ones.
    """

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.busy, self.ours = _cpu_busy_ticks(), _our_ticks()

    def other_share(self) -> float:
        elapsed = time.monotonic() - self.started
        busy, ours = _cpu_busy_ticks() - self.busy, _our_ticks() - self.ours
        capacity = elapsed * CLOCK_TICKS * (os.cpu_count() or 1)
        return max(busy - ours, 0) / capacity if capacity else 0.0


class Server:
    """A pre-forking server (gunicorn or uvicorn) on a free loopback port."""

    def __init__(self, command: list[str], env: dict[str, str], logdir: Path, probe: str, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = open(logdir / f"server-{port}.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            command, cwd=ROOT, env={**os.environ, **env}, stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if requests.get(self.url + probe, timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{' '.join(command)} did not start (log: {self.log.name})")

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
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        self.log.close()


def start(spec: Spec, env: dict[str, str], logdir: Path) -> Server:
    port = free_port()
    if spec.server == "uvicorn":
        # As the seed's README starts it (no --reload), one worker per core; no access log, as
        # no other server here writes one.
        command = [python(spec), "-m", "uvicorn", spec.app, "--host", "127.0.0.1", "--port", str(port)]
        command += ["--workers", str(WORKERS), "--no-access-log"]
    elif spec.key == "trikchi":
        # The project's gunicorn.conf.py (production settings); no worker recycling mid-load.
        command = [python(spec), "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), spec.app]
        env = {**env, "GUNICORN_MAX_REQUESTS": "0"}
    else:
        command = [
            python(spec),
            "-m",
            "gunicorn",
            "-c",
            str(ROOT / "bench" / "peers" / "gunicorn_peers.py"),
            spec.app,
        ]
    env = {**env, "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": str(WORKERS)}
    return Server(command, env, logdir, spec.probe, port)


def wrk(url: str, script: str, env: dict[str, str], connections: int, seconds: int = SECONDS) -> dict:
    """Run wrk for ``seconds`` and return its JSON summary plus requests per second."""
    threads = min(connections, 2)
    lua = Path(tempfile.mkdtemp()) / script
    lua.write_text((ROOT / "bench" / script).read_text() + "\n" + (ROOT / "bench" / "report.lua").read_text())
    watch = CpuWatch()
    command = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--timeout", "10s"]
    result = subprocess.run(
        [*command, "-s", str(lua), url],
        env={**os.environ, **env, "BENCH_THREADS": str(threads)},
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    )
    other_share = watch.other_share()
    shutil.rmtree(lua.parent)
    line = next(line for line in result.stdout.splitlines() if line.startswith("WRK_RESULT "))
    summary = json.loads(line.split(" ", 1)[1])
    # Only successful answers count as throughput.
    summary["rps"] = (summary["requests"] - summary["non_2xx"]) / summary["seconds"]
    summary["socket_errors"] = summary["errors"] - summary["non_2xx"]
    summary["connections"] = connections
    summary["other_cpu"] = other_share
    return summary


def least_noisy(measure: Callable[[int], dict]) -> dict:
    """``measure(attempt)``, again while other processes took more than NOISY_SHARE of the CPUs
    (at most RETRIES more times); the attempt they disturbed least, not the fastest, is kept."""
    best: dict | None = None
    attempt = 0
    for attempt in range(1 + RETRIES):
        result = measure(attempt)
        if best is None or result["other_cpu"] < best["other_cpu"]:
            best = result
        if result["other_cpu"] <= NOISY_SHARE:
            break
    assert best is not None
    return {**best, "attempts": attempt + 1}


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


def argon2_baseline(params: dict[str, int]) -> dict:
    """Raw argon2 verifications per second on WORKERS processes."""

    def measure(_attempt: int) -> dict:
        with multiprocessing.get_context("spawn").Pool(WORKERS) as pool:
            watch = CpuWatch()
            started = time.monotonic()
            counts = pool.map(_verify_loop, [(params, SECONDS)] * WORKERS)
            elapsed = time.monotonic() - started
            other_share = watch.other_share()
        return {"rps": sum(counts) / max(elapsed, SECONDS), "other_cpu": other_share}

    return least_noisy(measure)


def argon2_params() -> dict[str, int]:
    """trikchi's production ``ARGON2_*`` settings."""
    from config import ProductionConfig

    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(48))
    os.environ.setdefault("JWT_SECRET_KEY", secrets.token_urlsafe(48))
    production = ProductionConfig()
    return {
        "time_cost": production.ARGON2_TIME_COST,
        "memory_cost": production.ARGON2_MEMORY_COST,
        "parallelism": production.ARGON2_PARALLELISM,
    }


# ---------------------------------------------------------------------------------------------
# Preparing and loading one server


def sign_in_all(spec: Spec, url: str, users: range) -> list[Credentials]:
    assert spec.sign_in is not None
    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(lambda n: spec.sign_in(url, n), users))


def prepare(spec: Spec, env: dict[str, str], logdir: Path) -> None:
    """Create the server's database and its USERS users (before it starts; trikchi's are
    registered through its API once it runs)."""
    if spec.key == "trikchi":
        command = [sys.executable, "-m", "flask", "db", "upgrade"]
        env = {**env, "FLASK_APP": "trikchi"}
    elif spec.module is not None:
        command = [python(spec), "-m", f"bench.peers.{spec.module}", "setup", str(USERS)]
        env = {**env, "BENCH_PASSWORD": PASSWORD}
    else:
        return
    result = subprocess.run(command, cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")


def register_trikchi_users(url: str) -> None:
    def register(n: int) -> None:
        body = {"name": f"Bench {n}", "email": email(n), "password": PASSWORD}
        requests.post(url + "/auth/register", json=body, timeout=60).raise_for_status()

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(register, range(USERS)))


def me_load(spec: Spec, url: str, tokens_file: Path) -> dict:
    """The "me" load over many users' tokens, after a one-second warm-up of every worker."""
    env = {
        "BENCH_TOKENS_FILE": str(tokens_file),
        "BENCH_AUTH_HEADER": spec.auth_header,
        "BENCH_AUTH_PREFIX": spec.auth_prefix,
    }

    def measure(_attempt: int) -> dict:
        wrk(url + spec.me, "me.lua", env, ME_CONNECTIONS, seconds=1)
        return wrk(url + spec.me, "me.lua", env, ME_CONNECTIONS)

    return least_noisy(measure)


def refresh_load(spec: Spec, url: str) -> dict:
    """REFRESH_SESSIONS sessions of as many users refreshing in a loop (new sessions for each
    attempt: a rotating server has used the previous attempt's tokens up)."""

    def measure(_attempt: int) -> dict:
        sessions = sign_in_all(spec, url, range(REFRESH_SESSIONS))
        line = ";".join(f"{s.refresh},{s.csrf}" if s.csrf else str(s.refresh) for s in sessions)
        env = {"BENCH_SESSIONS": line, "BENCH_REFRESH_FLAVOUR": str(spec.refresh_flavour)}
        return wrk(url + str(spec.refresh), "refresh.lua", env, REFRESH_SESSIONS)

    return least_noisy(measure)


def login_load(spec: Spec, url: str) -> dict:
    fields = {"email": email(0), "password": PASSWORD}
    if spec.login_form:
        env = {
            "BENCH_LOGIN_BODY": urlencode({"username": email(0), "password": PASSWORD}),
            "BENCH_LOGIN_TYPE": "application/x-www-form-urlencoded",
        }
    else:
        env = {"BENCH_LOGIN_BODY": json.dumps(fields)}
    return least_noisy(lambda _attempt: wrk(url + str(spec.login), "login.lua", env, LOGIN_CONNECTIONS))


def bench_server(spec: Spec, params: dict[str, int], logdir: Path, bare_tokens: Path | None) -> dict:
    """Prepare, start, load and stop one server; its loads keyed "me", "refresh", "login"."""
    database = logdir / f"{spec.key}.db"
    env = {
        # trikchi's production settings; rate limits off: capacity, not abuse protection, is measured
        "TRIKCHI_CONFIG": "production",
        "DATABASE_URL": f"sqlite:///{database}",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "JWT_SECRET_KEY": secrets.token_urlsafe(48),
        "RATELIMIT_ENABLED": "false",
        # the peers (bench/peers/common.py)
        "BENCH_DB": str(database),
        "BENCH_SECRET": secrets.token_urlsafe(48),
        **{f"BENCH_ARGON2_{name.upper()}": str(value) for name, value in params.items()},
    }
    prepare(spec, env, logdir)
    print(f"bench: {spec.label} ...", file=sys.stderr, flush=True)
    server = start(spec, env, logdir)
    loads: dict[str, dict] = {}
    try:
        if spec.sign_in is None:  # a bare endpoint: the tokens are sent and ignored
            assert bare_tokens is not None
            tokens_file = bare_tokens
        else:
            if spec.key == "trikchi":
                register_trikchi_users(server.url)
            tokens_file = logdir / f"tokens-{spec.key}.txt"
            tokens_file.write_text(
                "\n".join(c.access for c in sign_in_all(spec, server.url, range(USERS))) + "\n"
            )
        loads["me"] = me_load(spec, server.url, tokens_file)
        if spec.refresh is not None:
            loads["refresh"] = refresh_load(spec, server.url)
        if spec.login is not None:
            loads["login"] = login_load(spec, server.url)
        rss = server.peak_worker_mib()
    finally:
        server.stop()
    return {"key": spec.key, "label": spec.label, "rss_mib": rss, "versions": versions(spec), "loads": loads}


# ---------------------------------------------------------------------------------------------
# The report


def noise(*loads: dict) -> tuple[str, bool]:
    """The other processes' CPU share during each load, and whether any was noisy."""
    shares = [load["other_cpu"] for load in loads]
    return " / ".join(f"{share:.0%}" for share in shares), max(shares) > NOISY_SHARE


def verdict(ok: bool, noisy: bool = False) -> str:
    return ("PASS" if ok else "MISS") + (" (noisy)" if noisy else "")


def rps(result: dict, load: str) -> str:
    found = result["loads"].get(load)
    return f"{found['rps']:,.0f}" if found else "—"


def fastest(results: list[dict], load: str, keys: set[str]) -> dict | None:
    """The result whose ``load`` answered most requests per second, among the servers ``keys``."""
    candidates = [r for r in results if r["key"] in keys and load in r["loads"]]
    return max(candidates, key=lambda r: r["loads"][load]["rps"], default=None)


def ratio_line(label: str, load: dict, baseline: dict, baseline_label: str, target: float) -> tuple[str, ...]:
    ratio = load["rps"] / baseline["rps"] if baseline["rps"] else 0.0
    others, noisy = noise(load, baseline)
    return (
        f"{label} ÷ {baseline_label}",
        f"{ratio:.2f}×",
        f"≥ {target:.1f}×",
        verdict(ratio >= target, noisy),
        others,
    )


def checks(results: list[dict], argon2: dict) -> list[tuple[str, ...]]:
    """The issue's four targets, as far as this run measured them."""
    by_key = {r["key"]: r for r in results}
    trikchi = by_key.get("trikchi")
    if trikchi is None:
        return []
    specs = {s.key: s for s in SERVERS}
    peers = {s.key for s in SERVERS if s.peer}
    lines = []
    best = fastest(results, "me", peers)
    if best is not None:
        lines.append(
            ratio_line(
                "GET /auth/me", trikchi["loads"]["me"], best["loads"]["me"], best["label"], TARGETS["me"]
            )
        )
    best = fastest(results, "refresh", {key for key in peers if specs[key].rotates})
    if best is not None:
        lines.append(
            ratio_line(
                "refresh",
                trikchi["loads"]["refresh"],
                best["loads"]["refresh"],
                best["label"],
                TARGETS["refresh"],
            )
        )
    if argon2:
        lines.append(
            ratio_line("login", trikchi["loads"]["login"], argon2, "raw argon2 verify", TARGETS["login"])
        )
    lines.append(
        (
            "peak trikchi worker RSS",
            f"{trikchi['rss_mib']:.0f} MiB",
            f"≤ {TARGETS['rss_mib']:.0f} MiB",
            verdict(trikchi["rss_mib"] <= TARGETS["rss_mib"]),
            "",
        )
    )
    return lines


def other_cpu(load: dict) -> str:
    runs = load.get("attempts", 1)
    return f"{load['other_cpu']:.0%}" + (f" (least disturbed of {runs} runs)" if runs > 1 else "")


def table(results: list[dict], argon2: dict, params: dict[str, int]) -> str:
    specs = {s.key: s for s in SERVERS}
    out = [
        f"Each server alone, {WORKERS} workers, SQLite; argon2id {params}; {SECONDS} s per load; "
        f"{os.cpu_count()} CPUs; 'me' over {USERS} users' tokens ({ME_CONNECTIONS} connections), "
        f"refresh over {REFRESH_SESSIONS} sessions (one connection each), "
        f"login {LOGIN_CONNECTIONS} connections",
        "",
        "| server | what 'me' reads | session check | revocable | me req/s | refresh | refresh req/s "
        "| login req/s | peak worker RSS MiB |",
        "|---|---|---|---|---:|---|---:|---:|---:|",
    ]
    for result in results:
        spec = specs[result["key"]]
        reads, session, revocable = spec.me_does
        out.append(
            f"| {result['label']} | {reads} | {session} | {revocable} | {rps(result, 'me')} "
            f"| {spec.refresh_does if spec.sign_in else '—'} | {rps(result, 'refresh')} "
            f"| {rps(result, 'login')} "
            f"| {result['rss_mib']:.0f} |"
        )
    if argon2:
        out.append(f"| raw argon2 verify ×{WORKERS} processes | | | | | | | {argon2['rps']:,.1f} | |")
    lines = checks(results, argon2)
    if lines:
        out += [
            "",
            "| target (issue 28) | measured | target | result | other CPU (load / baseline) |",
            "|---|---:|---:|---|---:|",
        ]
        out += [f"| {' | '.join(line)} |" for line in lines]
    out += [
        "",
        "Every load (non-2xx answers and socket errors should be 0; 'other CPU': the share of the CPUs "
        f"used by processes outside the bench during the load — over {NOISY_SHARE:.0%} is noisy and was "
        f"retried up to {RETRIES} time(s)):",
        "",
        "| server | load | path | conns | req/s | p50 ms | p99 ms | non-2xx | socket errors | other CPU |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        spec = specs[result["key"]]
        paths = {"me": spec.me, "refresh": spec.refresh, "login": spec.login}
        for name, load in result["loads"].items():
            out.append(
                f"| {result['label']} | {name} | `{paths[name]}` | {load['connections']} | {load['rps']:.1f} "
                f"| {load['p50_ms']:.1f} | {load['p99_ms']:.1f} | {load['non_2xx']} "
                f"| {load['socket_errors']} "
                f"| {other_cpu(load)} |"
            )
    if argon2:
        out.append(
            f"| raw argon2 ×{WORKERS} processes | verify | | | {argon2['rps']:.1f} | | | | "
            f"| {other_cpu(argon2)} |"
        )
    out += ["", "Versions:", ""]
    out += [f"- {result['label']}: {result['versions']}" for result in results if result["versions"]]
    if lines:
        passed = sum(line[3].startswith("PASS") for line in lines)
        noisy = sum(line[3].endswith("(noisy)") for line in lines)
        out += ["", f"{passed} of {len(lines)} targets met."]
        if noisy:
            out.append(
                f"NOISY: {noisy} verdict(s) rest on loads during which other processes used more than "
                f"{NOISY_SHARE:.0%} of the CPUs; rerun `make bench` on a quiet machine before trusting them."
            )
    refused = sum(load["non_2xx"] + load["socket_errors"] for r in results for load in r["loads"].values())
    if refused:
        out += [
            "",
            f"NOT VALID: {refused} request(s) failed (non-2xx or socket errors); see the loads table.",
        ]
    return "\n".join(out)


def save(name: str, text: str) -> None:
    """Write ``bench/results/<name>``."""
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / name).write_text(text)


def main() -> int:
    if shutil.which("wrk") is None:
        print("wrk not found: run `bash scripts/system-deps.sh wrk` (Debian package wrk)", file=sys.stderr)
        return 2
    unknown = set(ONLY) - {s.key for s in SERVERS} - {"argon2"}
    if unknown:
        print(f"BENCH_ONLY: unknown server(s) {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    logdir = Path(tempfile.mkdtemp(prefix="trikchi-bench-"))  # kept when a run fails: its server logs
    params = argon2_params()
    results = []
    bare_tokens = logdir / "tokens-bare.txt"
    bare_tokens.write_text("".join(secrets.token_urlsafe(200) + "\n" for _ in range(USERS)))
    for spec in SERVERS:
        if not ONLY or spec.key in ONLY:
            results.append(bench_server(spec, params, logdir, bare_tokens))
    argon2 = argon2_baseline(params) if not ONLY or "argon2" in ONLY or "trikchi" in ONLY else {}
    report = table(results, argon2, params)
    save("latest.json", json.dumps({"argon2_params": params, "argon2": argon2, "servers": results}, indent=2))
    save("latest.md", report + "\n")
    print(report)
    shutil.rmtree(logdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
