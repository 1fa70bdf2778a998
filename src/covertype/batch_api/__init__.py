"""A faithful, fixed implementation of the course's Covertype batch API."""

from covertype.batch_api.app import create_app
from covertype.batch_api.rotation import BatchRotation, CollectionFinished, RotationSettings

__all__ = ["BatchRotation", "CollectionFinished", "RotationSettings", "create_app"]
