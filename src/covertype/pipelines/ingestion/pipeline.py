"""Ingestion pipeline: the current batch harvested from the API, validated, appended to the raw store."""

from kedro.pipeline import Pipeline, node

from covertype.pipelines.ingestion.nodes import (
    flag_invalid_rows,
    harvest_batch,
    select_quarantined_rows,
    select_valid_rows,
    summarize_batch,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                harvest_batch,
                inputs=["covertype_batch", "params:harvest"],
                outputs=["harvested_batch", "harvest_report"],
                name="harvest_batch",
            ),
            node(
                flag_invalid_rows,
                inputs="harvested_batch",
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
                summarize_batch,
                inputs=["flagged_batch", "harvest_report"],
                outputs="ingestion_summary",
                name="summarize_batch",
            ),
        ]
    )
