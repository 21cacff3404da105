#!/usr/bin/env python3
"""The stand-in backend's HTTP server (python3 stdlib plus psycopg2, threaded, port 8000).

It reads the real app's settings (DATABASE_URL as postgresql+asyncpg://..., REDIS_URL,
JWT_SECRET_KEY, APP_ENV) and fails at start, like a settings-validating app, when
DATABASE_URL or JWT_SECRET_KEY is missing. Endpoints:
  GET /health, /api/v1/health  200 {"status":"ok",...} when PostgreSQL answers, else 503
  GET /health/db               200 {"db":"ok"} / 503
  GET /version                 {"version":"v2"}, the version baked into the image
  GET /items                   rows of table items, as JSON
  POST /items {"name": "..."}  inserts a row; 201 {"id": N} once it is committed
  GET /config                  which settings arrived (never their values)
  GET /slow?ms=N               answers after N ms (to have requests in flight)
Every response carries X-App-Version. v3 is built so that its health checks always fail;
v5 serves normally and then exits with code 3 a few seconds after each start; v6 passes its
health check (/health) while every /api/ path answers 500.
On SIGTERM it stops accepting, closes keep-alive connections idle between two requests, lets
requests in flight (and connections accepted but not read yet) finish (up to DRAIN_TIMEOUT
seconds, default 25) and exits 0, as uvicorn does.
"""

import hashlib
import json
import os
import signal
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg2

APP_DIR = os.path.dirname(os.path.realpath(__file__))
with open(os.path.join(APP_DIR, "VERSION")) as _f:
    VERSION = _f.read().strip()
with open(os.path.join(APP_DIR, "versions.json")) as _f:
    _BUILD = json.load(_f)[VERSION]
HEALTHY_BUILD = _BUILD["healthy"]
# v5: healthy at first, then the process dies this many seconds after each start (a crash
# loop under Docker's restart policy), as an app that falls over on its first real traffic.
CRASH_AFTER_SECONDS = _BUILD.get("crashAfterSeconds")
# v6: /health answers 200, but every /api/ path answers 500 (a release broken past its health check).
BROKEN_API = _BUILD.get("brokenApi", False)


def log(msg):
    print(f"[backend {VERSION}] {msg}", file=sys.stderr, flush=True)


def settings():
    missing = [k for k in ("DATABASE_URL", "JWT_SECRET_KEY") if not os.environ.get(k)]
    if missing:
        log(f"config error: {', '.join(missing)} not set")
        sys.exit(1)
    parts = urllib.parse.urlsplit(os.environ["DATABASE_URL"])
    if parts.scheme.split("+", 1)[0] not in ("postgresql", "postgres"):
        log(f"config error: DATABASE_URL scheme {parts.scheme!r} is not postgresql")
        sys.exit(1)
    pg = {
        "PGHOST": parts.hostname or "localhost",
        "PGPORT": str(parts.port or 5432),
        "PGUSER": urllib.parse.unquote(parts.username or ""),
        "PGPASSWORD": urllib.parse.unquote(parts.password or ""),
        "PGDATABASE": urllib.parse.unquote(parts.path.lstrip("/")),
        # libpq counts this in whole seconds from the call (connectDBComplete sets its deadline
        # with time(NULL)), so 2 meant anything from just over 1 s: stricter than the real app's
        # pool (asyncpg waits 60 s), and a write failed when a connect met a busy host. 5 s
        # keeps an answer within the tests' 10 s client timeout.
        "PGCONNECT_TIMEOUT": "5",
        "PGAPPNAME": f"backend-{VERSION}",
    }
    return pg


PG = settings()


