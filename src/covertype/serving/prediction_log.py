"""Every answered prediction as a JSON line, written off the request's path; read back by monitoring.

``LogPredictions`` is ASGI middleware on ``predict``: it keeps the request's and the answer's bytes
as they pass and, once a 200 answer is sent, hands both to ``PredictionLog`` without waiting. The
log is the standard library's ``QueueHandler``/``QueueListener`` pair: a bounded queue (at most
``queue_bytes`` of pending bodies) drained by one thread that writes one line per request into a
``RotatingFileHandler`` (``predictions.<pid>.jsonl``, rotated at ``max_bytes``, ``backups`` old
files kept). A full queue or a file that cannot be written never fails nor delays an answer: the
records are dropped and counted in ``covertype_prediction_log_dropped_total``.

A line is ``{"time", "request_id", "request": <the request body>, "answer": <the answer body>}``,
the bodies as they were sent: the service parses nothing for the log (parsing 100-record bodies
again cost a tenth of its throughput, ``make bench-monitoring``); ``answered_records`` reads a line
back as one row per record (the 12 fields, the class, the probabilities, the version, the time,
the request id). The request id is the request's ``X-Request-ID`` or a new one, sent back in the
answer's ``X-Request-ID``.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import queue
import threading
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from logging.handlers import QueueHandler, QueueListener, RotatingFileHandler
from pathlib import Path
from typing import Any

from prometheus_client import Counter

from covertype.config import Settings

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

LOGGED = Counter("covertype_prediction_log_records_total", "Predicted records written to the prediction log.")
DROPPED = Counter(
    "covertype_prediction_log_dropped_total",
    "Predicted records left out of the prediction log, by reason (queue_full, write_failed).",
    ["reason"],
)
for _reason in ("queue_full", "write_failed"):
    DROPPED.labels(reason=_reason)
#: The glob of the log's files, current and rotated, in its folder.
LOG_FILES = "predictions.*.jsonl*"
REQUEST_ID = b"x-request-id"


def log_line(request: bytes, answer: bytes, request_id: str, time: str) -> str:
    """One request's line, the bodies copied in as they are (JSON; its raw line breaks are blanks)."""
    head = json.dumps({"time": time, "request_id": request_id})[:-1]
    request_text, answer_text = (
        body.replace(b"\n", b" ").replace(b"\r", b" ").decode() for body in (request, answer)
    )
    return f'{head}, "request": {request_text}, "answer": {answer_text}}}'


def records_in(answer: bytes) -> int:
    """How many records an answer holds: one ``cover_type`` key per prediction."""
    return answer.count(b'"cover_type":')


def answered_records(line: str) -> list[dict[str, Any]]:
    """One row per answered record of a log line: its 12 fields, the class, the probabilities, the
    version, the time and the request id."""
    entry = json.loads(line)
    records = entry["request"]["records"]
    records = [records] if isinstance(records, dict) else records
    return [
        {
            **record,
            "time": entry["time"],
            "request_id": entry["request_id"],
            "model_version": prediction["model_version"],
            "cover_type": prediction["cover_type"],
            "probabilities": prediction["probabilities"],
        }
        for record, prediction in zip(records, entry["answer"], strict=True)
    ]


class _LinesFile(RotatingFileHandler):
    """Writes one request's line in the writer's thread; counts the records it wrote or dropped."""

    def emit(self, record: logging.LogRecord) -> None:
        request, answer, request_id, time = record.args
        record.msg, record.args, record.records = (
            log_line(request, answer, request_id, time),
            (),
            records_in(answer),
        )
        if self.stream is None:  # the file opens (first line, after a rotation): its folder may be gone
            try:
                Path(self.baseFilename).parent.mkdir(parents=True, exist_ok=True)
            except OSError:
                self.handleError(record)
                return
        super().emit(record)  # a failure to write or rotate goes to handleError
        if not getattr(record, "dropped", False):
            LOGGED.inc(record.records)

    def handleError(self, record: logging.LogRecord) -> None:
        record.dropped = True
        DROPPED.labels(reason="write_failed").inc(getattr(record, "records", 1))


