#!/usr/bin/python3
"""receiver - an HTTP endpoint that records every postback it receives.

    receiver.py --port 8090 [--bind 127.0.0.1] [--log FILE] [--delay-ms N]
                [--refuse-file PATH]

Answers 200 to any GET or POST and writes one JSON line per request (time,
method, path with query, X-Postback-Id, body, the status it answered, and
the webhook-* headers of a signed postback) to
FILE or standard output. While PATH exists it is a partner down for
maintenance: it answers 503 with a Retry-After that points at the Unix time
written in PATH (the drills keep postbacks waiting in Redis this way).
Tests import Receiver and decide per request what to answer.
"""
import argparse
import http.server
import json
import math
import sys
import threading
import time


class Receiver:
    """A threaded HTTP server that keeps what it received.

    respond(record) -> (status, headers dict, body bytes) decides each answer;
    by default every request gets 200.
    """

    def __init__(self, bind="127.0.0.1", port=0, respond=None, log=None):
        self.requests = []
        self.cond = threading.Condition()
        self.respond = respond or (lambda rec: (200, {}, b"ok"))
        self.log = log
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real receivers do

            def handle_any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                rec = {"time": time.time(), "method": self.command,
                       "path": self.path, "id": self.headers.get("X-Postback-Id"),
                       "content_type": self.headers.get("Content-Type"),
                       "user_agent": self.headers.get("User-Agent"),
                       "body": body.decode("utf-8", "replace")}
                # Standard Webhooks' headers, when the postback is signed.
                for h in ("webhook-id", "webhook-timestamp", "webhook-signature"):
                    if self.headers.get(h) is not None:
                        rec[h] = self.headers.get(h)
                # A destination's own (pbctl policy set ... header=), kept
                # only in memory: tests read them, the log never has them.
                extra = {k: v for k, v in self.headers.items()
                         if k.lower().startswith("x-partner-")}
                if extra:
                    rec["partner_headers"] = extra
                status, headers, out = outer.respond(rec)
                rec["status"] = status
                with outer.cond:
                    outer.requests.append(rec)
                    outer.cond.notify_all()
                if outer.log:
                    outer.log.write(json.dumps({k: v for k, v in rec.items()
                                                if k != "partner_headers"}) + "\n")
                    outer.log.flush()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = do_PUT = handle_any

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True
            # socketserver's default backlog is 5: an agent opening its
            # connections at once (256 in flight) overflowed it, handshakes
            # waited for SYN-ACK retries and deliveries timed out after the
            # request had been read. Real servers listen with hundreds.
            request_queue_size = 1024

            def handle_error(self, request, client_address):
                # A client that went away (an agent killed mid-request) is
                # part of the job, not an error worth a traceback.
                if not isinstance(sys.exc_info()[1], ConnectionError):
                    super().handle_error(request, client_address)

        self.server = Server((bind, port), Handler)
        self.port = self.server.server_address[1]
        self.url = "http://%s:%d" % (bind, self.port)
        self.thread = None

    def start(self):
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, pred, timeout):
        """Wait until pred(requests) is true; return it (False on timeout)."""
        deadline = time.time() + timeout
        with self.cond:
            while True:
                ok = pred(self.requests)
                if ok or time.time() >= deadline:
                    return ok
                self.cond.wait(min(0.2, max(0.0, deadline - time.time())))

    def ids(self, status=None):
        with self.cond:
            return [r["id"] for r in self.requests
                    if status is None or r["status"] == status]


def refusing(path):
    """The Retry-After (s) to answer while path exists, else None."""
    try:
        with open(path) as f:
            until = float(f.read().strip() or 0)
    except (OSError, ValueError):
        return None
    return max(1, math.ceil(until - time.time()))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8090)
    ap.add_argument("--log", help="file for the JSON lines (default: stdout)")
    ap.add_argument("--delay-ms", type=int, default=0,
                    help="answer each request this much later (a slow endpoint)")
    ap.add_argument("--refuse-file", metavar="PATH",
                    help="while PATH exists, answer 503 with Retry-After up to "
                         "the Unix time written in it")
    a = ap.parse_args()
    out = open(a.log, "a") if a.log else sys.stdout
    delay = a.delay_ms / 1000.0

    def respond(rec):
        time.sleep(delay)
        wait = refusing(a.refuse_file) if a.refuse_file else None
        if wait is not None:
            return 503, {"Retry-After": str(wait)}, b"down for maintenance"
        return 200, {}, b"ok"
    r = Receiver(a.bind, a.port, log=out, respond=respond)
    print("receiver on %s" % r.url, file=sys.stderr, flush=True)
    try:
        r.server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
