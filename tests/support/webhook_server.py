"""A local webhook receiver for the alert tests: it records every POST (path, headers, JSON
body) and answers each path as scripted: 200 by default, or an error status to prove that a
channel which is down gets its alerts later. Slack's webhooks answer "ok", Teams' Workflows
202: the answers imitate theirs so the real clients (slack_sdk, dagster-msteams) accept them.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    raw: bytes

    @property
    def body(self) -> Any:
        return json.loads(self.raw)


@dataclass
class WebhookServer:
    """``with WebhookServer() as hooks:`` serves on 127.0.0.1 at a free port."""

    received: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._status: dict[str, int] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def url(self, path: str) -> str:
        if self._server is None:
            raise RuntimeError("not running")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{path}"

    def answer(self, path: str, status: int) -> None:
        """Answer `status` to POSTs on `path` from now on."""
        with self._lock:
            self._status[path] = status

    def on(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path == path]

    def all_text(self) -> str:
        with self._lock:
            return "\n".join(r.raw.decode("utf-8", "replace") for r in self.received)

    def start(self) -> WebhookServer:
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                with hooks._lock:
                    status = hooks._status.get(self.path, 200)
                    if status < 300:
                        hooks.received.append(
                            Received(
                                self.path, {k.lower(): v for k, v in self.headers.items()}, raw
                            )
                        )
                # Like many servers, an error answer echoes the request (the secret path).
                body = b"ok" if status == 200 else f"no_service: POST {self.path}".encode()
                if status == 200 and self.path.startswith("/teams"):
                    status, body = 202, b""  # Teams Workflows accept with 202, no body
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> WebhookServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
