"""Ingestion pipeline: one batch from the API, validated, appended to the raw store."""

from kedro.pipeline import Pipeline, node

from covertype.pipelines.ingestion.nodes import (
    flag_invalid_rows,
    select_quarantined_rows,
    select_valid_rows,
    summarize_batch,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                flag_invalid_rows,
                inputs="covertype_batch",
                outputs="flagged_batch",
                name="flag_invalid_rows",
            ),
            node(
                select_valid_rows,
                inputs="flagged_batch",
                outputs="raw_covertype@table",
                name="store_valid_rows",
            ),
            node(
                select_quarantined_rows,
                inputs="flagged_batch",
                outputs="quarantined_covertype",
                name="quarantine_invalid_rows",
            ),
            node(
                summarize_batch, inputs="flagged_batch", outputs="ingestion_summary", name="summarize_batch"
            ),
        ]
    )