class _BoundedQueue(QueueHandler):
    """Puts without waiting; a request that would pass ``queue_bytes`` of pending bodies is dropped."""

    def __init__(self, pending: queue.Queue, queue_bytes: int) -> None:
        super().__init__(pending)
        self.queue_bytes = queue_bytes
        self.pending_bytes = 0
        self._lock = threading.Lock()

    def offer(self, request: bytes, answer: bytes, request_id: str, time: str) -> None:
        size = len(request) + len(answer)
        with self._lock:
            full = self.pending_bytes + size > self.queue_bytes
            if not full:
                self.pending_bytes += size
        if full:
            DROPPED.labels(reason="queue_full").inc(records_in(answer))
            return
        record = logging.makeLogRecord({"msg": "", "args": (request, answer, request_id, time), "size": size})
        self.queue.put_nowait(record)  # unbounded by count: bounded by bytes above

    def taken(self, record: logging.LogRecord) -> None:
        with self._lock:
            self.pending_bytes -= record.size


class _Listener(QueueListener):
    def __init__(self, pending: queue.Queue, handler: _LinesFile, queue_handler: _BoundedQueue) -> None:
        super().__init__(pending, handler)
        self._queue_handler = queue_handler

    def handle(self, record: logging.LogRecord) -> None:
        try:
            super().handle(record)
        finally:
            self._queue_handler.taken(record)


class PredictionLog:
    """The log's writer: ``offer`` returns at once; one thread writes. ``close`` drains and stops it."""

    @classmethod
    def from_settings(cls, settings: Settings) -> PredictionLog:
        megabyte = 1_000_000
        return cls(
            Path(settings.prediction_log_path),
            max_bytes=int(settings.prediction_log_max_mb * megabyte),
            backups=settings.prediction_log_backups,
            queue_bytes=int(settings.prediction_log_queue_mb * megabyte),
        )

    def __init__(self, folder: Path, max_bytes: int, backups: int, queue_bytes: int) -> None:
        self.path = folder / f"predictions.{os.getpid()}.jsonl"
        pending: queue.Queue = queue.Queue()
        self._handler = _LinesFile(
            self.path, maxBytes=max_bytes, backupCount=backups, delay=True, encoding="utf-8"
        )
        self._queue = _BoundedQueue(pending, queue_bytes)
        self._listener = _Listener(pending, self._handler, self._queue)
        self._listener.start()

    def offer(self, request: bytes, answer: bytes, request_id: str) -> None:
        self._queue.offer(request, answer, request_id, datetime.now(UTC).isoformat())

    def close(self) -> None:
        self._listener.stop()
        self._handler.close()


class LogPredictions:
    """ASGI middleware: each 200 answer of ``path`` and its request go to the log; sets ``X-Request-ID``.

    The log is made here, in the worker process that builds the app (its file is named by the process),
    and drained when the process exits; with ``settings.prediction_log`` off nothing is logged.
    """

    def __init__(
        self, app: Callable[[Scope, Receive, Send], Awaitable[None]], path: str, settings: Settings
    ) -> None:
        self.app = app
        self.path = path if settings.prediction_log else None
        if self.path is not None:
            self.log = PredictionLog.from_settings(settings)
            atexit.register(self.log.close)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(REQUEST_ID, b"").decode("latin-1")[:64]
        request_id = given or uuid.uuid4().hex
        request, answer, status = bytearray(), bytearray(), 0

        async def keeping_receive() -> Message:
            message = await receive()
            request.extend(message.get("body", b""))
            return message

        async def keeping_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (REQUEST_ID, request_id.encode("latin-1"))]
            elif message["type"] == "http.response.body" and status == 200:
                answer.extend(message.get("body", b""))
                if not message.get("more_body", False):
                    await send(message)
                    self.log.offer(bytes(request), bytes(answer), request_id)
                    return
            await send(message)

        await self.app(scope, keeping_receive, keeping_send)
