"""A tiny DDS API for the client's fast tests: a real HTTP server on a real socket, with
canned JSON answers by method and path, recording every request it was sent.

The client is exercised as it is (httpx, tokens, error answers) without the Django
server; what the real server answers is proven by the end-to-end tests (tests/e2e)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

API = "/api/v1/"


@dataclass
class Seen:
    method: str
    path: str  # under /api/v1/, without the query
    query: str
    body: Any
    headers: dict[str, str]


@dataclass
class FakeApi:
    routes: dict[tuple[str, str], tuple[int, Any]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    #: Called before each answer (e.g. to hold the answer back).
    before_answer: Callable[[Seen], None] | None = None
    #: Sent with every answer (e.g. an X-Request-ID, as the real server sends).
    headers: dict[str, str] = field(default_factory=dict)
    url: str = ""

    def on(self, method: str, path: str, body: Any = None, status: int = 200) -> None:
        self.routes[(method, path)] = (status, body)

    def paths(self) -> list[str]:
        return [f"{s.method} {s.path}" for s in self.seen]

    def start(self) -> str:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self) -> None:
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                seen = Seen(self.command, url.path.removeprefix(API), url.query,
                            json.loads(raw) if raw else None, dict(self.headers))
                fake.seen.append(seen)
                if fake.before_answer is not None:
                    fake.before_answer(seen)
                status, body = fake.routes.get((seen.method, seen.path),
                                               (404, {"detail": "Not found."}))
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in fake.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _answer

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        return self.url

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
