"""`make bento`: bentofile.yaml builds a bento that carries the service's code and pinned packages."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import PROJECT_ROOT

BENTOML = Path(sys.executable).parent / "bentoml"


def test_bentofile_builds_a_bento_with_the_service_and_its_packages(tmp_path):
    env = {**os.environ, "BENTOML_HOME": str(tmp_path), "BENTOML_DO_NOT_TRACK": "True"}
    build = subprocess.run(
        [str(BENTOML), "build", "-f", "bentofile.yaml", "src", "-o", "tag"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    # The version folder; `latest` is a file naming it (a version may start with "l" too).
    (bento,) = [path for path in (tmp_path / "bentos" / "covertype").iterdir() if path.name != "latest"]
    manifest = yaml.safe_load((bento / "bento.yaml").read_text())
    assert manifest["service"] == "covertype.serving.service:CovertypeClassifier"
    routes = {route["name"]: route for route in manifest["schema"]["routes"]}
    assert set(routes) >= {"predict", "explain", "model_info", "reload"}
    # One route for every request size: the engine spreads a batch over the CPUs itself.
    assert not routes["predict"]["batchable"]
    for api in ("predict", "explain"):
        assert {"records", "model"} <= set(routes[api]["input"]["properties"])
    for module in ("service.py", "engine.py", "explain.py", "versions.py"):
        assert (bento / "src/covertype/serving" / module).exists()
    requirements = (bento / "env/python/requirements.txt").read_text()
    assert "mlflow==" in requirements and "scikit-learn==" in requirements
    assert "onnxruntime==" in requirements and "shap==" in requirements
