#!/usr/bin/env python3
"""A miniature Hugging Face hub for the tests: serves ROOT/<org>/<name>/<file> at
/<org>/<name>/resolve/<revision>/<file> answering as the hub does for LFS files — HEAD with
X-Repo-Commit, ETag and X-Linked-Etag (the SHA-256), X-Linked-Size; GET with byte ranges (206).
Repositories whose name contains "gated" need `Authorization: Bearer secret`. Faults, each used
once: ROOT/_truncate (the next GET sends half the body and closes), ROOT/_corrupt (the next GET
sends the body with one byte changed). Every request is appended to ROOT/_requests.log. Prints the
port it listens on.

    python3 Tests/Fixtures/mini_hub.py ROOT
"""
import hashlib
import http.server
import os
import signal
import sys

# The test runner may spawn this with signals blocked; SIGTERM must end it.
signal.pthread_sigmask(signal.SIG_SETMASK, [])
signal.signal(signal.SIGTERM, signal.SIG_DFL)

ROOT = sys.argv[1]


class Hub(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def target(self):
        parts = self.path.split("?")[0].strip("/").split("/")
        if len(parts) < 5 or parts[2] != "resolve":
            return None, None
        repo, file = "/".join(parts[:2]), "/".join(parts[4:])
        return repo, os.path.join(ROOT, repo, file)

    def answer(self, head):
        with open(os.path.join(ROOT, "_requests.log"), "a") as log:
            log.write(f"{self.command} {self.path} range={self.headers.get('Range')} auth={self.headers.get('Authorization')}\n")
        repo, path = self.target()
        if repo is None or not os.path.isfile(path):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.send_header("X-Error-Code", "EntryNotFound")
            self.end_headers()
            return
        if "gated" in repo and self.headers.get("Authorization") != "Bearer secret":
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = open(path, "rb").read()
        sha = hashlib.sha256(data).hexdigest()
        commit = hashlib.sha1(repo.encode()).hexdigest()
        start, status = 0, 200
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes=") and not head:
            start, status = int(rng[6:].split("-")[0]), 206
        body = data[start:]
        truncate = corrupt = False
        if not head:
            for flag in ("_truncate", "_corrupt"):
                f = os.path.join(ROOT, flag)
                if os.path.exists(f):
                    os.remove(f)
                    truncate, corrupt = flag == "_truncate", flag == "_corrupt"
                    break
        if corrupt:
            body = bytes([body[0] ^ 0xFF]) + body[1:]
        self.send_response(status)
        self.send_header("X-Repo-Commit", commit)
        self.send_header("ETag", f'"{sha}"')
        self.send_header("X-Linked-Etag", f'"{sha}"')
        self.send_header("X-Linked-Size", str(len(data)))
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if head:
            return
        if truncate:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.wfile.write(body)

    def do_HEAD(self):
        self.answer(True)

    def do_GET(self):
        self.answer(False)


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hub)
print(server.server_address[1], flush=True)
server.serve_forever()
