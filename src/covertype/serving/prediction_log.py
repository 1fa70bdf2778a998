"""Every answered prediction as a JSON line, written off the request's path; read back by monitoring.

``LogPredictions`` is ASGI middleware on ``predict``: it keeps the request's and the answer's bytes
as they pass and, once a 200 answer is sent, hands both to ``PredictionLog`` without waiting: a
bounded list (at most ``queue_bytes`` of pending bodies) that one thread drains every
``flush_seconds``, writing one line per request through the standard library's
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
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from logging.handlers import RotatingFileHandler
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


#: A pending request: its body, the answer's body, the request id and the time it was answered.
Pending = tuple[bytes, bytes, str, float]


class _LinesFile(RotatingFileHandler):
    """Writes a drained batch, one record per request, so that files rotate between lines; counts the
    records it wrote or dropped. (One record for the whole batch cost three times the CPU per request:
    megabytes of text copied at each step of ``emit``.)"""

    def write_batch(self, batch: list[Pending]) -> None:
        for request, answer, request_id, seconds in batch:
            line = log_line(request, answer, request_id, datetime.fromtimestamp(seconds, UTC).isoformat())
            record = logging.makeLogRecord({"msg": line})
            record.records = records_in(answer)
            if self.stream is None:  # the file opens (first line, after a rotation): its folder may be gone
                try:
                    Path(self.baseFilename).parent.mkdir(parents=True, exist_ok=True)
                except OSError:
                    self.handleError(record)
                    continue
            self.emit(record)  # a failure to write or rotate goes to handleError
            if not getattr(record, "dropped", False):
                LOGGED.inc(record.records)

    def handleError(self, record: logging.LogRecord) -> None:
        record.dropped = True
        DROPPED.labels(reason="write_failed").inc(getattr(record, "records", 1))


class PredictionLog:
    """The log's writer: ``offer`` appends and returns; one thread writes what is pending every
    ``flush_seconds``. ``close`` writes the rest and stops it.

    One wake-up per interval, not one per request: a thread woken for each request took the GIL from
    the event loop hundreds of times a second (``make bench-monitoring``).
    """

    @classmethod
    def from_settings(cls, settings: Settings) -> PredictionLog:
        megabyte = 1_000_000
        return cls(
            Path(settings.prediction_log_path),
            max_bytes=int(settings.prediction_log_max_mb * megabyte),
            backups=settings.prediction_log_backups,
            queue_bytes=int(settings.prediction_log_queue_mb * megabyte),
            flush_seconds=settings.prediction_log_flush_seconds,
        )

    def __init__(
        self,
        folder: Path,
        max_bytes: int,
        backups: int,
        queue_bytes: int,
        flush_seconds: float = Settings.model_fields["prediction_log_flush_seconds"].default,
    ) -> None:
        self.path = folder / f"predictions.{os.getpid()}.jsonl"
        self._handler = _LinesFile(
            self.path, maxBytes=max_bytes, backupCount=backups, delay=True, encoding="utf-8"
        )
        self._queue_bytes = queue_bytes
        self._pending: list[Pending] = []
        self._pending_bytes = 0
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._writer = threading.Thread(
            target=self._write_every, args=(flush_seconds,), name="prediction-log", daemon=True
        )
        self._writer.start()

    def offer(self, request: bytes, answer: bytes, request_id: str) -> None:
        """Queue one answered request; past ``queue_bytes`` of pending bodies its records are dropped."""
        size = len(request) + len(answer)
        with self._lock:
            full = self._pending_bytes + size > self._queue_bytes
            if not full:
                self._pending_bytes += size
                self._pending.append((request, answer, request_id, time.time()))
        if full:
            DROPPED.labels(reason="queue_full").inc(records_in(answer))

    def close(self) -> None:
        self._closing.set()
        self._writer.join()
        self._handler.close()

    def _write_every(self, flush_seconds: float) -> None:
        while not self._closing.wait(flush_seconds):
            self._write_pending()
        self._write_pending()

    def _write_pending(self) -> None:
        with self._lock:
            batch, self._pending, self._pending_bytes = self._pending, [], 0
        if batch:
            self._handler.write_batch(batch)


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
