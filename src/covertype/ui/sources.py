"""Where the app's data comes from: the BentoML service, the MLflow registry, the raw store, the batch
API and Airflow.

No Streamlit here: each page makes ``Sources`` from the settings of its process, and each method
raises ``Unavailable`` with a sentence a person can act on, which the page shows instead of a
traceback.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pandas as pd

from covertype.batch_api.rotation import GroupState
from covertype.config import Settings
from covertype.data.convert import one_hot_to_api
from covertype.data.schema import API_COLUMNS, FEATURE_COLUMNS, TARGET_COLUMN
from covertype.data.source import load_covertype
from covertype.paths import PROJECT_ROOT

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from covertype.registry import ModelRegistry

# MLflow, Kedro and Airflow's modules take seconds to import, most of the app's first page load: they
# are imported by the pages that use them (Model, Data, Control), not by the Predict page it opens on.
from covertype.stack.probe import ServiceHealth, service_health

RAW_DATASET = "raw_covertype"
#: Seconds a registry server has to answer its health check before a page says it is unreachable.
REGISTRY_PROBE_SECONDS = 10
#: Records per predict request: large uploads are sent in slices the service batches well.
REQUEST_RECORDS = 500
#: Seconds the batch API, a reload or Airflow has to answer a request from the Control page.
CONTROL_SECONDS = 60
#: Rows of each cover type in the Batch page's example file.
EXAMPLE_ROWS_PER_CLASS = 3


class Unavailable(RuntimeError):
    """A source could not answer; the message says which one, where, and why."""


class Refused(ValueError):
    """The service refused the input (HTTP 400); the message names each bad field and why."""


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


@dataclass(frozen=True)
class BatchPosition:
    """Where the settings' group stands at the batch API, and the rotation it follows."""

    group_number: int
    #: None while the group has not been served: its first ``/data`` call starts batch 1.
    state: GroupState | None
    batches: int
    min_update_seconds: float


