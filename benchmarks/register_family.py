"""Register a version of one model family, as training would, so that ``make bench-serving`` can
measure it: ``uv run python -m benchmarks.register_family lightgbm`` then
``uv run python benchmarks/serving_bench.py --model <the version it prints>``.

The family is fitted in the middle of its search space (``benchmarks.engine_bench.FAMILIES``) on
the shipped sample's training split, converted and checked by training's own nodes
(``convert_challenger``, ``prepare_registration``), and saved through the catalog's registry
dataset in a run of the settings' MLflow store, with the decision ``rejected``: it becomes the
challenger, the champion stays.
"""

from __future__ import annotations

import argparse

import mlflow

from benchmarks.engine_bench import FAMILIES, split
from covertype.config import load_settings
from covertype.datasets.model_registry_dataset import ModelRegistryDataset
from covertype.model_package import CompressedModel
from covertype.pipelines.training.nodes import (
    convert_challenger,
    fingerprint_training,
    fit_model,
    prepare_registration,
    score_model,
)
from covertype.registry import ModelRegistry

#: conf/base/parameters_training.yml's budget and engine tolerance.
BUDGET_MB = 25
ENGINE = {"tolerance": 1e-5}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="register_family", description=__doc__)
    parser.add_argument("family", choices=list(FAMILIES))
    args = parser.parse_args(argv)
    settings = load_settings()
    train, test = split()
    model = fit_model(train, args.family, FAMILIES[args.family], seed=42)
    challenger = {"family": args.family, "model": model, "package": CompressedModel(model)}
    engine = convert_challenger(challenger, test, ENGINE, BUDGET_MB)
    reason = f"registered by {parser.prog}"
    decision = {"decision": "rejected", "promote": False, "reason": reason}
    fingerprint = fingerprint_training(train, test, {"family": args.family, "params": FAMILIES[args.family]})
    plan = {"rows": len(train) + len(test), "fingerprint": fingerprint, "reason": reason}
    registration = prepare_registration(
        challenger,
        decision,
        plan,
        score_model(model, test),
        test,
        challenger_engine=engine,
        retention={"keep_last": None},
    )
    dataset = ModelRegistryDataset(
        registry={
            "tracking_uri": settings.tracking_uri,
            "registry_uri": settings.registry_uri,
            "model_name": settings.model_name,
            "champion_alias": settings.champion_alias,
            "challenger_alias": settings.challenger_alias,
        }
    )
    mlflow.set_tracking_uri(settings.tracking_uri)
    with mlflow.start_run(run_name=f"{parser.prog}-{args.family}"):
        dataset.save(registration)
    newest = ModelRegistry.from_settings(settings).challenger()  # the version just saved
    print(f"{args.family}: version {newest.version}, serving through {newest.tags.get('serving_engine')}")


if __name__ == "__main__":
    main()
