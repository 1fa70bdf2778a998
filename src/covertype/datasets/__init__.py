"""Kedro datasets for the places this project reads and writes: the batch API and SQL tables."""

from covertype.datasets.batch_api_dataset import BatchAPIDataset, BatchDraws, Draw
from covertype.datasets.sql_append_dataset import SQLAppendDataset

__all__ = ["BatchAPIDataset", "BatchDraws", "Draw", "SQLAppendDataset"]
