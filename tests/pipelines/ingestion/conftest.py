"""Fixtures of the ingestion tests."""

import pytest

from tests.conftest import PROJECT_ROOT


@pytest.fixture
def isolated_summary():
    """Keep the developer's own ingestion summary untouched by the tests."""
    summary = PROJECT_ROOT / "data/08_reporting/ingestion_summary.json"
    saved = summary.read_bytes() if summary.exists() else None
    yield
    if saved is None:
        summary.unlink(missing_ok=True)
    else:
        summary.write_bytes(saved)
