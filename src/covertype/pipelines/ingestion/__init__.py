"""Ingestion: the batch API's current batch -> validated rows in the raw SQL table, bad rows in quarantine."""

from covertype.pipelines.ingestion.pipeline import create_pipeline

__all__ = ["create_pipeline"]
