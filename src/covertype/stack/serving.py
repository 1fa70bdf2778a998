"""The serving side as native processes: the BentoML service and the Streamlit app.

``make serve``/``make ui`` run the same commands in the foreground; the tests, the benchmark and the
demo start them here, on free ports, with their logs and BentoML's home under a work folder.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from covertype.paths import PROJECT_ROOT
from covertype.stack.processes import ServiceProcess, free_port, http_ok

SERVICE_TARGET = "covertype.serving.service:CovertypeClassifier"
UI_APP = Path(__file__).resolve().parents[1] / "ui" / "app.py"
BIN = Path(sys.executable).parent


def bentoml_service(port: int, workdir: Path, env: Mapping[str, str] | None = None) -> ServiceProcess:
    """``bentoml serve`` of the champion on 127.0.0.1:``port``; ready when BentoML's /readyz says so.

    ``env`` may set MLFLOW_TRACKING_URI; the default registry is the project's ``mlflow.db``, so
    the service runs from the project root.
    """
    return ServiceProcess(
        name="bentoml-covertype",
        command=[str(BIN / "bentoml"), "serve", SERVICE_TARGET, "--host", "127.0.0.1", "--port", str(port)],
        ready=http_ok(f"http://127.0.0.1:{port}/readyz"),
        log_path=workdir / "bentoml.log",
        env={"BENTOML_HOME": str(workdir / "bentoml_home"), "BENTOML_DO_NOT_TRACK": "True", **(env or {})},
        cwd=PROJECT_ROOT,
        start_timeout=240,
    )


def streamlit_ui(
    port: int, workdir: Path, service_url: str, env: Mapping[str, str] | None = None
) -> ServiceProcess:
    """The Streamlit app on 127.0.0.1:``port``, talking to the service at ``service_url``."""
    command = [
        str(BIN / "streamlit"), "run", str(UI_APP),
        "--server.headless", "true", "--server.address", "127.0.0.1", "--server.port", str(port),
        "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    return ServiceProcess(
        name="streamlit-ui",
        command=command,
        ready=http_ok(f"http://127.0.0.1:{port}/_stcore/health"),
        log_path=workdir / "streamlit.log",
        env={"COVERTYPE_SERVICE_URL": service_url, **(env or {})},
        cwd=PROJECT_ROOT,
        start_timeout=120,
    )


@dataclass(frozen=True)
class ServingUrls:
    service: str
    ui: str


@contextmanager
def serve_champion_with_ui(workdir: Path, env: Mapping[str, str] | None = None) -> Iterator[ServingUrls]:
    """Start the champion's service, then the UI pointed at it; both stop when the block ends."""
    service_port, ui_port = free_port(), free_port()
    service_url = f"http://127.0.0.1:{service_port}"
    with ExitStack() as running:
        running.enter_context(bentoml_service(service_port, workdir, env))
        running.enter_context(streamlit_ui(ui_port, workdir, service_url, env))
        yield ServingUrls(service=service_url, ui=f"http://127.0.0.1:{ui_port}")
