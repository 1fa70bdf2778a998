"""`covertype-probe` and `make check-stack` tell a service that is down from one that is only slow."""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from covertype.stack.probe import State, patient_probe, probe
from covertype.stack.processes import ServiceFailed, ServiceProcess, free_port


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = 200 if self.path == "/health" else 503
        self.send_response(status)
        self.end_headers()
        self.wfile.write(b"ok" if status == 200 else b"not ready")

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def silent_listener() -> Iterator[str]:
    """A port that accepts connections (the kernel's backlog) but never answers: a stalled server."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/health"


def test_a_2xx_answer_is_up(http_server):
    health = probe(f"{http_server}/health")
    assert health.state is State.UP and health.reason == "HTTP 200"


def test_a_refused_connection_is_down():
    health = probe(f"http://127.0.0.1:{free_port()}/health", timeout=2)
    assert health.state is State.DOWN
    assert "connection refused" in health.reason


def test_an_unhealthy_answer_is_down_with_the_status(http_server):
    health = probe(f"{http_server}/readyz")
    assert health.state is State.DOWN
    assert health.reason.startswith("HTTP 503")


def test_no_answer_yet_is_slow_not_down(silent_listener):
    assert probe(silent_listener, timeout=0.2).state is State.SLOW


def test_check_says_how_long_and_how_often_it_waited_for_a_slow_service(silent_listener):
    health = patient_probe(silent_listener, timeout=0.2, tries=3, pause=0.1)
    assert (health.state, health.tries) == (State.SLOW, 3)
    assert health.reason == "no answer after 3 tries of 0.2 s (0.8 s in all)"


def test_check_stops_waiting_as_soon_as_a_service_is_down():
    health = patient_probe(f"http://127.0.0.1:{free_port()}/health", timeout=0.2, tries=5, pause=0.1)
    assert (health.state, health.tries) == (State.DOWN, 1)


def test_check_waits_no_longer_once_a_service_is_up(http_server):
    health = patient_probe(f"{http_server}/health", tries=5)
    assert (health.state, health.tries) == (State.UP, 1)


def test_a_service_is_ready_once_its_check_passes_after_silent_tries(tmp_path):
    answers = iter([False, False, True])
    service = ServiceProcess(
        name="sleeper",
        command=[sys.executable, "-c", "import time; time.sleep(60)"],
        ready=lambda: next(answers),
        log_path=tmp_path / "sleeper.log",
        start_timeout=60,
    )
    with service:
        assert service.process.poll() is None


def test_a_service_that_exits_while_starting_fails_with_its_log(tmp_path):
    service = ServiceProcess(
        name="crasher",
        command=[sys.executable, "-c", "print('bad config'); raise SystemExit(3)"],
        ready=lambda: False,
        log_path=tmp_path / "crasher.log",
        start_timeout=60,
    )
    with pytest.raises(ServiceFailed, match=r"crasher exited with code 3(.|\n)*bad config"):
        service.start()
