"""Covertype MLOps: collect forest cover data, train, track, schedule and serve."""

__version__ = "0.1.0"
