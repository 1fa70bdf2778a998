"""Monitoring: drift of the latest batch and of served traffic against the serving model's training rows."""

from covertype.pipelines.monitoring.pipeline import create_pipeline

__all__ = ["create_pipeline"]
