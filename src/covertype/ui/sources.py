"""Where the app's data comes from: the BentoML service, the MLflow registry and the raw store.

No Streamlit here: each function raises ``Unavailable`` with a sentence a person can act on,
and the pages show that sentence instead of a traceback.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
from kedro.config import OmegaConfigLoader
from kedro.io import DataCatalog
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from covertype.data.schema import API_COLUMNS, FEATURE_COLUMNS
from covertype.paths import PROJECT_ROOT
from covertype.serving.champion import CHAMPION_ALIAS, MODEL_NAME, tracking_uri
from covertype.settings import CONFIG_LOADER_ARGS

DEFAULT_SERVICE_URL = "http://127.0.0.1:3000"
RAW_DATASET = "raw_covertype"
# A page should say that the registry is down within seconds, not after MLflow's minutes of retries.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
#: Records per predict request: large uploads are sent in slices the service batches well.
REQUEST_RECORDS = 500


class Unavailable(RuntimeError):
    """A source could not answer; the message says which one, where, and why."""


def service_url() -> str:
    return os.environ.get("COVERTYPE_SERVICE_URL", DEFAULT_SERVICE_URL).rstrip("/")


class Refused(ValueError):
    """The service refused the input (HTTP 400); the message names each bad field and why."""


def _call(endpoint: str, body: dict[str, Any], first_row: int = 0, timeout: float = 60) -> Any:
    url = f"{service_url()}/{endpoint}"
    try:
        response = httpx.post(url, json=body, timeout=timeout)
    except httpx.HTTPError as error:
        raise Unavailable(
            f"The prediction service at {service_url()} is not reachable ({type(error).__name__}). "
            "Start it with `make serve` or set COVERTYPE_SERVICE_URL."
        ) from error
    if response.status_code == 400:
        raise Refused(_refusal(response.json().get("detail", []), first_row) or response.text)
    if response.status_code == 503:
        raise Unavailable(
            f"The prediction service at {service_url()} has no champion model to serve yet (HTTP 503). "
            "Train one with `make demo` or `kedro run`: the service loads the first champion by itself."
        )
    if not response.is_success:
        raise Unavailable(
            f"The prediction service answered HTTP {response.status_code}: {response.text[:300]}"
        )
    return response.json()


def _refusal(details: list[dict[str, Any]], first_row: int) -> str:
    """Pydantic errors as "row 3, Slope: Input should be less than or equal to 90" (rows from 1)."""
    reasons = []
    for item in details:
        location = list(item.get("loc", []))
        if len(location) >= 2 and location[0] == "records" and isinstance(location[1], int):
            field = ", ".join(str(part) for part in location[2:])
            where = f"row {first_row + location[1] + 1}" + (f", {field}" if field else "")
        else:
            where = ".".join(str(part) for part in location) or "body"
        reasons.append(f"{where}: {item.get('msg')}")
    return "; ".join(reasons)


def predict(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The service's predictions for ``records``, in order, sent in slices of REQUEST_RECORDS."""
    predictions: list[dict[str, Any]] = []
    for start in range(0, len(records), REQUEST_RECORDS):
        predictions += _call(
            "predict", {"records": records[start : start + REQUEST_RECORDS]}, first_row=start
        )
    return predictions


def model_info() -> dict[str, Any]:
    """What the service is serving right now."""
    return _call("model_info", {})


def _registry() -> MlflowClient:
    uri = tracking_uri()
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _registry_unavailable(error: Exception) -> Unavailable:
    return Unavailable(
        f"The MLflow registry at {tracking_uri()} could not answer ({type(error).__name__}: {error}). "
        "Check MLFLOW_TRACKING_URI."
    )


def _champion_version(client: MlflowClient) -> str | None:
    """Searches do not return aliases, so the champion is asked for once; None when there is none."""
    try:
        return str(client.get_model_version_by_alias(MODEL_NAME, CHAMPION_ALIAS).version)
    except MlflowException:
        return None


