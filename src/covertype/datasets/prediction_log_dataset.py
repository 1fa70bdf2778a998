"""The service's prediction log (covertype.serving.prediction_log) as a table, for monitoring."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
from kedro.io import AbstractDataset, DatasetError

from covertype.data.schema import CATEGORICAL_COLUMNS, FEATURE_COLUMNS, NUMERIC_COLUMNS
from covertype.serving.prediction_log import LOG_FILES, answered_records

#: The table's columns besides the 12 fields.
LOG_COLUMNS = ("time", "request_id", "model_version", "cover_type")


class PredictionLogDataset(AbstractDataset[None, pd.DataFrame]):
    """Read-only: every line of the log's files (current and rotated) in ``path``, oldest first.

    Columns: ``time`` (UTC), ``request_id``, ``model_version``, the 12 fields typed as the raw store
    types them (the service logs the request as it came: ``"2596"`` is read as 2596), ``cover_type``.
    A line cut short (a file being written) is skipped; no folder yet is an empty table.
    """

    def __init__(self, *, path: str, metadata: dict[str, Any] | None = None) -> None:
        self._path = Path(path)
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}

    def load(self) -> pd.DataFrame:
        rows = []
        for file in sorted(self._path.glob(LOG_FILES)):
            for line in file.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    rows.extend(answered_records(line))
                except json.JSONDecodeError:
                    continue
        frame = pd.DataFrame(rows, columns=[*LOG_COLUMNS, *FEATURE_COLUMNS])
        types = {
            "time": "datetime64[us, UTC]",
            "request_id": "string",
            "model_version": "string",
            "cover_type": "Int64",
            **dict.fromkeys(NUMERIC_COLUMNS, "Int64"),
            **dict.fromkeys(CATEGORICAL_COLUMNS, "string"),
        }
        frame["time"] = pd.to_datetime(frame["time"], utc=True, format="ISO8601")
        numbers = {name: pd.to_numeric(frame[name]) for name in NUMERIC_COLUMNS}  # "2596" as served
        frame = frame.assign(**numbers)
        return frame.astype(types).sort_values("time", kind="stable", ignore_index=True)

    def save(self, data: None) -> None:
        raise DatasetError(f"{type(self).__name__} is read-only: the service writes the log")
