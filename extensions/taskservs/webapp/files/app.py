"""prov webapp: GET / counts a visit in PostgreSQL, GET /health answers 200 when the database does."""
import http.server
import os
import socket
import subprocess

PORT = int(os.environ.get("PORT", "8080"))
DB = ["-h", os.environ.get("DB_HOST", "127.0.0.1"), "-p", os.environ.get("DB_PORT", "5432"),
      "-U", os.environ.get("DB_USER", "app"), "-d", os.environ.get("DB_NAME", "app")]


def sql(statement):
    env = dict(os.environ, PGCONNECT_TIMEOUT="3")
    done = subprocess.run(["psql", "-X", "-tA", "-v", "ON_ERROR_STOP=1", *DB, "-c", statement],
                          capture_output=True, text=True, env=env, timeout=10)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip())
    return done.stdout.strip()


class Handler(http.server.BaseHTTPRequestHandler):
    def reply(self, code, text):
        body = (text + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        try:
            if self.path == "/health":
                sql("SELECT 1")
                return self.reply(200, "ok")
            sql("CREATE TABLE IF NOT EXISTS visits (at timestamptz DEFAULT now())")
            count = sql("INSERT INTO visits DEFAULT VALUES; SELECT count(*) FROM visits").splitlines()[-1]
            return self.reply(200, f"webapp on {socket.gethostname()}: visit {count}")
        except Exception as error:  # the database is down or refuses us
            return self.reply(503, f"database unavailable: {error}")

    def log_message(self, fmt, *args):
        print("%s %s" % (self.address_string(), fmt % args), flush=True)


http.server.ThreadingHTTPServer(("0.0.0.0", PORT), Handler).serve_forever()
