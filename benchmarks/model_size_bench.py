"""``make bench-models``: size on disk, quality and fit time of candidate model configurations.

On the hash split of the shipped sample (as ``make demo`` produces it), each configuration is fitted
on the training split, or on the training split resampled with integer jitter to ``--rows`` rows
(SYNTHETIC rows, as in ``cycle_benchmark.py``), and scored on the real test rows, never seen in
training. Its size is the plain cloudpickle and what the registry stores (``CompressedModel``).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import cloudpickle
import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table
from sklearn.metrics import accuracy_score, f1_score
from threadpoolctl import threadpool_limits

from benchmarks.cycle_benchmark import JITTER
from covertype.benchmark_results import save_result, this_command
from covertype.data.convert import api_records_to_frame, one_hot_to_api
from covertype.data.schema import FEATURE_COLUMNS, TARGET_COLUMN
from covertype.data.source import load_covertype
from covertype.model_package import MEGABYTE, CompressedModel
from covertype.pipelines.feature_engineering.nodes import deduplicate_rows, derive_features, split_by_row_hash
from covertype.pipelines.training.nodes import build_classifier, build_model

#: name -> (family, hyperparameters): the configurations of the README's table.
CONFIGS: dict[str, tuple[str, dict[str, Any]]] = {
    "et150_full": ("extra_trees", {"n_estimators": 150, "max_features": 0.5}),
    "et100_full": ("extra_trees", {"n_estimators": 100, "max_features": 0.5}),
    "et100_leaves3000": ("extra_trees", {"n_estimators": 100, "max_features": 0.5, "max_leaf_nodes": 3000}),
    "et100_leaves2000": ("extra_trees", {"n_estimators": 100, "max_features": 0.5, "max_leaf_nodes": 2000}),
    "lgbm200_leaves31": ("lightgbm", {"n_estimators": 200, "num_leaves": 31, "learning_rate": 0.1}),
    "lgbm300_leaves63": ("lightgbm", {"n_estimators": 300, "num_leaves": 63, "learning_rate": 0.1}),
}


def hash_split(test_fraction: float = 0.2) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The sample's feature tables, split as feature engineering splits them."""
    api = one_hot_to_api(load_covertype("sample"))
    rows = deduplicate_rows(api_records_to_frame(api.to_numpy().tolist()).assign(id=range(len(api))))
    return split_by_row_hash(derive_features(rows), test_fraction)


def resample(train: pd.DataFrame, rows: int, seed: int = 0) -> pd.DataFrame:
    """SYNTHETIC training rows: the real training split drawn with replacement, integers jittered."""
    generator = np.random.default_rng(seed)
    resampled = train.sample(n=rows, replace=True, random_state=seed).reset_index(drop=True)
    for column, spread in JITTER.items():
        jittered = resampled[column].astype("int64") + generator.integers(-spread, spread + 1, size=rows)
        resampled[column] = jittered.clip(lower=0).astype("Int64")
    return resampled


def measure(name: str, train: pd.DataFrame, test: pd.DataFrame) -> dict[str, Any]:
    family, params = CONFIGS[name]
    started = time.perf_counter()
    with threadpool_limits(limits=1, user_api="openmp"):
        model = build_model(build_classifier(family, params, seed=42)).fit(
            train.loc[:, list(FEATURE_COLUMNS)], train[TARGET_COLUMN]
        )
    fit_seconds = time.perf_counter() - started
    predicted = model.predict(test.loc[:, list(FEATURE_COLUMNS)])
    return {
        "config": name,
        "rows": len(train),
        "accuracy": accuracy_score(test[TARGET_COLUMN], predicted),
        "macro_f1": f1_score(test[TARGET_COLUMN], predicted, average="macro"),
        "raw_mb": len(cloudpickle.dumps(model)) / MEGABYTE,
        "stored_mb": CompressedModel(model).size_bytes / MEGABYTE,
        "fit_seconds": fit_seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=0, help="resample the training split to this many rows")
    parser.add_argument(
        "--configs", default=",".join(CONFIGS), help=f"comma-separated, of {', '.join(CONFIGS)}"
    )
    args = parser.parse_args()
    train, test = hash_split()
    if args.rows > len(train):
        train = resample(train, args.rows)
    table = Table(title=f"{len(train):,} training rows, {len(test):,} real test rows")
    for column in ("config", "rows", "accuracy", "macro-F1", "raw MB", "stored MB", "fit s"):
        table.add_column(column)
    console = Console()
    results = {}
    for name in args.configs.split(","):
        result = measure(name, train, test)
        results[name] = result
        console.print(result)
        table.add_row(
            name,
            f"{result['rows']:,}",
            f"{result['accuracy']:.4f}",
            f"{result['macro_f1']:.4f}",
            f"{result['raw_mb']:.1f}",
            f"{result['stored_mb']:.1f}",
            f"{result['fit_seconds']:.0f}",
        )
    console.print(table)
    saved = save_result(
        "models" if args.rows <= 0 else f"models-{args.rows}",
        {"training rows": len(train), "test rows (real)": len(test), "configs": results},
        this_command(),
        ratios={f"{name}: raw / stored size": r["raw_mb"] / r["stored_mb"] for name, r in results.items()},
    )
    console.print(f"Saved to {saved}")


if __name__ == "__main__":
    main()
