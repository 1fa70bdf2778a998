"""The notebooks in notebooks/: committed clean, and run end to end on the stores of a trained project."""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import mlflow
import nbformat
import pytest
import sqlalchemy as sa
from jupyter_client import KernelManager
from nbclient import NotebookClient

from covertype.data.schema import NUMERIC_COLUMNS
from covertype.features import MODEL_FEATURES
from tests.conftest import PROJECT_ROOT, TrainedProject

NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
#: What a notebook must not do: read a store past the catalog, or point MLflow process-wide.
BYPASSING_THE_CATALOG = ("pd.read_", "sqlite:", "s3://", "data/0", "set_tracking_uri", "set_registry_uri")


def _code_cells(path: Path) -> list[nbformat.NotebookNode]:
    return [cell for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code"]


def _venv_kernel() -> KernelManager:
    """The ``python3`` kernel: jupyter_client starts it with this very interpreter (the project's .venv)."""
    manager = KernelManager(kernel_name="python3")
    assert manager.format_kernel_cmd()[0] == sys.executable, manager.kernel_spec.resource_dir
    return manager


def _execute(name: str, project: TrainedProject, capsys: pytest.CaptureFixture[str]) -> str:
    """Run a notebook as Jupyter does (in its own folder) on the project's stores: its last line."""
    notebook = nbformat.read(NOTEBOOKS_DIR / name, as_version=4)
    client = NotebookClient(
        notebook, km=_venv_kernel(), timeout=600, resources={"metadata": {"path": str(NOTEBOOKS_DIR)}}
    )
    started = time.perf_counter()
    # The kernel manager is ours, so nbclient stops the kernel only when asked to (cleanup_kc).
    client.execute(env={**os.environ, **project.env}, cleanup_kc=True)
    with capsys.disabled():
        print(f"\n{name} executed in {time.perf_counter() - started:.1f} s")
    last_cell = [cell for cell in notebook.cells if cell.cell_type == "code"][-1]
    return "".join(output.get("text", "") for output in last_cell.outputs).strip()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebooks_are_committed_without_outputs(path: Path) -> None:
    cells = _code_cells(path)
    assert [(cell.execution_count, cell.outputs) for cell in cells] == [(None, [])] * len(cells)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebooks_load_kedro_and_read_only_through_the_catalog(path: Path) -> None:
    sources = [cell.source for cell in _code_cells(path)]
    assert sources[0].endswith("\n%load_ext kedro.ipython")
    assert [marker for marker in BYPASSING_THE_CATALOG if any(marker in source for source in sources)] == []


def test_both_notebooks_are_there() -> None:
    assert [path.name for path in NOTEBOOKS] == ["01_collected_data.ipynb", "02_models.ipynb"]


def test_collected_data_notebook_reports_the_stored_batches_and_the_quarantine(
    trained_project: TrainedProject, capsys: pytest.CaptureFixture[str]
) -> None:
    summary = _execute("01_collected_data.ipynb", trained_project, capsys)

    engine = sa.create_engine(trained_project.env["COVERTYPE_RAW_STORE_URL"])
    with engine.connect() as connection:
        batches = connection.execute(
            sa.text("SELECT batch_number, COUNT(*) FROM raw_covertype GROUP BY batch_number ORDER BY 1")
        )
        rows_per_batch = {batch: rows for batch, rows in batches}
        quarantined = connection.execute(sa.text("SELECT COUNT(*) FROM quarantined_covertype")).scalar_one()
    engine.dispose()
    assert len(rows_per_batch) == 2
    pattern = (
        re.escape(f"rows per batch: {rows_per_batch}; quarantined: {quarantined}; ")
        + rf"largest drift: ({'|'.join(NUMERIC_COLUMNS)}) in batch 2 \(KS 0\.\d{{3}}\)"
    )
    assert re.fullmatch(pattern, summary), summary


def test_models_notebook_names_the_registry_champion_and_its_top_feature(
    trained_project: TrainedProject, capsys: pytest.CaptureFixture[str]
) -> None:
    summary = _execute("02_models.ipynb", trained_project, capsys)

    client = mlflow.MlflowClient(tracking_uri=trained_project.env["MLFLOW_TRACKING_URI"])
    champion = client.get_model_version_by_alias("covertype", "champion")
    versions = client.search_model_versions("name = 'covertype'")
    pattern = re.escape(
        f"champion: version {champion.version} of {len(versions)} ({', '.join(sorted(champion.aliases))}); "
        "most important feature: "
    )
    assert re.fullmatch(pattern + f"({'|'.join(MODEL_FEATURES)})", summary), summary
