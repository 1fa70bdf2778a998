"""The app's first page load: the Predict page it opens on does not wait for MLflow, Kedro or Airflow.

Those libraries took about two thirds of the first load's imports; the pages that use them (Model,
Data, Control's actions) import them when they run.
"""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("mlflow", "kedro", "airflow", "celery")


def test_the_predict_pages_sources_import_neither_mlflow_nor_kedro_nor_airflow():
    probe = (
        "import sys\n"
        "from covertype.config import load_settings\n"
        "from covertype.ui.sources import Sources\n"
        "from covertype.ui.version_picker import version_picker\n"
        "Sources(load_settings())\n"
        f"print(','.join(name for name in {HEAVY!r} if name in sys.modules))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == ""
