"""Draws from the group's current batch of the batch API (ours or the course's), one call each."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pandas as pd
from kedro.io import AbstractDataset, DatasetError
from tenacity import (
    Future,
    RetryCallState,
    RetryError,
    Retrying,
    retry_if_exception,
    retry_if_result,
    stop_after_attempt,
    wait_exponential,
)

from covertype.first_run import FirstRunError

logger = logging.getLogger(__name__)

#: Words of the 400 answer that means "every batch was served" (ours in English, the course's in Spanish).
COMPLETION_MARKERS = ("collected", "recolect")


def is_completion_answer(response: httpx.Response) -> bool:
    """Whether a 400 from ``/data`` says that all the data was collected (not a bad request)."""
    if response.status_code != 400:
        return False
    try:
        detail = str(response.json().get("detail", ""))
    except ValueError:
        return False
    return any(marker in detail.lower() for marker in COMPLETION_MARKERS)


def _is_server_error(response: httpx.Response) -> bool:
    return response.status_code >= 500


def _is_flaky(error: BaseException) -> bool:
    """A timeout or a dropped connection is worth retrying; a refused one (nothing listens) is not."""
    return isinstance(error, httpx.TransportError) and not isinstance(error, httpx.ConnectError)


class BatchAPIUnreachable(FirstRunError, DatasetError):
    """Nothing answers at the batch API's address: the first run's usual mistake, said in one line."""

    def __init__(self, url: str, error: httpx.ConnectError) -> None:
        super().__init__(
            f"No batch API answers at {url} ({error or 'connection refused'}): start ours with "
            f"`uv run covertype-batch-api`, or set COVERTYPE_BATCH_API_URL (or --params batch_api_url=...) "
            f"to the course's; `make demo` starts one and runs every cycle for you."
        )


def _problem(attempt: Future) -> str:
    """What went wrong in one attempt, for the log and the final error."""
    error = attempt.exception()
    if error is not None:
        return f"{type(error).__name__}: {error}"
    response = attempt.result()
    return f"HTTP {response.status_code}: {response.text[:200]}"


@dataclass(frozen=True)
class Draw:
    """One answer of ``/data``: the batch it came from and its rows exactly as served."""

    group_number: int
    #: None when the API answered that all the data was collected.
    batch_number: int | None
    records: list[Any]
    collected_at: pd.Timestamp
    #: How long the call took, retries included.
    seconds: float

    @property
    def collection_finished(self) -> bool:
        return self.batch_number is None


class BatchDraws:
    """The current batch, drawn on demand: each ``draw()`` is one call to ``/data``.

    This is the I/O of a harvest (the pause between calls, retries, the completion answer); the
    ingestion nodes decide how many draws to take.
    """

    def __init__(
        self,
        dataset: BatchAPIDataset,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._dataset = dataset
        self._clock = clock
        self._sleep = sleep
        self._first_call: float | None = None
        self._last_end: float | None = None

    @property
    def elapsed_seconds(self) -> float:
        """Seconds since the first call started (0 before it)."""
        return 0.0 if self._first_call is None else self._clock() - self._first_call

    def draw(self, pause_seconds: float = 0.0) -> Draw:
        """One call, made at least ``pause_seconds`` after the previous one ended."""
        if self._last_end is not None:
            self._sleep(max(0.0, self._last_end + pause_seconds - self._clock()))
        started = self._clock()
        if self._first_call is None:
            self._first_call = started
        batch_number, records = self._dataset.fetch()
        self._last_end = self._clock()
        return Draw(
            group_number=self._dataset.group_number,
            batch_number=batch_number,
            records=records,
            collected_at=pd.Timestamp.now(tz="UTC"),
            seconds=self._last_end - started,
        )


class BatchAPIDataset(AbstractDataset[None, BatchDraws]):
    """Loads a ``BatchDraws`` on ``GET {url}/data?group_number=N``: each draw is one call.

    Each call has a timeout; timeouts, dropped connections and 5xx answers are retried,
    ``max_attempts`` in all, waiting ``backoff_seconds`` × 2ⁿ between them; other answers are
    final. A refused connection is not retried: nothing listens there, which waiting does not
    change, so ``BatchAPIUnreachable`` says at once what to start. The 400 answer that says all the
    data was collected is a draw without a batch, with a log line, so the run ends cleanly; any other
    4xx is an error. The ingestion node ``harvest_batch`` takes the draws and types their rows.

    Example catalog entry::

        covertype_batch:
          type: covertype.datasets.BatchAPIDataset
          url: http://127.0.0.1:8000
          group_number: 1
    """

    def __init__(
        self,
        *,
        url: str,
        group_number: int,
        timeout: float = 30.0,
        max_attempts: int = 5,
        backoff_seconds: float = 1.0,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._url = url.rstrip("/")
        self._group_number = int(group_number)
        self._timeout = timeout
        self._max_attempts = max_attempts
        self._backoff_seconds = backoff_seconds
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"url": self._url, "group_number": self._group_number}

    def _get(self) -> httpx.Response:
        """The API's answer, once it is not a connection error, a timeout or a 5xx (4xx are answers)."""
        retrying = Retrying(
            retry=retry_if_exception(_is_flaky) | retry_if_result(_is_server_error),
            stop=stop_after_attempt(self._max_attempts),
            wait=wait_exponential(multiplier=self._backoff_seconds),
            before_sleep=self._log_retry,
        )
        try:
            return retrying(
                httpx.get,
                f"{self._url}/data",
                params={"group_number": self._group_number},
                timeout=self._timeout,
            )
        except httpx.ConnectError as refused:
            raise BatchAPIUnreachable(self._url, refused) from None
        except RetryError as exhausted:
            raise DatasetError(
                f"Batch API {self._url} failed {self._max_attempts} times for group {self._group_number}: "
                f"{_problem(exhausted.last_attempt)}. Is it running? Check the URL (COVERTYPE_BATCH_API_URL)."
            ) from exhausted.last_attempt.exception()

    def _log_retry(self, retry_state: RetryCallState) -> None:
        logger.warning(
            "Batch API %s: %s; retry %d/%d in %.1f s",
            self._url,
            _problem(retry_state.outcome),
            retry_state.attempt_number,
            self._max_attempts - 1,
            retry_state.upcoming_sleep,
        )

    def load(self) -> BatchDraws:
        return BatchDraws(self)

    @property
    def group_number(self) -> int:
        return self._group_number

    def fetch(self) -> tuple[int | None, list[Any]]:
        """One call to ``/data``: the batch number and its rows as served; None and no rows when done."""
        response = self._get()
        if is_completion_answer(response):
            logger.info(
                "Batch API %s: collection finished for group %d (%s); nothing to ingest",
                self._url,
                self._group_number,
                response.json()["detail"],
            )
            return None, []
        if response.status_code >= 400:
            raise DatasetError(
                f"Batch API {self._url} refused group {self._group_number}: "
                f"HTTP {response.status_code} {response.text[:500]}"
            )
        payload = response.json()
        logger.info(
            "Batch API %s: group %d batch %d, %d rows",
            self._url,
            self._group_number,
            payload["batch_number"],
            len(payload["data"]),
        )
        return int(payload["batch_number"]), payload["data"]

    def save(self, data: None) -> None:
        raise DatasetError("The batch API is read-only")
