"""Benchmark results are saved as data: figures with the command, commit, date and machine behind them."""

from __future__ import annotations

import json
import os

import pytest

from covertype.benchmark_results import load_results, save_result


def test_a_saved_result_records_its_figures_and_where_they_came_from(tmp_path):
    path = save_result(
        "serving",
        {"p50_ms": {"ours": 2.5, "mlflow": 9.0}, "requests": 1000},
        "make bench-serving",
        ratios={"ours / mlflow p50": 0.28},
        results_dir=tmp_path,
    )

    result = json.loads(path.read_text())
    assert path == tmp_path / "serving.json"
    assert result["figures"] == {"p50_ms": {"ours": 2.5, "mlflow": 9.0}, "requests": 1000}
    assert result["ratios"] == {"ours / mlflow p50": 0.28}
    assert result["command"] == "make bench-serving"
    assert len(result["commit"].removesuffix("-dirty")) == 40
    assert result["date"].endswith("+00:00")
    assert result["machine"]["cores"] == os.cpu_count()
    assert len(result["machine"]["load_average"]) == 3


def test_saving_again_replaces_the_latest_result_and_leaves_no_temporary_file(tmp_path):
    save_result("ingest", {"speedup": 3.0}, "make bench-ingest", results_dir=tmp_path)
    save_result("ingest", {"speedup": 3.4}, "make bench-ingest", results_dir=tmp_path)

    assert [path.name for path in tmp_path.iterdir()] == ["ingest.json"]
    assert load_results(tmp_path)["ingest"]["figures"] == {"speedup": 3.4}


@pytest.mark.parametrize("name", ["", "../escape", ".hidden"])
def test_a_name_that_is_not_a_plain_file_stem_is_refused(tmp_path, name):
    with pytest.raises(ValueError, match="plain file stem"):
        save_result(name, {}, "make bench", results_dir=tmp_path)
