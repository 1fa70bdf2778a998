"""The group's current batch from the batch API (ours or the course's), as a typed DataFrame."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pandas as pd
from kedro.io import AbstractDataset, DatasetError
from tenacity import (
    Future,
    RetryCallState,
    RetryError,
    Retrying,
    retry_if_exception_type,
    retry_if_result,
    stop_after_attempt,
    wait_exponential,
)

from covertype.data.convert import api_records_to_frame

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


def _problem(attempt: Future) -> str:
    """What went wrong in one attempt, for the log and the final error."""
    error = attempt.exception()
    if error is not None:
        return f"{type(error).__name__}: {error}"
    response = attempt.result()
    return f"HTTP {response.status_code}: {response.text[:200]}"


class BatchAPIDataset(AbstractDataset[None, pd.DataFrame]):
    """Loads ``GET {url}/data?group_number=N`` with a timeout and retries.

    Connection errors, timeouts and 5xx answers are retried, ``max_attempts`` in all, waiting
    ``backoff_seconds`` × 2ⁿ between them; other answers are final. The 400 answer that says all
    the data was collected loads as an empty frame with a log line, so the run ends cleanly; any
    other 4xx is an error. Columns: the 13 API columns typed, ``raw_record``, ``group_number``,
    ``batch_number`` and ``collected_at`` (UTC).

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
            retry=retry_if_exception_type(httpx.TransportError) | retry_if_result(_is_server_error),
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

    def load(self) -> pd.DataFrame:
        response = self._get()
        collected_at = pd.Timestamp.now(tz="UTC")
        if is_completion_answer(response):
            logger.info(
                "Batch API %s: collection finished for group %d (%s); nothing to ingest",
                self._url,
                self._group_number,
                response.json()["detail"],
            )
            return self._with_batch_columns(
                api_records_to_frame([]), batch_number=0, collected_at=collected_at
            )
        if response.status_code >= 400:
            raise DatasetError(
                f"Batch API {self._url} refused group {self._group_number}: "
                f"HTTP {response.status_code} {response.text[:500]}"
            )
        payload = response.json()
        frame = api_records_to_frame(payload["data"])
        logger.info(
            "Batch API %s: group %d batch %d, %d rows",
            self._url,
            self._group_number,
            payload["batch_number"],
            len(frame),
        )
        return self._with_batch_columns(frame, payload["batch_number"], collected_at)

    def _with_batch_columns(
        self, frame: pd.DataFrame, batch_number: int, collected_at: pd.Timestamp
    ) -> pd.DataFrame:
        frame["group_number"] = pd.Series(self._group_number, index=frame.index, dtype="int64")
        frame["batch_number"] = pd.Series(batch_number, index=frame.index, dtype="int64")
        frame["collected_at"] = pd.Series(collected_at, index=frame.index, dtype="datetime64[us, UTC]")
        return frame

    def save(self, data: None) -> None:
        raise DatasetError("The batch API is read-only")
