"""The settings of the processes outside a Kedro session: the service, the UI, the demo, the batch API.

``load_settings()`` reads them from the environment once, at a process's entry point, and the result
is passed to whoever needs it; nothing else reads these variables. Each field's alias is the
variable's name. Kedro's own configuration stays in ``conf/`` (addresses and secrets through
``oc.env`` and credentials), and the few values both sides share reach ``conf/`` through the
``settings`` resolver (see ``covertype.settings``), so that training and serving cannot disagree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from covertype.paths import PROJECT_ROOT


class Settings(BaseSettings):
    """Every variable the project's own processes read; the defaults are the embedded local setup."""

    # An empty variable counts as unset (a container's `ENV NAME=`), so the default applies.
    model_config = SettingsConfigDict(
        frozen=True, populate_by_name=True, extra="ignore", env_ignore_empty=True
    )

    # The MLflow registry, and the names training and serving agree on.
    tracking_uri: str = Field("sqlite:///mlflow.db", validation_alias="MLFLOW_TRACKING_URI")
    registry_uri_override: str | None = Field(
        None, validation_alias="MLFLOW_REGISTRY_URI", description="the registry when not the tracking store"
    )
    model_name: str = Field("covertype", validation_alias="COVERTYPE_MODEL_NAME")
    champion_alias: str = Field("champion", validation_alias="COVERTYPE_CHAMPION_ALIAS")
    challenger_alias: str = Field("challenger", validation_alias="COVERTYPE_CHALLENGER_ALIAS")

    # MLflow's client retries, under MLflow's own variable names: its defaults (7 retries, backoff 2,
    # 120 s per request) keep a caller waiting about four minutes before it sees a store is down. A
    # Kedro session's tracked run uses these (covertype.hooks); the processes the stacks start get them.
    mlflow_http_max_retries: int = Field(2, ge=0, validation_alias="MLFLOW_HTTP_REQUEST_MAX_RETRIES")
    mlflow_http_backoff_factor: int = Field(1, ge=0, validation_alias="MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR")
    mlflow_http_timeout_seconds: int = Field(30, ge=1, validation_alias="MLFLOW_HTTP_REQUEST_TIMEOUT")

    # Service addresses and the service's behaviour.
    service_url: str = Field("http://127.0.0.1:3000", validation_alias="COVERTYPE_SERVICE_URL")
    batch_api_url: str | None = Field(
        None, validation_alias="COVERTYPE_BATCH_API_URL", description="None: `make airflow` starts one"
    )
    group_number: int = Field(
        1, validation_alias="COVERTYPE_GROUP_NUMBER", description="the group we collect as at the batch API"
    )
    airflow_url: str | None = Field(
        None, validation_alias="COVERTYPE_AIRFLOW_URL", description="None: the UI shows no Airflow"
    )
    airflow_user: str = Field("admin", validation_alias="COVERTYPE_AIRFLOW_USER")
    airflow_password: str = Field("", validation_alias="COVERTYPE_AIRFLOW_PASSWORD", repr=False)
    champion_poll_seconds: float = Field(
        30.0, validation_alias="COVERTYPE_CHAMPION_POLL_SECONDS", description="0: never check the alias"
    )
    # The service's request limits: a larger body is refused before it is read (413), more records in
    # one call by validation (400); both answers name the limit.
    max_request_bytes: int = Field(8_000_000, ge=1, validation_alias="COVERTYPE_MAX_REQUEST_BYTES")
    max_records_per_request: int = Field(10_000, ge=1, validation_alias="COVERTYPE_MAX_RECORDS_PER_REQUEST")
    # Versions asked for by alias or number (`predict`'s `model`) stay loaded, least recently used out.
    version_cache_size: int = Field(
        2, ge=1, validation_alias="COVERTYPE_VERSION_CACHE_SIZE", description="besides the champion"
    )
    # The last champion the service loaded, kept here: served (and said so in /model_info) when the service
    # starts while the registry is unreachable. None: no cache; /predict answers 503 naming the registry.
    model_cache_dir: Path | None = Field(
        None, validation_alias="COVERTYPE_MODEL_CACHE_DIR", description="None: no local model cache"
    )
    kedro_env: str = Field("local", validation_alias="KEDRO_ENV")
    data_dir: Path | None = Field(
        None, validation_alias="COVERTYPE_DATA_DIR", description="None: the project's data folder"
    )
    # The prediction log (covertype.serving.prediction_log): the service writes every answered record
    # there, the monitoring pipeline reads it (catalog `prediction_log`).
    prediction_log: bool = Field(True, validation_alias="COVERTYPE_PREDICTION_LOG")
    prediction_log_dir: Path | None = Field(
        None,
        validation_alias="COVERTYPE_PREDICTION_LOG_DIR",
        description="None: 07_model_output/predictions in the data folder",
    )
    prediction_log_max_mb: float = Field(50.0, gt=0, validation_alias="COVERTYPE_PREDICTION_LOG_MAX_MB")
    prediction_log_backups: int = Field(10, ge=1, validation_alias="COVERTYPE_PREDICTION_LOG_BACKUPS")
    prediction_log_queue_mb: float = Field(
        64.0,
        gt=0,
        validation_alias="COVERTYPE_PREDICTION_LOG_QUEUE_MB",
        description="pending bodies, then drops",
    )
    prediction_log_flush_seconds: float = Field(
        0.5,
        gt=0,
        validation_alias="COVERTYPE_PREDICTION_LOG_FLUSH_SECONDS",
        description="how often the writer wakes",
    )

    # Our batch API (`covertype-batch-api`): its command-line options default to these.
    batch_rotation_seconds: float = Field(300.0, validation_alias="COVERTYPE_API_MIN_UPDATE_SECONDS")
    api_host: str = Field("127.0.0.1", validation_alias="COVERTYPE_API_HOST")
    api_port: int = Field(8000, validation_alias="COVERTYPE_API_PORT")
    api_data: Path | None = Field(
        None, validation_alias="COVERTYPE_API_DATA", description="None: the rows of COVERTYPE_API_SOURCE"
    )
    api_source: Literal["sample", "full", "auto", "synthetic"] = Field(
        "sample", validation_alias="COVERTYPE_API_SOURCE"
    )
    api_rows: int = Field(
        581_012, ge=10, validation_alias="COVERTYPE_API_ROWS", description="rows of the synthetic source"
    )
    api_state: Path | None = Field(
        None, validation_alias="COVERTYPE_API_STATE", description="None: data/batch_api/state.sqlite3"
    )
    api_rows_per_request: str = Field("course", validation_alias="COVERTYPE_API_ROWS_PER_REQUEST")
    api_seed: int | None = Field(
        None, validation_alias="COVERTYPE_API_SEED", description="None: fresh draws on every start"
    )

    @property
    def registry_uri(self) -> str:
        """Where the models are: MLFLOW_REGISTRY_URI when set, else the tracking store (MLflow's rule)."""
        return self.registry_uri_override or self.tracking_uri

    @property
    def prediction_log_path(self) -> str:
        """The prediction log's folder, absolute (the service and Kedro may start in other folders)."""
        folder = (
            self.prediction_log_dir
            or (self.data_dir or PROJECT_ROOT / "data") / "07_model_output" / "predictions"
        )
        return str(folder.resolve())

    def mlflow_http_environment(self) -> dict[str, str]:
        """MLflow's retry variables with these settings' values, for a session or a process to use."""
        return self.environment(
            mlflow_http_max_retries=self.mlflow_http_max_retries,
            mlflow_http_backoff_factor=self.mlflow_http_backoff_factor,
            mlflow_http_timeout_seconds=self.mlflow_http_timeout_seconds,
        )

    @classmethod
    def environment(cls, **values: object) -> dict[str, str]:
        """The variables that give these fields (by field name) these values in another process."""
        fields = cls.model_fields
        return {fields[name].validation_alias: _as_variable(value) for name, value in values.items()}

    @classmethod
    def variables(cls) -> set[str]:
        """The names of every variable the settings read."""
        return {field.validation_alias for field in cls.model_fields.values()}


def _as_variable(value: object) -> str:
    return ("1" if value else "0") if isinstance(value, bool) else str(value)


def load_settings() -> Settings:
    """The settings of this process, read from its environment."""
    return Settings()
