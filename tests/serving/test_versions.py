"""Any registered version on request, against a real `bentoml serve`; the loaded-version cache in-process."""

from __future__ import annotations

import httpx
import pytest
from mlflow.entities.model_registry import ModelVersion

from covertype.config import Settings
from covertype.registry import ModelRegistry
from covertype.serving.champion import LoadedVersion
from covertype.serving.engine import ENGINE
from covertype.serving.schema import ModelInfo
from covertype.serving.versions import VersionCache
from tests.conftest import RECORD, TrainedProject, TwoVersions


def predict(service: str, **body: object) -> httpx.Response:
    return httpx.post(f"{service}/predict", json={"records": [RECORD, RECORD], **body}, timeout=60)


def answered_by(response: httpx.Response) -> set[tuple[str, tuple[str, ...]]]:
    assert response.status_code == 200, response.text
    return {(p["model_version"], tuple(p["model_aliases"])) for p in response.json()}


@pytest.mark.integration
def test_predict_answers_with_the_version_an_alias_or_a_number_names_and_says_which(
    champion_service: str, two_versions: TwoVersions
):
    champion, challenger = two_versions.champion, two_versions.challenger
    assert answered_by(predict(champion_service)) == {(champion, ("champion",))}
    assert answered_by(predict(champion_service, model="champion")) == {(champion, ("champion",))}
    assert answered_by(predict(champion_service, model="challenger")) == {(challenger, ("challenger",))}
    assert answered_by(predict(champion_service, model=int(challenger))) == {(challenger, ("challenger",))}
    assert answered_by(predict(champion_service, model=champion)) == {(champion, ("champion",))}
    # The same model behind both versions: the same classes and probabilities.
    strip = [
        {k: v for k, v in p.items() if not k.startswith("model_")} for p in predict(champion_service).json()
    ]
    assert strip == [
        {k: v for k, v in p.items() if not k.startswith("model_")}
        for p in predict(champion_service, model=challenger).json()
    ]


@pytest.mark.integration
@pytest.mark.parametrize(
    ("selector", "named"),
    [("nosuchalias", "no alias 'nosuchalias'"), ("999999", "no version '999999'")],
)
def test_a_selector_that_names_no_version_gets_404_naming_it(
    champion_service: str, two_versions: TwoVersions, selector: str, named: str
):
    response = predict(champion_service, model=selector)
    assert response.status_code == 404
    assert response.json()["error"].startswith(f"model '{selector}': covertype has {named}")


@pytest.mark.integration
@pytest.mark.parametrize("selector", [True, 0, 1.5, "", "no spaces", "-1", ["1"]])
def test_a_malformed_selector_gets_400_naming_the_field(champion_service: str, selector: object):
    response = predict(champion_service, model=selector)
    assert response.status_code == 400
    assert [issue["loc"][0] for issue in response.json()["detail"]] in (["model"], ["model", "model"])


@pytest.mark.integration
def test_a_version_whose_model_cannot_be_loaded_gets_410_and_the_service_keeps_serving(
    champion_service: str, trained_project: TrainedProject, two_versions: TwoVersions
):
    registry = ModelRegistry.from_settings(Settings(tracking_uri=trained_project.env["MLFLOW_TRACKING_URI"]))
    pruned = registry.client.create_model_version(
        registry.model_name, source=f"{trained_project.workdir}/pruned-artifacts"
    )
    response = predict(champion_service, model=str(pruned.version))
    assert response.status_code == 410
    assert response.json()["error"].startswith(f"version {pruned.version} of covertype is registered but")
    assert answered_by(predict(champion_service)) == {(two_versions.champion, ("champion",))}


@pytest.mark.integration
def test_get_models_lists_every_version_with_its_aliases_rows_and_test_metrics(
    champion_service: str, two_versions: TwoVersions
):
    response = httpx.get(f"{champion_service}/models", timeout=60)
    assert response.status_code == 200
    listing = response.json()
    assert (listing["name"], listing["champion"]) == ("covertype", two_versions.champion)
    numbers = [int(version["version"]) for version in listing["versions"]]
    assert numbers == sorted(numbers, reverse=True)
    by_number = {version["version"]: version for version in listing["versions"]}
    champion, challenger = by_number[two_versions.champion], by_number[two_versions.challenger]
    assert champion["aliases"] == ["champion"] and challenger["aliases"] == ["challenger"]
    assert {"test_accuracy", "test_macro_f1"} <= set(champion["test_metrics"])
    assert champion["test_metrics"] == challenger["test_metrics"]  # one training run behind both
    assert champion["training_rows"] == challenger["training_rows"] > 0
    document = httpx.get(f"{champion_service}/docs.json", timeout=60).json()
    assert set(document["paths"]["/models"]) == {"get"}
    assert {"404", "410"} <= set(document["paths"]["/predict"]["post"]["responses"])


def version(number: int, aliases: tuple[str, ...] = ()) -> ModelVersion:
    return ModelVersion("covertype", str(number), creation_timestamp=0, aliases=list(aliases))


def test_the_cache_keeps_the_most_recently_used_versions_and_names_their_current_aliases():
    loads: list[str] = []

    def load(mv: ModelVersion) -> LoadedVersion:
        loads.append(mv.version)
        info = ModelInfo(
            name="covertype", version=mv.version, alias=None, aliases=list(mv.aliases), run_id=None,
            metrics={}, tags={}, registered_at=0, promoted_at=None, loaded_at=0, prediction_path=ENGINE,
        )  # fmt: skip
        return LoadedVersion(predictor=None, info=info, explainer=None)

    cache = VersionCache(2, load)
    cache.get(version(1))
    cache.get(version(2))
    assert cache.get(version(1, ("challenger",))).info.aliases == ["challenger"]  # a hit, aliases now
    cache.get(version(3))  # evicts 2, the least recently used
    assert cache.numbers == ["1", "3"]
    cache.get(version(2))
    assert loads == ["1", "2", "3", "2"]
    assert cache.numbers == ["3", "2"]
