#!/usr/bin/env python3
"""nixstack demo app: the `app` role of a nixstack stack.

GET /         writes a row to the Galera cluster through the first reachable database
              node (failing over between nodes in order) and reads it back, then reports
              which web, app and database host served the request.
POST /        the same write, for a form: the body is read and ignored; nginx never passes
              a POST on to another app once it reached one, so the rollout keeps them off
              a host that is about to restart (docs/app.md, "Rollout").
GET /healthz  200 when a database node answers, 503 otherwise (the path is configurable).

SIGTERM (systemd's stop) is a graceful stop: the listening socket closes at once (new
connections are refused, and the web tier passes them to another app), idle keep-alive
connections are closed, the requests in flight are answered, then the process exits.

Plain HTTP, as nearly every framework serves: nixstack's TLS terminator (nginx on the app
host) takes the web tier's TLS in front of it. The contract it reads is nixstack's
(docs/app.md); command-line options override the environment:

  HOST, PORT                  where to listen                        (--host, --port)
  NIXSTACK_HOST               host name to report                    (--name, default: hostname)
  NIXSTACK_HEALTH_PATH        path of the health answer              (--health-path, default /healthz)
  DATABASE_HOSTS              host:port,host:port in preference order (--db-hosts)
  DATABASE_NAME, DATABASE_USER
  DATABASE_TLS                verify-full: TLS to the database, verified against the CA
  DATABASE_CONNECT_TIMEOUT    seconds per connection attempt (default 1)
  CREDENTIALS_DIRECTORY       systemd's LoadCredential= directory: database-password,
                              database-ca.pem (with DATABASE_TLS)

Needs only Python 3 and PyMySQL.
"""

import argparse
import html
import os
import queue
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pymysql

TABLE = """CREATE TABLE IF NOT EXISTS visits (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    web VARCHAR(64) NOT NULL,
    app VARCHAR(64) NOT NULL,
    db VARCHAR(64) NOT NULL,
    created TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB"""

# The migrations table: one row per run of `--migrate` (the lab counts them).
MIGRATIONS = """CREATE TABLE IF NOT EXISTS schema_migrations (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    version VARCHAR(64) NOT NULL,
    host VARCHAR(64) NOT NULL,
    applied TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB"""
SCHEMA_VERSION = "1-visits"

# A node that just failed is skipped for this long, so that requests do not each pay a
# connect timeout while it is down (unless every node failed).
SKIP_FAILED_SECONDS = 1.0


def credential(name):
    """The path of systemd credential `name` ($CREDENTIALS_DIRECTORY/name), None without one."""
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    if not directory:
        return None
    path = os.path.join(directory, name)
    return path if os.path.exists(path) else None


