"""Feature engineering pipeline: the raw SQL store -> train and test feature tables."""

from kedro.pipeline import Pipeline, node

from covertype.pipelines.feature_engineering.nodes import (
    deduplicate_rows,
    derive_features,
    split_by_row_hash,
    validate_rows,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                deduplicate_rows,
                inputs="raw_covertype@query",
                outputs="distinct_rows",
                name="deduplicate_rows",
            ),
            node(validate_rows, inputs="distinct_rows", outputs="validated_rows", name="validate_rows"),
            node(derive_features, inputs="validated_rows", outputs="model_input", name="derive_features"),
            node(
                split_by_row_hash,
                inputs=["model_input", "params:feature_engineering.test_fraction"],
                outputs=["features_train", "features_test"],
                name="split_by_row_hash",
            ),
        ]
    )
