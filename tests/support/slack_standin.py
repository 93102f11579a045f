"""A Slack stand-in: an HTTP server on 127.0.0.1 that records what the Slack provider's clients send.

Modes: "ok" (answers like Slack), "error" (HTTP 500), "slow" (sleeps past the client timeout).
Stop it (or never start it) to test "connection refused".
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


@dataclass
class Captured:
    """One request as received."""

    path: str
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class SlackStandIn:
    """Context-managed loopback server; `requests` lists captured requests in order."""

    def __init__(self, mode: str = "ok", delay: float = 15.0) -> None:
        self.mode = mode
        self.delay = delay
        self.requests: list[Captured] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                return

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                try:
                    body = json.loads(raw) if raw.strip().startswith("{") else {k: v[0] for k, v in parse_qs(raw).items()}
                except ValueError:
                    body = {"raw": raw}
                stand_in.requests.append(Captured(self.path, body, dict(self.headers)))
                if stand_in.mode == "slow":
                    time.sleep(stand_in.delay)
                if stand_in.mode == "error":
                    self.send_response(500)
                    self.end_headers()
                    self.wfile.write(b"internal_error")
                    return
                if self.path.startswith("/api/"):
                    payload = json.dumps({"ok": True, "channel": "C0TEST", "ts": "1700000000.000100"}).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                else:
                    payload = b"ok"
                    self.send_response(200)
                    self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                try:
                    self.wfile.write(payload)
                except BrokenPipeError:
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def webhook_url(self) -> str:
        """URL to put in a slackwebhook connection's password."""
        return f"http://127.0.0.1:{self.port}/services/T000/B000/XXXX"

    @property
    def api_base_url(self) -> str:
        """base_url for a slack (Web API) connection's extra."""
        return f"http://127.0.0.1:{self.port}/api/"

    def texts(self) -> list[str]:
        """The `text` field of every captured message."""
        return [r.body.get("text", "") for r in self.requests]

    def __enter__(self) -> SlackStandIn:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
