#!/usr/bin/env python3
"""nixstack demo app: the `app` role of a nixstack stack.

GET /         writes a row to the Galera cluster through the first reachable database
              node (failing over between nodes in order) and reads it back, then reports
              which web, app and database host served the request.
GET /healthz  200 when a database node answers, 503 otherwise (the path is configurable).

Configuration (command-line options override the environment):

  NIXSTACK_APP_LISTEN             address:port to listen on           (--listen)
  NIXSTACK_APP_NAME               host name to report                 (--name, default: hostname)
  NIXSTACK_APP_HEALTH_PATH        path of the health answer           (--health-path, default /healthz)
  NIXSTACK_APP_TLS_CERT/_KEY      serve HTTPS with this certificate   (--tls-cert, --tls-key)
  NIXSTACK_DB_HOSTS               host:port,host:port in preference order (--db-hosts)
  NIXSTACK_DB_NAME                database                            (--db-name)
  NIXSTACK_DB_USER                user                                (--db-user)
  NIXSTACK_DB_PASSWORD_FILE       file holding the user's password    (--db-password-file)
  NIXSTACK_DB_CA                  CA to verify the database's TLS certificate; enables TLS (--db-ca)
  NIXSTACK_DB_CONNECT_TIMEOUT     seconds per connection attempt (default 1)

Needs only Python 3 and PyMySQL.
"""

import argparse
import html
import os
import queue
import socket
import ssl
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

# Mozilla Server Side TLS 5.7, "intermediate" (https://ssl-config.mozilla.org/guidelines/5.7.json,
# data/mozilla/server-side-tls-5.7.json; tests/web_firewall_configs.rs scans this listener against that file).
# TLS 1.3 suites are not settable in Python 3.11's ssl; OpenSSL 3's default TLS 1.3 suites are
# Mozilla's three, and the scanner checks that they stay so.
MOZILLA_INTERMEDIATE_CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"
)
MOZILLA_INTERMEDIATE_GROUPS = "X25519:prime256v1:secp384r1"

# A node that just failed is skipped for this long, so that requests do not each pay a
# connect timeout while it is down (unless every node failed).
SKIP_FAILED_SECONDS = 1.0


def parse_args(argv):
    env = os.environ.get
    parser = argparse.ArgumentParser(description="nixstack demo app")
    parser.add_argument("--listen", default=env("NIXSTACK_APP_LISTEN", "127.0.0.1:8080"))
    parser.add_argument("--name", default=env("NIXSTACK_APP_NAME", socket.gethostname()))
    parser.add_argument("--health-path", default=env("NIXSTACK_APP_HEALTH_PATH", "/healthz"))
    parser.add_argument("--tls-cert", default=env("NIXSTACK_APP_TLS_CERT"))
    parser.add_argument("--tls-key", default=env("NIXSTACK_APP_TLS_KEY"))
    parser.add_argument("--db-hosts", default=env("NIXSTACK_DB_HOSTS", "127.0.0.1:3306"))
    parser.add_argument("--db-name", default=env("NIXSTACK_DB_NAME", "app"))
    parser.add_argument("--db-user", default=env("NIXSTACK_DB_USER", "app"))
    parser.add_argument("--db-password-file", default=env("NIXSTACK_DB_PASSWORD_FILE"))
    parser.add_argument("--db-ca", default=env("NIXSTACK_DB_CA"))
    parser.add_argument("--db-connect-timeout", type=float, default=float(env("NIXSTACK_DB_CONNECT_TIMEOUT", "1")))
    return parser.parse_args(argv)


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
        if args.db_ca:
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
        # nginx names itself in X-Served-By; otherwise the peer address is the web host.
        return self.headers.get("X-Served-By") or self.client_address[0]

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


def set_groups(context, groups):
    """Restricts the key exchange groups of `context` to the OpenSSL list `groups`.

    Python 3.11's ssl module has only `SSLContext.set_ecdh_curve`, which sets one curve (and
    not X25519); OpenSSL's own `SSL_CTX_set1_groups_list` takes a list. It is called through
    ctypes on the SSL_CTX the context wraps: the pointer is the first field after the object
    header of CPython's PySSLContext (Modules/_ssl.c). Checked before use: the SSL_CTX's
    options must read back as `context.options`. Returns False (nothing changed) when that
    check or the call fails, e.g. on another Python implementation.
    """
    import ctypes

    try:
        import _ssl

        libssl = ctypes.CDLL(getattr(_ssl, "__file__", None))
        ctx = ctypes.c_void_p.from_address(id(context) + object.__basicsize__).value
        get_options = libssl.SSL_CTX_get_options
        get_options.argtypes, get_options.restype = [ctypes.c_void_p], ctypes.c_uint64
        if not ctx or get_options(ctx) != int(context.options):
            return False
        ctrl = libssl.SSL_CTX_ctrl
        ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_char_p]
        ctrl.restype = ctypes.c_long
        SSL_CTRL_SET_GROUPS_LIST = 92  # openssl/ssl.h
        return ctrl(ctx, SSL_CTRL_SET_GROUPS_LIST, 0, groups.encode()) == 1
    except (OSError, AttributeError, ValueError):
        return False


def server_context(cert, key):
    """Mozilla intermediate: TLS 1.2 and 1.3, Mozilla's TLS 1.2 ciphers and groups."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(MOZILLA_INTERMEDIATE_CIPHERS)
    # The client's order (Mozilla: server_preferred_order false), no session tickets.
    context.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    context.options |= ssl.OP_NO_TICKET
    if not set_groups(context, MOZILLA_INTERMEDIATE_GROUPS):
        # One curve is all Python's own API can set: a subset of Mozilla's, never more.
        context.set_ecdh_curve("prime256v1")
        sys.stderr.write("nixstack-demo-app: cannot set TLS groups through OpenSSL, using prime256v1 only\n")
    context.load_cert_chain(cert, key)
    return context


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    host, port = split_host_port(args.listen, 8080)
    server = Server((host, port), Handler)
    server.app_name = args.name
    server.health_path = args.health_path
    server.database = Database(args)
    scheme = "http"
    if args.tls_cert and args.tls_key:
        context = server_context(args.tls_cert, args.tls_key)
        # The handshake happens in the request's thread, not in the accept loop.
        server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
        scheme = "https"
    sys.stderr.write(f"nixstack-demo-app {args.name} listening on {scheme}://{host}:{port}\n")
    sys.stderr.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
