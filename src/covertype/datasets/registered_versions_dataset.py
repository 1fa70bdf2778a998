"""The registered versions of the model as a table: what monitoring needs to name its reference."""

from __future__ import annotations

from typing import Any

import pandas as pd
from kedro.io import AbstractDataset, DatasetError

from covertype.registry import TRAINING_ROWS_TAG, ModelRegistry

#: The table's columns: the version, the aliases pointing at it, the distinct rows it was trained on.
VERSION_COLUMNS = ("version", "aliases", "training_rows", "registered_at")


class RegisteredVersionsDataset(AbstractDataset[None, pd.DataFrame]):
    """Read-only: one row per registered version, newest first (``VERSION_COLUMNS``).

    ``aliases`` is a comma-separated list (empty when none points at the version); ``training_rows``
    is the version's ``training_rows`` tag (missing for versions registered without it). Empty before
    the first registration. ``registry`` holds ``ModelRegistry``'s arguments, as for the registry
    dataset training writes through.
    """

    def __init__(self, *, registry: dict[str, str | None], metadata: dict[str, Any] | None = None) -> None:
        self._registry = ModelRegistry(**registry)
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"model_name": self._registry.model_name, "registry_uri": self._registry.registry_uri}

    def load(self) -> pd.DataFrame:
        aliases = self._registry.aliases()
        rows = [
            (
                str(version.version),
                ",".join(aliases.get(str(version.version), [])),
                version.tags.get(TRAINING_ROWS_TAG),
                pd.Timestamp(version.creation_timestamp, unit="ms", tz="UTC"),
            )
            for version in self._registry.versions()
        ]
        return pd.DataFrame(rows, columns=list(VERSION_COLUMNS)).astype(
            {
                "version": "string",
                "aliases": "string",
                "training_rows": "Int64",
                "registered_at": "datetime64[ms, UTC]",
            }
        )

    def save(self, data: None) -> None:
        raise DatasetError(f"{type(self).__name__} is read-only: training registers versions")
