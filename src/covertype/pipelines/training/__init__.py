"""Training: a bounded search, a challenger registered, promoted only if it beats the champion."""

from covertype.pipelines.training.pipeline import create_pipeline

__all__ = ["create_pipeline"]
