"""The docs site builds with --strict, and its reference pages say what the code and conf/ say."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from covertype.benchmark_results import save_result
from covertype.config import Settings
from covertype.paths import PROJECT_ROOT


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`make docs`'s strict build, into a folder of the test's own."""
    site_dir = tmp_path_factory.mktemp("site")
    environment = {
        **os.environ,
        "DISABLE_MKDOCS_2_WARNING": "true",
        "NO_MKDOCS_2_WARNING": "1",
        "PYTHONWARNINGS": "ignore::DeprecationWarning",
    }
    for name in Settings.variables():  # the reference shows the defaults, whatever the shell sets
        environment.pop(name, None)
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site_dir)],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert build.returncode == 0, f"mkdocs build --strict failed:\n{build.stderr[-6000:]}"
    return site_dir


def page(site: Path, path: str) -> str:
    return (site / path / "index.html").read_text()


def test_the_home_page_carries_the_readmes_architecture_diagram(site):
    home = (site / "index.html").read_text()
    assert '<pre class="mermaid">' in home
    assert "feature_engineering" in home


def test_every_setting_is_documented_with_its_variable_and_default(site):
    settings = page(site, "reference/settings")
    for field in Settings.model_fields.values():
        assert f"<code>{field.validation_alias}</code>" in settings
    assert "<code>sqlite:///mlflow.db</code>" in settings


def test_the_catalog_page_lists_each_environments_datasets(site):
    catalog = page(site, "reference/catalog")
    assert "<code>covertype_batch</code>" in catalog
    assert "s3://${oc.env:FEATURES_BUCKET,covertype-features}/features_train.parquet" in catalog


def test_the_http_apis_come_from_the_apps_openapi_documents(site):
    apis = page(site, "reference/http-apis")
    assert "POST /predict" in apis
    assert "GET /data" in apis
    assert (site / "reference" / "openapi" / "service.json").is_file()


def test_the_commands_page_shows_each_entry_points_help(site):
    commands = page(site, "reference/cli")
    assert "usage: covertype-batch-api" in commands
    assert "make docs" in commands


def render_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("render", PROJECT_ROOT / "docs" / "_generate" / "render.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_saved_benchmark_result_is_rendered_with_its_ratios_command_and_machine(tmp_path):
    save_result(
        "serving",
        {"p50 ms": {"ours": 2.5, "mlflow": 9.0}, "requests": 1000},
        "make bench-serving",
        ratios={"ours / mlflow p50": 0.2778},
        results_dir=tmp_path,
    )

    text = render_module().benchmarks_page(tmp_path)

    assert "## serving" in text
    assert "`make bench-serving`" in text
    assert f"{os.cpu_count()} cores, load average" in text
    assert "| ours / mlflow p50 | 0.2778 |" in text
    assert "| requests | 1,000 |" in text
    assert "**p50 ms**\n\n| | value |\n|---|---:|\n| ours | 2.5 |\n| mlflow | 9 |" in text