class Pool:
    """PostgreSQL connections reused across requests, as a real app's pool (SQLAlchemy, asyncpg)
    does: a query costs a round trip, not a process and a login. (One psql process per query
    cost about 50 ms of CPU, client and server, which at the tests' write rate alone took half
    of a 2-core host.) A connection is checked with SELECT 1 before each use and replaced when
    the server ended it (a restart, a terminated session); at most MAX are kept idle."""

    MAX = 16

    def __init__(self):
        self.lock = threading.Lock()
        self.idle = []

    def connect(self):
        t0 = time.monotonic()
        try:
            return self._connect()
        finally:
            took = time.monotonic() - t0
            if took > 1:
                log(f"a connection to PostgreSQL took {took:.1f} s")

    def _connect(self):
        conn = psycopg2.connect(
            host=PG["PGHOST"],
            port=PG["PGPORT"],
            user=PG["PGUSER"],
            password=PG["PGPASSWORD"],
            dbname=PG["PGDATABASE"],
            connect_timeout=int(PG["PGCONNECT_TIMEOUT"]),
            application_name=PG["PGAPPNAME"],
            options="-c statement_timeout=10000",
        )
        conn.autocommit = True
        return conn

    def take(self):
        while True:
            with self.lock:
                conn = self.idle.pop() if self.idle else None
            if conn is None:
                return self.connect()
            try:
                with conn.cursor() as cur:
                    cur.execute("SELECT 1")
                return conn
            except psycopg2.Error:
                conn.close()

    def give(self, conn):
        with self.lock:
            if len(self.idle) < self.MAX and not conn.closed:
                self.idle.append(conn)
                return
        conn.close()

    def query(self, sql, params=None):
        """Runs one statement (autocommit); returns (ok, the first column of the first row as
        text, or the error)."""
        try:
            conn = self.take()
        except psycopg2.Error as err:
            return False, str(err).strip()
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                row = cur.fetchone()
        except psycopg2.Error as err:
            conn.close()
            return False, str(err).strip()
        self.give(conn)
        return True, "" if row is None or row[0] is None else str(row[0])


POOL = Pool()


class DbProbe:
    """SELECT 1 against PostgreSQL, cached for half a second under load."""

    def __init__(self):
        self.lock = threading.Lock()
        self.at = 0.0
        self.result = (False, "not checked")

    def check(self):
        with self.lock:
            if time.monotonic() - self.at > 0.5:
                ok, out = POOL.query("SELECT 1")
                self.result = (ok and out.strip() == "1", "ok" if ok else out)
                self.at = time.monotonic()
            return self.result