class Sources:
    """The service, the registry, the raw store, the batch API and Airflow that ``settings`` name."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.service_url = settings.service_url.rstrip("/")

    @cached_property
    def registry(self) -> ModelRegistry:
        from covertype.registry import ModelRegistry  # noqa: PLC0415  (MLflow: see the imports)

        return ModelRegistry.from_settings(self.settings)

    def _service_unreachable(self, error: Exception) -> Unavailable:
        return Unavailable(
            f"The prediction service at {self.service_url} is not reachable ({type(error).__name__}). "
            "Start it with `make serve` or set COVERTYPE_SERVICE_URL."
        )

    def _call(self, endpoint: str, body: dict[str, Any], first_row: int = 0, timeout: float = 60) -> Any:
        url = f"{self.service_url}/{endpoint}"
        try:
            response = httpx.post(url, json=body, timeout=timeout)
        except httpx.HTTPError as error:
            raise self._service_unreachable(error) from error
        if response.status_code == 400:
            raise Refused(_refusal(response.json().get("detail", []), first_row) or response.text)
        if response.status_code in (404, 410):  # the version asked for: none such, or not loadable
            raise Refused(response.json().get("error") or response.text)
        if response.status_code == 503:
            raise Unavailable(
                f"The prediction service at {self.service_url} has no champion model to serve yet "
                "(HTTP 503). Train one with `make demo` or `kedro run`: the service loads the first "
                "champion by itself."
            )
        if not response.is_success:
            raise Unavailable(
                f"The prediction service answered HTTP {response.status_code}: {response.text[:300]}"
            )
        return response.json()

    def predict(self, records: list[dict[str, Any]], model: str | None = None) -> list[dict[str, Any]]:
        """The service's predictions for ``records``, in order, sent in slices of REQUEST_RECORDS.

        ``model``: an alias or a version number; None is the champion. Each prediction names the
        version that answered it (``model_version``, ``model_aliases``).
        """
        predictions: list[dict[str, Any]] = []
        for start in range(0, len(records), REQUEST_RECORDS):
            body: dict[str, Any] = {"records": records[start : start + REQUEST_RECORDS]}
            if model is not None:
                body["model"] = model
            predictions += self._call("predict", body, first_row=start)
        return predictions

    def explain(self, record: dict[str, Any], model: str | None = None) -> dict[str, Any]:
        """Why the service answers ``record`` as it does: its ``/explain`` for that one record."""
        body: dict[str, Any] = {"records": [record], **({"model": model} if model is not None else {})}
        (explanation,) = self._call("explain", body)
        return explanation

    def served_versions(self) -> list[dict[str, Any]]:
        """The versions the service can answer with (its ``GET /models``), newest first."""
        url = f"{self.service_url}/models"
        try:
            response = httpx.get(url, timeout=CONTROL_SECONDS)
        except httpx.HTTPError as error:
            raise self._service_unreachable(error) from error
        if not response.is_success:
            raise Unavailable(
                f"The prediction service did not list its versions (HTTP {response.status_code}): "
                f"{response.text[:300]}"
            )
        return response.json()["versions"]

    def model_info(self) -> dict[str, Any]:
        """What the service is serving right now."""
        return self._call("model_info", {})

    def _registry_unavailable(self, error: Exception) -> Unavailable:
        return Unavailable(
            f"The MLflow registry at {self.settings.registry_uri} could not answer "
            f"({type(error).__name__}: {error}). Check MLFLOW_TRACKING_URI."
        )

    def _reachable_registry(self) -> ModelRegistry:
        """The registry, once a server behind it answers its health check within seconds.

        MLflow's client retries an unreachable server for minutes; a page says so at once instead.
        """
        uri = self.settings.registry_uri
        if uri.startswith(("http://", "https://")):
            try:
                httpx.get(f"{uri.rstrip('/')}/health", timeout=REGISTRY_PROBE_SECONDS).raise_for_status()
            except httpx.HTTPError as error:
                raise self._registry_unavailable(error) from error
        return self.registry

    def version_history(self) -> pd.DataFrame:
        """One row per registered version: when, which run, its test metrics, whether it is the champion."""
        try:
            registry = self._reachable_registry()
            versions = registry.versions()
            champion = registry.champion() if versions else None
            rows = []
            for version in versions:
                metrics = registry.client.get_run(version.run_id).data.metrics if version.run_id else {}
                rows.append(
                    {
                        "version": int(version.version),
                        "registered_at": pd.Timestamp(version.creation_timestamp, unit="ms", tz="UTC"),
                        "champion": champion is not None and str(version.version) == str(champion.version),
                        "run_id": version.run_id,
                        **{name: value for name, value in metrics.items() if name.startswith("test_")},
                    }
                )
        except Unavailable:
            raise
        except Exception as error:  # mlflow raises many types for a missing or unreachable store
            raise self._registry_unavailable(error) from error
        if not rows:
            raise Unavailable(
                f"No version of model '{self.registry.model_name}' is registered in "
                f"{self.registry.registry_uri} yet."
            )
        return pd.DataFrame(rows).sort_values("version").reset_index(drop=True)

    def confusion_matrix_image(self, run_id: str) -> bytes | None:
        """The confusion matrix figure the training run logged (any folder), or None when it logged none."""
        try:
            client = self._reachable_registry().client
            images = [
                path
                for path in _artifact_files(client, run_id)
                if "confusion" in path.lower() and path.lower().endswith(".png")
            ]
            if not images:
                return None
            with tempfile.TemporaryDirectory() as folder:
                return Path(client.download_artifacts(run_id, images[0], folder)).read_bytes()
        except Unavailable:
            raise
        except Exception as error:
            raise self._registry_unavailable(error) from error

    def raw_store(self) -> pd.DataFrame:
        """The raw table from the Kedro catalog of the settings' Kedro environment (KEDRO_ENV)."""
        hint = "Run `make demo` or `kedro run --pipeline ingestion` to collect data."
        return self._catalog_table(RAW_DATASET, "The raw store", hint)

    def drift_reports(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The monitoring pipeline's stored reports and their per-field rows (empty before the first)."""
        hint = "Run `kedro run --pipeline monitoring` after a batch is ingested and a champion trained."
        reports = self._catalog_table("drift_reports", "The drift reports", hint)
        if reports.empty:
            return reports, pd.DataFrame()
        return reports, self._catalog_table("drift_fields", "The drift reports' fields", hint)

    def _catalog_table(self, dataset: str, what: str, hint: str) -> pd.DataFrame:
        """A table of the Kedro catalog of the settings' Kedro environment (KEDRO_ENV).

        Its entry is ``dataset``, possibly transcoded (``<dataset>@<form>``); every form reads the
        same table, so the first one configured is used.
        """
        from kedro.config import OmegaConfigLoader  # noqa: PLC0415  (Kedro: see the imports)
        from kedro.io import DataCatalog  # noqa: PLC0415

        from covertype.settings import CONFIG_LOADER_ARGS  # noqa: PLC0415

        env = self.settings.kedro_env
        loader = OmegaConfigLoader(
            conf_source=str(PROJECT_ROOT / "conf"), **{**CONFIG_LOADER_ARGS, "default_run_env": env}
        )
        entries = loader["catalog"]
        names = sorted(name for name in entries if name.split("@")[0] == dataset)
        try:
            if not names:
                raise KeyError(f"no `{dataset}` entry in the catalog")
            catalog = DataCatalog.from_config({names[0]: entries[names[0]]}, loader["credentials"])
            return catalog.load(names[0])
        except Exception as error:  # a missing table, an unreachable database, a bad URL
            raise Unavailable(
                f"{what} (`{dataset}`, Kedro environment '{env}') could not be read: {error}. {hint}"
            ) from error

    @property
    def health_urls(self) -> dict[str, str]:
        """Each configured service's health URL, named as ``make check-stack`` names it."""
        urls = {"bentoml": f"{self.service_url}/readyz"}
        registry = self.settings.registry_uri
        if registry.startswith(("http://", "https://")):
            urls["mlflow"] = f"{registry.rstrip('/')}/health"
        if self.settings.batch_api_url:
            urls["batch-api"] = f"{self.settings.batch_api_url.rstrip('/')}/health"
        if self.settings.airflow_url:
            urls["airflow"] = f"{self.settings.airflow_url.rstrip('/')}/api/v2/monitor/health"
        return urls

    def service_health(self) -> list[ServiceHealth]:
        """Each configured service up, slow or down with the reason: the probes of ``make check-stack``."""
        return service_health(self.health_urls)

    def batch_position(self) -> BatchPosition:
        """The settings' group at the batch API, from its ``/health`` (which moves no batch on)."""
        url = self.settings.batch_api_url
        if not url:
            raise Unavailable("No batch API is configured: set COVERTYPE_BATCH_API_URL to see its rotation.")
        try:
            response = httpx.get(f"{url.rstrip('/')}/health", timeout=CONTROL_SECONDS)
            response.raise_for_status()
            health = response.json()
            groups = {group["group_number"]: GroupState(**group) for group in health["groups"]}
            return BatchPosition(
                group_number=self.settings.group_number,
                state=groups.get(self.settings.group_number),
                batches=health["batches"],
                min_update_seconds=health["min_update_seconds"],
            )
        except httpx.HTTPError as error:
            raise Unavailable(
                f"The batch API at {url} did not say where the groups stand "
                f"({type(error).__name__}: {error})."
            ) from error
        except (ValueError, KeyError, TypeError) as error:
            raise Unavailable(
                f"The batch API at {url} does not describe its groups on /health ({error!r}): only the "
                "project's own batch API (`covertype-batch-api`) does."
            ) from error

    def reload_service(self) -> dict[str, Any]:
        """Ask the service to load the champion now: its answer (``reloaded``, ``message``, ``serving``).

        Raises ``Unavailable`` when it cannot be reached or failed to load (it keeps its model then).
        """
        try:
            response = httpx.post(f"{self.service_url}/reload", json={}, timeout=CONTROL_SECONDS)
        except httpx.HTTPError as error:
            raise self._service_unreachable(error) from error
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not response.is_success or not isinstance(answer, dict) or "message" not in answer:
            reason = answer.get("message") if isinstance(answer, dict) else None
            raise Unavailable(
                f"The service did not reload (HTTP {response.status_code}): {reason or response.text[:300]}"
            )
        return answer

    def trigger_dag_run(self) -> str:
        """Start a run of the project's DAG now through Airflow's REST API: the run's id."""
        from covertype.stack.airflow import DAG_ID  # noqa: PLC0415  (Airflow's Celery: see the imports)

        base = (self.settings.airflow_url or "").rstrip("/")
        if not base:
            raise Unavailable("No Airflow is configured: set COVERTYPE_AIRFLOW_URL to trigger the DAG.")
        login = {"username": self.settings.airflow_user, "password": self.settings.airflow_password}
        try:
            token = httpx.post(f"{base}/auth/token", json=login, timeout=CONTROL_SECONDS)
            if not token.is_success:
                raise Unavailable(
                    f"Airflow at {base} refused the login of user '{self.settings.airflow_user}' "
                    f"(HTTP {token.status_code}): check COVERTYPE_AIRFLOW_USER and "
                    "COVERTYPE_AIRFLOW_PASSWORD."
                )
            run = httpx.post(
                f"{base}/api/v2/dags/{DAG_ID}/dagRuns",
                json={"logical_date": None},
                headers={"Authorization": f"Bearer {token.json()['access_token']}"},
                timeout=CONTROL_SECONDS,
            )
        except httpx.HTTPError as error:
            raise Unavailable(
                f"Airflow at {base} is not reachable ({type(error).__name__}). Start it with `make airflow` "
                "or `docker compose up -d`, or set COVERTYPE_AIRFLOW_URL."
            ) from error
        if not run.is_success:
            raise Unavailable(
                f"Airflow did not start a run of DAG '{DAG_ID}' (HTTP {run.status_code}): {run.text[:300]}"
            )
        return run.json()["dag_run_id"]


def _artifact_files(client: MlflowClient, run_id: str, folder: str | None = None) -> Iterator[str]:
    for artifact in client.list_artifacts(run_id, folder):
        if artifact.is_dir:
            yield from _artifact_files(client, run_id, artifact.path)
        else:
            yield artifact.path


def example_batch_csv() -> bytes:
    """A batch CSV to start from: real rows of the shipped sample, ``EXAMPLE_ROWS_PER_CLASS`` of each
    cover type, with the header and Cover_Type (so the Batch page shows its accuracy too)."""
    sample = one_hot_to_api(load_covertype("sample"))
    rows = sample.groupby(TARGET_COLUMN, sort=True).head(EXAMPLE_ROWS_PER_CLASS)
    return rows.sort_values(TARGET_COLUMN, kind="stable").to_csv(index=False).encode()


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
