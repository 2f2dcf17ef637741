#!/usr/bin/env python3
"""A local webhook receiver for the system tests: `webhook_receiver.py <port> <log file>`.

Every request is appended to the log as one JSON line {path, headers, body, status, at}. The
path picks the behaviour:
  /ok         200 at once
  /flaky      500 for the first two requests of each event id, then 200
  /slow       answers 200 after 1.5 s
  /hang       the first request of each event id waits 5 s (past the sender's timeout), then 200
  /down       503 always
  /redirect   302 to /redirect-target on this receiver (a sender must not follow it)
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(sys.argv[1])
LOG = sys.argv[2]
lock = threading.Lock()
seen = {}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace")
        event = self.headers.get("OOPS-Event-Id", "")
        with lock:
            n = seen.get((self.path, event), 0) + 1
            seen[(self.path, event)] = n
        status, headers = 200, {}
        if self.path == "/flaky" and n <= 2:
            status = 500
        elif self.path == "/slow":
            time.sleep(1.5)
        elif self.path == "/hang" and n == 1:
            time.sleep(5)
        elif self.path == "/down":
            status = 503
        elif self.path == "/redirect":
            status, headers = 302, {"Location": "http://127.0.0.1:%d/redirect-target" % PORT}
        record = {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body,
                  "status": status, "at": time.time()}
        with lock:
            with open(LOG, "a") as f:
                f.write(json.dumps(record) + "\n")
        try:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
        except (BrokenPipeError, ConnectionResetError):
            pass


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    server.daemon_threads = True
    server.serve_forever()