def parse_args(argv):
    env = os.environ.get
    parser = argparse.ArgumentParser(description="nixstack demo app")
    parser.add_argument("--host", default=env("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(env("PORT", "8000")))
    parser.add_argument("--name", default=env("NIXSTACK_HOST", socket.gethostname()))
    parser.add_argument("--health-path", default=env("NIXSTACK_HEALTH_PATH", "/healthz"))
    parser.add_argument("--db-hosts", default=env("DATABASE_HOSTS", "127.0.0.1:3306"))
    parser.add_argument("--db-name", default=env("DATABASE_NAME", "app"))
    parser.add_argument("--db-user", default=env("DATABASE_USER", "app"))
    parser.add_argument("--db-tls", default=env("DATABASE_TLS", "off"), choices=["off", "verify-full"])
    parser.add_argument("--db-connect-timeout", type=float, default=float(env("DATABASE_CONNECT_TIMEOUT", "1")))
    parser.add_argument("--db-password-file", default=credential("database-password"))
    parser.add_argument("--db-ca", default=credential("database-ca.pem"))
    parser.add_argument(
        "--migrate",
        action="store_true",
        help="apply the schema on the first DATABASE_HOSTS node only, record it, and exit",
    )
    args = parser.parse_args(argv)
    if args.db_tls == "verify-full" and not args.db_ca:
        parser.error("DATABASE_TLS=verify-full needs the credential database-ca.pem (or --db-ca)")
    return args


def split_host_port(text, default_port):
    host, _, port = text.strip().rpartition(":")
    if not host:
        return text.strip(), default_port
    return host, int(port)


class Database:
    """The cluster's nodes in preference order, with a pool of idle connections per node."""

    def __init__(self, args):
        self.nodes = [split_host_port(n, 3306) for n in args.db_hosts.split(",") if n.strip()]
        self.name = args.db_name
        self.user = args.db_user
        self.password = ""
        if args.db_password_file:
            with open(args.db_password_file, encoding="utf-8") as f:
                self.password = f.read().strip()
        self.ssl = None
        if args.db_tls == "verify-full":
            self.ssl = {"ca": args.db_ca, "check_hostname": True}
        self.timeout = args.db_connect_timeout
        self.idle = {node: queue.LifoQueue() for node in self.nodes}
        self.failed_at = {}
        self.table_ready = False
        self.lock = threading.Lock()

    def connect(self, node):
        host, port = node
        return pymysql.connect(
            host=host,
            port=port,
            user=self.user,
            password=self.password,
            database=self.name,
            connect_timeout=self.timeout,
            read_timeout=5,
            write_timeout=5,
            ssl=self.ssl,
            autocommit=False,
        )

    def candidates(self):
        now = time.monotonic()
        fresh = [n for n in self.nodes if now - self.failed_at.get(n, -1e9) > SKIP_FAILED_SECONDS]
        return fresh or list(self.nodes)

    def run(self, work):
        """Runs work(connection) on the first node that answers; returns (node, result)."""
        errors = []
        for node in self.candidates():
            for pooled in (True, False):
                connection = None
                try:
                    if pooled:
                        try:
                            connection = self.idle[node].get_nowait()
                        except queue.Empty:
                            continue
                    else:
                        connection = self.connect(node)
                    result = work(connection)
                    self.idle[node].put(connection)
                    self.failed_at.pop(node, None)
                    return node, result
                except Exception as e:  # noqa: BLE001 - any failure moves on to the next node
                    errors.append(f"{node[0]}:{node[1]}: {e}")
                    if connection is not None:
                        try:
                            connection.close()
                        except Exception:  # noqa: BLE001
                            pass
                    if not pooled:
                        self.failed_at[node] = time.monotonic()
        raise RuntimeError("no database node answered: " + "; ".join(errors))

    def ensure_table(self, connection):
        if self.table_ready:
            return
        with connection.cursor() as cursor:
            cursor.execute(TABLE)
        connection.commit()
        self.table_ready = True

    def visit(self, web, app):
        def work(connection):
            self.ensure_table(connection)
            with connection.cursor() as cursor:
                cursor.execute("SELECT COALESCE(NULLIF(@@wsrep_node_name, ''), @@hostname)")
                (db,) = cursor.fetchone()
                cursor.execute("INSERT INTO visits (web, app, db) VALUES (%s, %s, %s)", (web, app, db))
                row = cursor.lastrowid
                connection.commit()
                cursor.execute("SELECT web, app, db FROM visits WHERE id = %s", (row,))
                stored = cursor.fetchone()
                connection.commit()
            if stored != (web, app, db):
                raise RuntimeError(f"row {row} read back as {stored}")
            return db, row

        _, (db, row) = self.run(work)
        return db, row

    def health(self):
        def work(connection):
            with connection.cursor() as cursor:
                cursor.execute("SELECT COALESCE(NULLIF(@@wsrep_node_name, ''), @@hostname)")
                (db,) = cursor.fetchone()
            connection.commit()
            return db

        _, db = self.run(work)
        return db


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "nixstack-demo-app"
    timeout = 30

    def log_message(self, format, *args):  # noqa: A002 - BaseHTTPRequestHandler's signature
        # Access logging is nginx's job; errors still go to stderr through log_error.
        pass

    def log_error(self, format, *args):  # noqa: A002
        sys.stderr.write("%s %s\n" % (self.address_string(), format % args))

    def reply(self, status, body, content_type="text/html; charset=utf-8", headers=()):
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def web_host(self):
        # The web host is the last proxy before this host: behind the terminator on loopback,
        # the last X-Forwarded-For entry (the terminator appends its peer); else the peer.
        peer = self.client_address[0]
        forwarded = [hop.strip() for hop in self.headers.get("X-Forwarded-For", "").split(",") if hop.strip()]
        if peer.startswith("127.") and forwarded:
            return forwarded[-1]
        return peer

    def do_GET(self):  # noqa: N802 - http.server naming
        app = self.server.app_name
        database = self.server.database
        path = self.path.split("?", 1)[0]
        try:
            if path == self.server.health_path:
                db = database.health()
                self.reply(200, f"ok app={app} db={db}\n", "text/plain; charset=utf-8")
            elif path == "/":
                web = self.web_host()
                db, row = database.visit(web, app)
                served = f"web={web} app={app} db={db} row={row}"
                page = (
                    "<!doctype html>\n<html><head><title>nixstack demo</title></head><body>\n"
                    "<h1>nixstack demo app</h1>\n"
                    f"<p id=\"served\">served-by {html.escape(served)}</p>\n"
                    "</body></html>\n"
                )
                headers = [("X-App-Host", app), ("X-Db-Host", db), ("X-Web-Host", web)]
                self.reply(200, page, headers=headers)
            else:
                self.reply(404, "not found\n", "text/plain; charset=utf-8")
        except Exception as e:  # noqa: BLE001 - the client gets a 503 naming the cause
            self.log_error("%s", e)
            self.reply(503, f"database unavailable: {e}\n", "text/plain; charset=utf-8")

    do_HEAD = do_GET

    def do_POST(self):  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if self.path.split("?", 1)[0] == "/":
            self.do_GET()
        else:
            self.reply(404, "not found\n", "text/plain; charset=utf-8")

    # A graceful stop needs to know which connections sit idle between requests (closed at
    # once) and which carry a request (answered first).
    def setup(self):
        super().setup()
        self.busy = False
        with self.server.lock:
            self.server.connections.add(self)

    def finish(self):
        with self.server.lock:
            self.server.connections.discard(self)
        super().finish()

    def parse_request(self):
        self.busy = True
        return super().parse_request()

    def handle(self):
        self.close_connection = True
        self.handle_one_request()
        while not self.close_connection:
            self.busy = False
            if self.server.stopping.is_set():
                break
            self.handle_one_request()

    def end_headers(self):
        if self.server.stopping.is_set():
            # Stopping: this answer is the connection's last.
            self.send_header("Connection", "close")
            self.close_connection = True
        super().end_headers()


class Server(ThreadingHTTPServer):
    # Request threads are joined on close (`block_on_close`), so a stop answers them first.
    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.lock = threading.Lock()
        self.connections = set()
        self.stopping = threading.Event()

    def graceful_stop(self):
        """Stops accepting, closes idle connections, lets requests in flight finish."""
        self.stopping.set()
        try:
            # Refuses new connections at once (and those queued, unaccepted): the client, the
            # terminator or nginx, sees a refused connection, never a half-served request.
            self.socket.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        with self.lock:
            idle = [handler for handler in self.connections if not handler.busy]
        for handler in idle:
            try:
                handler.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.shutdown()  # serve_forever returns


def migrate(args):
    """The schema, applied on one node: the first of DATABASE_HOSTS, never another (under
    Galera a DDL replicates in total order isolation and blocks the whole cluster while it
    runs; one node, one run, keeps it to one such pause: docs/app.md)."""
    database = Database(args)
    node = database.nodes[0]
    connection = database.connect(node)
    try:
        with connection.cursor() as cursor:
            cursor.execute(TABLE)
            cursor.execute(MIGRATIONS)
            cursor.execute(
                "INSERT INTO schema_migrations (version, host) VALUES (%s, %s)", (SCHEMA_VERSION, args.name)
            )
        connection.commit()
    finally:
        connection.close()
    sys.stderr.write(f"nixstack-demo-app {args.name}: schema {SCHEMA_VERSION} applied on {node[0]}:{node[1]}\n")


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.migrate:
        migrate(args)
        return
    server = Server((args.host, args.port), Handler)
    server.app_name = args.name
    server.health_path = args.health_path
    server.database = Database(args)
    sys.stderr.write(f"nixstack-demo-app {args.name} listening on http://{args.host}:{args.port}\n")
    sys.stderr.flush()
    stopped = threading.Event()

    def on_stop(signum, frame):  # noqa: ARG001 - signal handler signature
        if not stopped.is_set():
            stopped.set()
            threading.Thread(target=server.graceful_stop, daemon=True).start()

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    server.serve_forever()
    server.server_close()  # joins the request threads: every request in flight is answered
    sys.stderr.write(f"nixstack-demo-app {args.name}: stopped, every request answered\n")


if __name__ == "__main__":
    main()
