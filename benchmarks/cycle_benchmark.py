"""``make bench``: model quality against a course-style baseline, and one cycle's time as data grows.

For each size (1.5k, 15k and a resampled 150k rows), a real batch API serves the rows in 10 whole
batches. Batches 1..9 are collected by the ingestion pipeline, then one cycle is timed: ingestion
of batch 10, feature engineering and training with the default search budget, each a Kedro session
in the default (embedded) environment in a temporary folder. On the same hash split, in the same
process, a course-style baseline is fitted: RandomForest with default settings on the 55-column
one-hot form. Times are printed as ratios to the baseline's fit time, so that they can be compared
across machines; quality as the champion's gain over the baseline.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from kedro.framework.session import KedroSession
from rich.console import Console
from rich.table import Table
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split

from covertype.benchmark_results import save_result, this_command
from covertype.data.convert import api_to_one_hot, one_hot_to_api
from covertype.data.schema import API_COLUMNS, FEATURE_COLUMNS, TARGET_COLUMN
from covertype.data.source import load_covertype
from covertype.demo import bootstrap_quietly
from covertype.stack.processes import free_port
from covertype.stack.services import batch_api

PROJECT_ROOT = Path(__file__).resolve().parents[1]
BATCHES = 10
#: Integer jitter added to resampled rows so that they stay distinct after deduplication.
JITTER = {"Elevation": 15, "Horizontal_Distance_To_Roadways": 30, "Horizontal_Distance_To_Fire_Points": 30}


def sample_rows(rows: int, seed: int) -> pd.DataFrame:
    """The shipped sample in the API's 13-string form: cut to ``rows``, or resampled with jitter beyond it."""
    sample = one_hot_to_api(load_covertype("sample"))
    if rows <= len(sample):
        return sample.sample(n=rows, random_state=seed).reset_index(drop=True)
    generator = np.random.default_rng(seed)
    resampled = sample.sample(n=rows, replace=True, random_state=seed).reset_index(drop=True)
    for column, spread in JITTER.items():
        values = resampled[column].astype(int) + generator.integers(-spread, spread + 1, size=rows)
        resampled[column] = values.clip(lower=0).astype(str)
    return resampled


def run(pipelines: list[str], params: dict[str, object]) -> float:
    """One ``kedro run --pipeline ...`` as a fresh session; its wall time in seconds."""
    started = time.perf_counter()
    with KedroSession.create(project_path=PROJECT_ROOT, env="local", runtime_params=params) as session:
        session.run(pipeline_names=pipelines)
    return time.perf_counter() - started


def baseline_scores(train: pd.DataFrame, test: pd.DataFrame) -> tuple[dict[str, float], float]:
    """Course-style RandomForest (default settings, all cores) on the one-hot columns; scores and fit time."""
    train_x, test_x = (api_to_one_hot(frame.loc[:, list(API_COLUMNS)]) for frame in (train, test))
    model = RandomForestClassifier(n_jobs=-1, random_state=0)
    started = time.perf_counter()
    model.fit(train_x.drop(columns=TARGET_COLUMN), train_x[TARGET_COLUMN])
    seconds = time.perf_counter() - started
    predicted = model.predict(test_x.drop(columns=TARGET_COLUMN))
    return {
        "accuracy": accuracy_score(test_x[TARGET_COLUMN], predicted),
        "macro_f1": f1_score(test_x[TARGET_COLUMN], predicted, average="macro"),
    }, seconds


def champion_scores(test: pd.DataFrame) -> dict[str, float]:
    champion = mlflow.sklearn.load_model("models:/covertype@champion")
    predicted = champion.predict(test.loc[:, list(FEATURE_COLUMNS)])
    return {
        "accuracy": accuracy_score(test[TARGET_COLUMN], predicted),
        "macro_f1": f1_score(test[TARGET_COLUMN], predicted, average="macro"),
    }


def measure(rows: int, seed: int) -> dict[str, object]:
    """Collect 9 batches, time the 10th cycle, score the champion and the baseline on its test split."""
    with tempfile.TemporaryDirectory(prefix=f"covertype-bench-{rows}-") as folder:
        workdir = Path(folder)
        data = workdir / "rows.csv"
        sample_rows(rows, seed).to_csv(data, index=False)
        os.environ.update(
            {
                "COVERTYPE_API_DATA": str(data),
                "COVERTYPE_RAW_STORE_URL": f"sqlite:///{workdir}/raw.db",
                "MLFLOW_TRACKING_URI": f"sqlite:///{workdir}/mlflow.db",
                "COVERTYPE_DATA_DIR": str(workdir / "data"),
            }
        )
        os.chdir(workdir)
        port = free_port()
        with batch_api(port, workdir, min_update_seconds=0.5, rows_per_request="all", seed=seed):
            params = {"batch_api_url": f"http://127.0.0.1:{port}"}
            for _ in range(BATCHES - 1):
                run(["ingestion"], params)
                time.sleep(0.5)
            times = {
                "ingestion": run(["ingestion"], params),
                "features": run(["feature_engineering"], params),
                "training": run(["training"], params),
            }
        train = pd.read_parquet(workdir / "data/04_feature/features_train.parquet")
        test = pd.read_parquet(workdir / "data/04_feature/features_test.parquet")
        baseline, baseline_seconds = baseline_scores(train, test)
        return {
            "rows": len(train) + len(test),
            "times": times,
            "baseline_seconds": baseline_seconds,
            "baseline": baseline,
            "champion": champion_scores(test),
        }


