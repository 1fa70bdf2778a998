"""`make bento`: bentofile.yaml builds a bento that carries everything the service imports.

tests/compose containerizes the bento and has the container answer from a registry.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.conftest import PROJECT_ROOT, build_bento

SERVICE_MODULE = "covertype.serving.service"


@pytest.fixture(scope="module")
def bento(tmp_path_factory) -> Path:
    return build_bento(tmp_path_factory.mktemp("bentoml_home"))


def test_the_bento_serves_the_service_with_its_routes(bento):
    manifest = yaml.safe_load((bento / "bento.yaml").read_text())
    assert manifest["service"] == f"{SERVICE_MODULE}:CovertypeClassifier"
    routes = {route["name"]: route for route in manifest["schema"]["routes"]}
    assert set(routes) >= {"predict", "explain", "model_info", "reload"}
    # One route for every request size: the engine spreads a batch over the CPUs itself.
    assert not routes["predict"]["batchable"]
    for api in ("predict", "explain"):
        assert {"records", "model"} <= set(routes[api]["input"]["properties"])


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_the_service_imports_in_the_bentos_own_environment_alone(bento, tmp_path):
    """The bento's packages (uv.lock's runtime group, as `make bento` exports them) in a new venv, from
    uv's cache (nothing downloads), and the bento's src/ as the only project code: importing the service
    fails if the bento lacks a module or package it imports."""
    venv = tmp_path / "bento-venv"
    subprocess.run(
        [str(Path(sys.executable).with_name("uv")), "sync", "--quiet", "--frozen", "--offline",
         "--no-default-groups", "--no-install-project"],
        cwd=PROJECT_ROOT, env={**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv)}, check=True,
    )  # fmt: skip
    imported = subprocess.run(
        [str(venv / "bin/python"), "-c", f"import {SERVICE_MODULE}"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(bento / "src")},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert imported.returncode == 0, imported.stderr[-3000:]


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_the_bentos_packages_are_pinned_at_the_locks_versions(bento):
    requirements = (bento / "env/python/requirements.txt").read_text()
    lock = tomllib.loads((PROJECT_ROOT / "uv.lock").read_text())
    locked: dict[str, set[str]] = {}  # a package may be locked at one version per platform
    for package in lock["package"]:
        locked.setdefault(_canonical(package["name"]), set()).add(package.get("version"))
    pinned = re.findall(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)", requirements, re.MULTILINE)
    assert {_canonical(name) for name, _ in pinned} >= {
        "bentoml",
        "mlflow",
        "scikit-learn",
        "onnxruntime",
        "shap",
    }
    for name, version in pinned:
        assert version in locked[_canonical(name)], f"{name}=={version} is not a version uv.lock has"


def test_the_bento_image_starts_from_the_project_images_base():
    dockerfile_base = re.search(r"^FROM (\S+)", (PROJECT_ROOT / "Dockerfile").read_text(), re.MULTILINE)[1]
    bentofile = yaml.safe_load((PROJECT_ROOT / "bentofile.yaml").read_text())
    assert bentofile["docker"]["base_image"] == dockerfile_base