DB = DbProbe()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = f"clicky-e2e-backend/{VERSION}"
    timeout = 5  # idle keep-alive connections close after 5 s, like uvicorn
    disable_nagle_algorithm = True  # TCP_NODELAY, as uvicorn: no 40 ms keep-alive stalls

    def setup(self):
        super().setup()
        # A connection is idle only between requests it has answered (uvicorn's rule): one just
        # accepted carries a request that is on its way, and closing it would reset that request.
        self.busy = True
        self.server.track(self, True)

    def finish(self):
        try:
            super().finish()
        finally:
            self.server.track(self, False)

    def log_message(self, format, *args):
        if os.environ.get("ACCESS_LOG", "1") != "0":
            log("%s %s" % (self.address_string(), format % args))

    def send_json(self, status, body):
        data = (json.dumps(body) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-App-Version", VERSION)
        if self.server.draining.is_set():
            self.close_connection = True
            self.send_header("Connection", "close")
        # Head and body in one write, so that v5's crash fails a request before any byte of its
        # answer left (the proxy sends a GET elsewhere), not halfway through one, which no proxy
        # can repair: the scenario tests the deploy's watch window, not that window.
        self._headers_buffer.append(b"\r\n")
        if self.command != "HEAD":
            self._headers_buffer.append(data)
        self.flush_headers()

    def health(self):
        if not HEALTHY_BUILD:
            return 503, {"status": "unhealthy", "version": VERSION, "reason": "this build always fails its health check"}
        ok, detail = DB.check()
        if ok:
            return 200, {"status": "ok", "version": VERSION, "db": "ok"}
        return 503, {"status": "unavailable", "version": VERSION, "db": detail}

    def route(self):
        url = urllib.parse.urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        if BROKEN_API and path.startswith("/api/"):
            return 500, {"detail": "this build's API is broken on purpose"}
        if path in ("/health", "/api/v1/health"):
            return self.health()
        if path == "/health/db":
            if not HEALTHY_BUILD:
                return 503, {"db": "unknown", "reason": "this build always fails its health check"}
            ok, detail = DB.check()
            return (200, {"db": "ok"}) if ok else (503, {"db": detail})
        if path == "/version":
            return 200, {"version": VERSION}
        if path == "/items":
            ok, out = POOL.query(
                "SELECT coalesce(json_agg(t ORDER BY t.id), '[]'::json)::text FROM items t"
            )
            if not ok:
                return 500, {"error": out}
            return 200, json.loads(out)
        if path == "/config":
            secret = os.environ.get("JWT_SECRET_KEY", "")
            return 200, {
                "version": VERSION,
                "app_env": os.environ.get("APP_ENV"),
                "jwt_secret_sha256_12": hashlib.sha256(secret.encode()).hexdigest()[:12],
                # An app secret a stack declares itself (deploy.app.secrets), when it arrived.
                "sentry_dsn_sha256_12": (
                    hashlib.sha256(os.environ["SENTRY_DSN"].encode()).hexdigest()[:12]
                    if "SENTRY_DSN" in os.environ
                    else None
                ),
                "database_host": PG["PGHOST"],
                "database_name": PG["PGDATABASE"],
                "redis_url_set": bool(os.environ.get("REDIS_URL")),
            }
        if path == "/slow":
            query = urllib.parse.parse_qs(url.query)
            ms = min(int((query.get("ms") or ["1000"])[0]), 30000)
            time.sleep(ms / 1000)
            return 200, {"slept_ms": ms, "version": VERSION}
        if path == "/":
            return 200, {"app": "clicky-e2e-backend", "version": VERSION}
        return 404, {"detail": "Not Found"}

    def respond(self, handle):
        """Answers with what `handle()` returns; an exception is a 500, never a crash."""
        self.busy = True
        try:
            status, body = handle()
        except Exception as e:  # noqa: BLE001 - a stand-in reports, never crashes
            status, body = 500, {"error": repr(e)}
        try:
            self.send_json(status, body)
        finally:
            self.busy = False

    def do_GET(self):
        self.respond(self.route)

    do_HEAD = do_GET

    def do_POST(self):
        def create():
            length = int(self.headers.get("Content-Length") or 0)
            return self.create(self.rfile.read(length) if length else b"")

        self.respond(create)

    def create(self, body):
        """POST /items: one INSERT, acknowledged (201) only once PostgreSQL committed it."""
        if urllib.parse.urlsplit(self.path).path.rstrip("/") != "/items":
            return 404, {"detail": "Not Found"}
        try:
            name = str(json.loads(body or b"{}")["name"])
        except (ValueError, KeyError, TypeError):
            return 422, {"detail": 'expected {"name": "..."}'}
        ok, out = POOL.query("INSERT INTO items (name) VALUES (%s) RETURNING id", (name,))
        if not ok:
            return 500, {"error": out}
        return 201, {"id": int(out.strip().splitlines()[0]), "version": VERSION}


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # uvicorn's listen backlog (--backlog, 2048); socketserver's default of 5 drops connections
    # as soon as a few requests wait on the database, which the real app does not.
    request_queue_size = 2048

    def __init__(self, addr):
        super().__init__(addr, Handler)
        self.draining = threading.Event()
        self.conns_lock = threading.Lock()
        self.conns = set()

    def track(self, handler, alive):
        with self.conns_lock:
            if alive:
                self.conns.add(handler)
            else:
                self.conns.discard(handler)

    def close_idle(self):
        with self.conns_lock:
            idle = [h for h in self.conns if not h.busy]
        for h in idle:
            try:
                h.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def in_flight(self):
        with self.conns_lock:
            return len(self.conns)


def main():
    port = int(os.environ.get("PORT", "8000"))
    server = Server(("0.0.0.0", port))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2})
    thread.start()
    log(f"listening on :{port} (APP_ENV={os.environ.get('APP_ENV')}, healthy build: {HEALTHY_BUILD})")
    if CRASH_AFTER_SECONDS is not None:

        def crash():
            log(f"crashing {CRASH_AFTER_SECONDS} s after start, as this build does")
            os._exit(3)

        threading.Timer(float(CRASH_AFTER_SECONDS), crash).start()
    while not stop.wait(0.5):
        pass
    log("SIGTERM: draining")
    server.draining.set()
    server.shutdown()
    server.socket.close()
    deadline = time.monotonic() + float(os.environ.get("DRAIN_TIMEOUT", "25"))
    while server.in_flight() and time.monotonic() < deadline:
        server.close_idle()
        time.sleep(0.05)
    log(f"stopped ({server.in_flight()} connections left)")
    sys.exit(0)


if __name__ == "__main__":
    main()
