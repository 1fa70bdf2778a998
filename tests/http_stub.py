"""A real HTTP server on a free loopback port whose every GET is answered by a function: for
testing clients against answers no real service gives on demand (errors, repeats, odd bodies)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

#: An answer: the HTTP status and the JSON body's bytes.
Answer = tuple[int, bytes]


def serve(answer: Callable[[str], Answer]) -> str:
    """Start a daemon server answering ``GET <path>`` with ``answer(path)``: its base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = answer(self.path)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}"