def version_history() -> pd.DataFrame:
    """One row per registered version: when, which run, its test metrics, whether it is the champion."""
    try:
        client = _registry()
        versions = client.search_model_versions(f"name = '{MODEL_NAME}'")
        champion = _champion_version(client) if versions else None
        rows = []
        for version in versions:
            metrics = client.get_run(version.run_id).data.metrics if version.run_id else {}
            rows.append(
                {
                    "version": int(version.version),
                    "registered_at": pd.Timestamp(version.creation_timestamp, unit="ms", tz="UTC"),
                    "champion": str(version.version) == champion,
                    "run_id": version.run_id,
                    **{name: value for name, value in metrics.items() if name.startswith("test_")},
                }
            )
    except Exception as error:  # mlflow raises many types for a missing or unreachable store
        raise _registry_unavailable(error) from error
    if not rows:
        raise Unavailable(f"No version of model '{MODEL_NAME}' is registered in {tracking_uri()} yet.")
    return pd.DataFrame(rows).sort_values("version").reset_index(drop=True)


def _artifact_files(client: MlflowClient, run_id: str, folder: str | None = None) -> Iterator[str]:
    for artifact in client.list_artifacts(run_id, folder):
        if artifact.is_dir:
            yield from _artifact_files(client, run_id, artifact.path)
        else:
            yield artifact.path


def confusion_matrix_image(run_id: str) -> bytes | None:
    """The confusion matrix figure the training run logged (any folder), or None when it logged none."""
    try:
        client = _registry()
        images = [
            path
            for path in _artifact_files(client, run_id)
            if "confusion" in path.lower() and path.lower().endswith(".png")
        ]
        if not images:
            return None
        with tempfile.TemporaryDirectory() as folder:
            return Path(client.download_artifacts(run_id, images[0], folder)).read_bytes()
    except Exception as error:
        raise _registry_unavailable(error) from error


def raw_store(env: str | None = None) -> pd.DataFrame:
    """The raw table from the Kedro catalog of ``env`` (KEDRO_ENV, default ``local``).

    Its entry is ``raw_covertype``, possibly transcoded (``raw_covertype@<form>``); every form reads
    the same table, so the first one configured is used.
    """
    env = env or os.environ.get("KEDRO_ENV", "local")
    loader = OmegaConfigLoader(
        conf_source=str(PROJECT_ROOT / "conf"), **{**CONFIG_LOADER_ARGS, "default_run_env": env}
    )
    entries = loader["catalog"]
    names = sorted(name for name in entries if name.split("@")[0] == RAW_DATASET)
    try:
        if not names:
            raise KeyError(f"no `{RAW_DATASET}` entry in the catalog")
        catalog = DataCatalog.from_config({names[0]: entries[names[0]]}, loader["credentials"])
        return catalog.load(names[0])
    except Exception as error:  # a missing table, an unreachable database, a bad URL
        raise Unavailable(
            f"The raw store (`{RAW_DATASET}`, Kedro environment '{env}') could not be read: {error}. "
            "Run `make demo` or `kedro run --pipeline ingestion` to collect data."
        ) from error


def read_batch_csv(upload: Any) -> pd.DataFrame:
    """A CSV in the batch API's form: its 12 feature columns (Cover_Type optional), header optional."""
    frame = pd.read_csv(upload, header=None, dtype=str)
    if list(frame.iloc[0])[: len(FEATURE_COLUMNS)] == list(FEATURE_COLUMNS):
        frame = frame.iloc[1:].set_axis(list(frame.iloc[0]), axis=1)
    elif frame.shape[1] in (len(FEATURE_COLUMNS), len(API_COLUMNS)):
        frame.columns = list(API_COLUMNS[: frame.shape[1]])
    else:
        raise ValueError(
            f"Expected {len(FEATURE_COLUMNS)} or {len(API_COLUMNS)} columns in the batch API's order "
            f"({', '.join(API_COLUMNS)}), got {frame.shape[1]}."
        )
    missing = [column for column in FEATURE_COLUMNS if column not in frame.columns]
    if missing:
        raise ValueError(f"Missing columns: {', '.join(missing)}.")
    return frame.reset_index(drop=True)