def stratified_reference(seed: int) -> dict[str, float]:
    """The issue's reference point: the baseline on a plain 80/20 stratified split of the sample."""
    one_hot = load_covertype("sample")
    train, test = train_test_split(one_hot, test_size=0.2, stratify=one_hot[TARGET_COLUMN], random_state=seed)
    model = RandomForestClassifier(n_jobs=-1, random_state=0)
    model.fit(train.drop(columns=TARGET_COLUMN), train[TARGET_COLUMN])
    predicted = model.predict(test.drop(columns=TARGET_COLUMN))
    return {
        "accuracy": accuracy_score(test[TARGET_COLUMN], predicted),
        "macro_f1": f1_score(test[TARGET_COLUMN], predicted, average="macro"),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="cycle_benchmark", description=__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_500, 15_000, 150_000])
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    console = Console()
    bootstrap_quietly(PROJECT_ROOT / "data" / "08_reporting" / "cycle_benchmark.log", console)
    results = []
    for rows in args.rows:
        console.print(f"Measuring {rows:,} rows ...")
        results.append(measure(rows, args.seed))
        os.chdir(PROJECT_ROOT)

    timing = Table(title="One cycle (ingest batch 10 + features + training, default budget)")
    for header in (
        "distinct rows",
        "ingest s",
        "features s",
        "training s",
        "cycle s",
        "baseline fit s",
        "cycle / fit",
    ):
        timing.add_column(header, justify="right")
    quality = Table(title="Champion vs course baseline (RandomForest defaults, one-hot), same hash split")
    for header in (
        "distinct rows",
        "baseline acc",
        "champion acc",
        "Δ acc",
        "baseline F1",
        "champion F1",
        "Δ F1",
    ):
        quality.add_column(header, justify="right")
    sample_size = len(load_covertype("sample"))
    for result, rows in zip(results, args.rows, strict=True):
        times, baseline, champion = result["times"], result["baseline"], result["champion"]
        cycle = sum(times.values())
        timing.add_row(
            f"{result['rows']:,}",
            *(f"{times[stage]:.1f}" for stage in ("ingestion", "features", "training")),
            f"{cycle:.1f}",
            f"{result['baseline_seconds']:.1f}",
            f"{cycle / result['baseline_seconds']:.1f}x",
        )
        if rows > sample_size:
            # Jittered copies of one sample row fall on both sides of the split: no quality to read.
            continue
        quality.add_row(
            f"{result['rows']:,}",
            f"{baseline['accuracy']:.4f}",
            f"{champion['accuracy']:.4f}",
            f"{100 * (champion['accuracy'] - baseline['accuracy']):+.1f} pt",
            f"{baseline['macro_f1']:.4f}",
            f"{champion['macro_f1']:.4f}",
            f"{100 * (champion['macro_f1'] - baseline['macro_f1']):+.1f} pt",
        )
    console.print(timing)
    console.print(quality)
    reference = stratified_reference(args.seed)
    console.print(
        f"Reference, baseline on a plain 80/20 stratified split of the 15k sample: "
        f"accuracy {reference['accuracy']:.4f}, macro-F1 {reference['macro_f1']:.4f}"
    )
    ratios: dict[str, float] = {}
    figures: dict[str, object] = {"reference baseline, stratified 80/20 split of the sample": reference}
    for result in results:
        cycle = sum(result["times"].values())
        ratios[f"{result['rows']:,} rows: one cycle / baseline fit"] = cycle / result["baseline_seconds"]
        scored = result["rows"] <= sample_size
        if scored:
            ratios[f"{result['rows']:,} rows: champion / baseline macro-F1"] = (
                result["champion"]["macro_f1"] / result["baseline"]["macro_f1"]
            )
        figures[f"{result['rows']:,} rows"] = {
            **{f"{stage} s": seconds for stage, seconds in result["times"].items()},
            "cycle s": cycle,
            "baseline fit s": result["baseline_seconds"],
            **(
                {
                    "baseline accuracy": result["baseline"]["accuracy"],
                    "champion accuracy": result["champion"]["accuracy"],
                    "baseline macro-F1": result["baseline"]["macro_f1"],
                    "champion macro-F1": result["champion"]["macro_f1"],
                }
                if scored
                else {}
            ),
        }
    output = save_result("cycle", figures, this_command(), ratios=ratios)
    console.print(f"Written to {output.relative_to(PROJECT_ROOT)}")
    console.print(
        f"Sizes above the {sample_size:,}-row sample are resampled with integer jitter on "
        f"{', '.join(JITTER)}: timed, not scored (near-copies of a row sit on both sides of the split)."
    )


if __name__ == "__main__":
    main()
