"""``make bench-engine``: inference engines for the served families, at 1, 16, 100 and 1,000 records per call.

Each family the training searches (random_forest, extra_trees, lightgbm) is fitted as training fits
it, with parameters in the middle of its search space, on the shipped sample's training split (the
feature-engineering pipeline's hash split). Then, per family, the median microseconds of one call
from validated records to class probabilities (the records' conversion included, as the service
pays it) by:

- the model's own ``predict_proba`` (covertype.serving.probabilities: the route a version without a
  converted model serves through);
- ONNX Runtime on the graph registration stores (covertype.serving.conversion), on one intra-op
  thread (as served) and on ONNX Runtime's default pool (one spinning thread per CPU);
- Treelite's ``gtil.predict`` on the model imported by Treelite (forests: ``treelite.sklearn``;
  LightGBM: its booster's model string);
- LightGBM's own ``Booster.predict`` (LightGBM only).

Beside them: the conversion's time, its check on the whole test split (rows of another class, the
largest probability difference), the stored graph's size, a version's load time (gzipped graph ->
session), and one record's explanation (covertype.serving.explain), median of 20. Ratios are against
the model's own ``predict_proba`` in the same run. A benchmark, not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import treelite
from rich.console import Console
from rich.table import Table
from threadpoolctl import threadpool_limits

from covertype.benchmark_results import save_result, this_command
from covertype.data.convert import api_records_to_frame, one_hot_to_api
from covertype.data.schema import FEATURE_COLUMNS
from covertype.data.source import load_covertype
from covertype.model_package import CompressedModel
from covertype.pipelines.feature_engineering.nodes import deduplicate_rows, derive_features, split_by_row_hash
from covertype.pipelines.training.nodes import fit_model
from covertype.serving.champion import OwnPredictProba
from covertype.serving.conversion import LOOSEST_TOLERANCE, check, to_onnx
from covertype.serving.engine import EngineModel, compress
from covertype.serving.explain import TreeExplainer
from covertype.serving.records import records_to_features
from covertype.serving.schema import CovertypeRecord

#: Each family in the middle of its search space (conf/base/parameters_training.yml).
FAMILIES: dict[str, dict[str, Any]] = {
    "extra_trees": {"n_estimators": 80, "max_features": 0.45, "max_leaf_nodes": 3000},
    "random_forest": {"n_estimators": 80, "max_features": 0.25, "max_leaf_nodes": 2500},
    "lightgbm": {"n_estimators": 150, "num_leaves": 39, "learning_rate": 0.1, "min_child_samples": 20},
}
SIZES = (1, 16, 100, 1000)
OWN = "model predict_proba"
#: The route the service takes: ONNX Runtime on one intra-op thread (covertype.serving.engine).
SERVED = "ONNX Runtime (1 thread, served)"


def median_us(route: Callable[[list[CovertypeRecord]], object], records: list[CovertypeRecord], size: int,
              repeat: int) -> float:  # fmt: skip
    """Median µs of ``route`` on ``size`` records, each call on the next ``size`` of ``records``: the
    same rows again and again would stay in the CPU's caches (the demo's ExtraTrees answered one record
    2.5x faster on one row repeated than on rows in turn), which a service's traffic does not do."""
    slices = [records[start : start + size] for start in range(0, len(records) - size + 1, size)]
    route(slices[-1])
    seconds = []
    for call in range(repeat):
        batch = slices[call % len(slices)]
        started = time.perf_counter()
        route(batch)
        seconds.append(time.perf_counter() - started)
    return 1e6 * statistics.median(seconds)


def treelite_route(model: Any) -> Callable[[list[CovertypeRecord]], np.ndarray]:
    classifier = model[-1]
    if hasattr(classifier, "booster_"):
        imported = treelite.frontend.from_lightgbm(classifier.booster_)
    else:
        imported = treelite.sklearn.import_model(classifier)

    def probabilities(records: list[CovertypeRecord]) -> np.ndarray:
        predicted = treelite.gtil.predict(imported, records_to_features(records))
        return predicted.reshape(len(records), -1)

    return probabilities


def booster_route(model: Any) -> Callable[[list[CovertypeRecord]], np.ndarray]:
    booster = model[-1].booster_
    return lambda records: booster.predict(records_to_features(records))


