"""Feature engineering: every stored row, deduplicated, validated, turned into features, split by row hash."""

from covertype.pipelines.feature_engineering.pipeline import create_pipeline

__all__ = ["create_pipeline"]
