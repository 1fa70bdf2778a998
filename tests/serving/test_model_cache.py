"""The service's local model cache: what it stores is what it gives back, or nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sklearn.ensemble import ExtraTreesClassifier

from covertype.data.convert import api_records_to_frame, one_hot_to_api
from covertype.data.schema import FEATURE_COLUMNS, TARGET_COLUMN
from covertype.data.source import load_covertype
from covertype.pipelines.training.nodes import build_model
from covertype.serving.model_cache import INFO_FILE, MODEL_FILE, CorruptCache, ModelCache
from covertype.serving.schema import ModelInfo


@pytest.fixture(scope="module")
def rows():
    return api_records_to_frame(one_hot_to_api(load_covertype("sample")).head(600).to_numpy().tolist())


@pytest.fixture(scope="module")
def model(rows):
    training = rows.head(500)
    return build_model(ExtraTreesClassifier(n_estimators=3, random_state=0)).fit(
        training.loc[:, list(FEATURE_COLUMNS)], training[TARGET_COLUMN]
    )


INFO = ModelInfo(
    name="covertype", version="4", alias="champion", aliases=["champion"], run_id="r", metrics={}, tags={},
    registered_at=datetime(2026, 12, 7, tzinfo=UTC), promoted_at=None,
    loaded_at=datetime(2026, 12, 7, tzinfo=UTC), prediction_path="model_predict_proba",
)  # fmt: skip


def test_an_empty_cache_has_nothing_to_serve(tmp_path):
    assert ModelCache(tmp_path / "cache").load() is None


def test_the_cached_champion_predicts_as_the_stored_one_and_keeps_its_info(tmp_path, model, rows):
    cache = ModelCache(tmp_path / "cache")
    cache.store(model, INFO)
    cached, info = cache.load()
    records = rows.tail(100).loc[:, list(FEATURE_COLUMNS)]
    assert (cached.predict_proba(records) == model.predict_proba(records)).all()
    assert info == INFO
    assert sorted(path.name for path in (tmp_path / "cache").iterdir()) == sorted([INFO_FILE, MODEL_FILE])


def test_a_cached_model_that_is_not_the_one_stored_is_refused(tmp_path, model):
    cache = ModelCache(tmp_path / "cache")
    cache.store(model, INFO)
    stored = tmp_path / "cache" / MODEL_FILE
    stored.write_bytes(stored.read_bytes()[:-10])  # a half-copied or tampered file
    with pytest.raises(CorruptCache, match="not the one its info names"):
        cache.load()
