"""A TCP proxy in front of a service the test owns, that injects one fault at a chosen moment.

The moment is named by what the client sends (an INSERT, an artifact upload), so a fault lands in the
middle of the operation without any timing: ``rule`` sees each chunk a client sends and answers
``PASS``, ``CUT`` (close the connection), bytes to answer instead of the service (an HTTP error), or
a callable to call once the chunk has reached the service, before the connection is cut (kill the
service's process mid-statement). ``cut_everything()`` makes the service look stopped to every
client; ``heal()`` lets everything through again.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator

PASS, CUT = "pass", "cut"
Rule = Callable[[bytes], "str | bytes | Callable[[], None]"]


def http_error(status: int, reason: str, body: bytes = b"") -> bytes:
    """A complete HTTP/1.1 answer that closes the connection."""
    head = f"HTTP/1.1 {status} {reason}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n"
    return head.encode() + b"Content-Type: application/xml\r\n\r\n" + body


#: What S3 answers when it sheds load; S3 clients retry it.
S3_SLOW_DOWN = http_error(
    503,
    "Slow Down",
    b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>",
)


class FaultProxy:
    """Listens on a free 127.0.0.1 port and relays every connection to ``upstream_port``."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.rule: Rule = lambda _chunk: PASS
        self.refuse_new = False
        self.faults = 0  # chunks the rule did not pass
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True, name=f"fault-proxy-{self.port}").start()

    def heal(self) -> None:
        """Relay everything again (after the fault, the service is back)."""
        self.rule, self.refuse_new = (lambda _chunk: PASS), False

    def cut_everything(self) -> None:
        """Close every open connection and refuse new ones: the service looks stopped."""
        self.refuse_new = True
        with self._lock:
            for connection in list(self._open):
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.cut_everything()
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.refuse_new:
                client.close()
                continue
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    @contextlib.contextmanager
    def _tracked(self, *connections: socket.socket) -> Iterator[None]:
        with self._lock:
            self._open.update(connections)
        try:
            yield
        finally:
            with self._lock:
                self._open.difference_update(connections)
            for connection in connections:
                connection.close()

    def _relay(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        except OSError:
            client.close()
            return
        with self._tracked(client, upstream):
            threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()
            while chunk := _receive(client):
                action = self.rule(chunk)
                if action == PASS:
                    upstream.sendall(chunk)
                    continue
                self.faults += 1
                if callable(action):
                    upstream.sendall(chunk)
                    action()
                elif isinstance(action, bytes):
                    with contextlib.suppress(OSError):
                        client.sendall(action)
                break

    @staticmethod
    def _pipe(source: socket.socket, target: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while chunk := _receive(source):
                target.sendall(chunk)
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)


def _receive(connection: socket.socket) -> bytes:
    try:
        return connection.recv(65_536)
    except OSError:
        return b""