def measure_family(
    family: str, train: pd.DataFrame, test: pd.DataFrame, repeat: int, console: Console
) -> dict[str, Any]:
    console.print(f"{family}: fitting on {len(train):,} rows ...")
    model = fit_model(train, family, FAMILIES[family], seed=42)
    records = [CovertypeRecord(**row) for row in test.loc[:, list(FEATURE_COLUMNS)].to_dict("records")]
    while len(records) < max(SIZES):
        records = records + records
    started = time.perf_counter()
    graph = to_onnx(model)
    conversion_s = time.perf_counter() - started
    stored = compress(graph)
    started = time.perf_counter()
    engine = EngineModel.from_stored(stored)
    load_s = time.perf_counter() - started
    checked = check(model, engine, test, LOOSEST_TOLERANCE)
    routes: dict[str, Callable[[list[CovertypeRecord]], np.ndarray]] = {
        OWN: OwnPredictProba(model).record_probabilities,
        SERVED: engine.record_probabilities,
        "ONNX Runtime (default pool)": EngineModel(graph, threads=0).record_probabilities,
        "Treelite gtil": treelite_route(model),
    }
    if family == "lightgbm":
        routes["LightGBM Booster"] = booster_route(model)
    reference = OwnPredictProba(model).record_probabilities(records[:1000])
    table: dict[str, dict[str, float]] = {}
    for name, route in routes.items():
        with threadpool_limits(1 if name == SERVED else None):
            table[name] = {str(size): median_us(route, records, size, repeat) for size in SIZES}
        answered = route(records[:1000])
        table[name]["max_abs_diff_1000"] = float(np.abs(answered - reference).max())
        table[name]["rows_of_another_class_1000"] = int((answered.argmax(1) != reference.argmax(1)).sum())
        console.print(
            f"  {name}: " + ", ".join(f"{size}: {table[name][str(size)]:,.0f} µs" for size in SIZES)
        )
    explainer = TreeExplainer(model)
    explain_ms = median_us(explainer.explain, records, 1, 20) / 1000
    return {
        "params": FAMILIES[family],
        "model_stored_mb": CompressedModel(model).size_bytes / 1e6,
        "graph_stored_mb": len(stored) / 1e6,
        "graph_mb": len(graph) / 1e6,
        "conversion_s": conversion_s,
        "version_load_s": load_s,
        "check_rows": checked.rows,
        "check_rows_of_another_class": checked.rows_of_another_class,
        "check_max_abs_diff": checked.max_abs_difference,
        "explain_one_record_ms": explain_ms,
        "explain_output": explainer.output,
        "microseconds_per_call": table,
    }


def split() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The shipped sample through feature engineering's own nodes: its training and test splits."""
    api = one_hot_to_api(load_covertype("sample"))
    rows = deduplicate_rows(api_records_to_frame(api.to_numpy().tolist()).assign(id=range(len(api))))
    return split_by_row_hash(derive_features(rows), 0.2)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="engine_bench", description=__doc__)
    parser.add_argument("--repeat", type=int, default=50, help="calls per size and route (median)")
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=list(FAMILIES))
    args = parser.parse_args(argv)
    console = Console(width=160)
    train, test = split()
    results = {family: measure_family(family, train, test, args.repeat, console) for family in args.families}
    for family, result in results.items():
        console.print(table_of(family, result))
    ratios = {
        f"{family}: ONNX Runtime / predict_proba at {size} records": (
            result["microseconds_per_call"][SERVED][str(size)]
            / result["microseconds_per_call"][OWN][str(size)]
        )
        for family, result in results.items()
        for size in SIZES
    }
    path = save_result(
        "engine",
        {"sizes": list(SIZES), "train_rows": len(train), "test_rows": len(test), "families": results},
        this_command(),
        ratios=ratios,
        notes="Median µs per call from validated records to probabilities; the check is registration's "
        "(the whole test split, tolerance 1e-5); explain_one_record_ms is exact TreeSHAP in-process.",
    )
    console.print(f"written to {path}")


def table_of(family: str, result: dict[str, Any]) -> Table:
    table = Table(
        title=f"{family}: µs per call (median); check on {result['check_rows']:,} test rows: "
        f"{result['check_rows_of_another_class']} of another class, "
        f"max |Δp| {result['check_max_abs_diff']:.2g}; "
        f"graph {result['graph_stored_mb']:.1f} MB stored, load {result['version_load_s']:.2f} s, "
        f"conversion {result['conversion_s']:.1f} s; one explanation {result['explain_one_record_ms']:.0f} ms"
    )
    table.add_column("route")
    for size in SIZES:
        table.add_column(f"{size} rec", justify="right")
    table.add_column("max |Δp| (1,000)", justify="right")
    own = result["microseconds_per_call"][OWN]
    for name, row in result["microseconds_per_call"].items():
        table.add_row(
            name,
            *(f"{row[str(size)]:,.0f} ({row[str(size)] / own[str(size)]:.2f}x)" for size in SIZES),
            f"{row['max_abs_diff_1000']:.1g}",
        )
    return table


if __name__ == "__main__":
    main()
