"""`make demo`, the README's main command: every batch collected, a champion trained and served."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from tests.conftest import RECORD

pytestmark = pytest.mark.integration

DEMO = Path(sys.executable).parent / "covertype-demo"


class ConsoleReader:
    """The demo's console, read line by line on a thread, so the test can wait for a line with a timeout."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        for line in process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    def wait_for(self, text: str, timeout: float) -> None:
        with self._changed:
            found = self._changed.wait_for(lambda: any(text in line for line in self.lines), timeout)
        assert found, "\n".join(self.lines[-40:])

    def text_so_far(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def text_at_exit(self) -> str:
        self._thread.join(timeout=30)
        return self.text_so_far()


def test_the_demo_collects_every_batch_trains_a_champion_serves_it_and_stops_cleanly(tmp_path):
    env = {
        **os.environ,
        "COVERTYPE_DATA_DIR": str(tmp_path / "data"),
        "COVERTYPE_RAW_STORE_URL": f"sqlite:///{tmp_path}/raw.db",
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db",
        "COLUMNS": "160",  # one table row per line
    }
    demo = subprocess.Popen(
        [str(DEMO)],
        cwd=tmp_path,  # MLflow's embedded store puts the models (~100 MB each) under the working folder
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    console = ConsoleReader(demo)
    try:
        console.wait_for("Press Ctrl+C", timeout=1200)
        service = re.search(r"BentoML service:\s+(\S+)", console.text_so_far()).group(1)
        ui = re.search(r"Streamlit app:\s+(\S+)", console.text_so_far()).group(1)
        answer = httpx.post(f"{service}/predict", json={"records": RECORD}, timeout=30)
        assert answer.status_code == 200 and 1 <= answer.json()[0]["cover_type"] <= 7
        assert httpx.post(f"{service}/model_info", json={}, timeout=30).json()["alias"] == "champion"
        assert httpx.get(ui, timeout=30).status_code == 200
    finally:
        os.killpg(demo.pid, signal.SIGTERM)
        demo.wait(timeout=120)

    output = console.text_at_exit()
    assert demo.returncode == 0, output[-3000:]
    assert "Stopped the service and the app." in output
    assert "10 cycles in" in output and "the raw store holds 15,000 rows" in output
    for batch in range(1, 11):
        assert re.search(rf"│\s+{batch} │\s+1,500 │\s+0 │\s+1,500 │", output), f"batch {batch}"
    assert re.search(r"Champion: models:/covertype@champion =\s+version \d+", output), output[-3000:]
    # Kedro's and MLflow's logs and warnings went to the log file, not between the report's lines.
    assert "WARNING" not in output and "mlflow_hook" not in output
    assert any((tmp_path / "mlruns").rglob("model.pkl")), "the models stay in the test's folder"
    log = (tmp_path / "data" / "08_reporting" / "demo.log").read_text()
    assert "kedro" in log and "has started" in log
    for port_url in (service, ui):
        with pytest.raises(httpx.ConnectError):
            httpx.get(port_url, timeout=5)
