"""The settings: read from the environment once, handed to other processes, shared with Kedro's conf."""

from __future__ import annotations

import re

import pytest
from kedro.config import OmegaConfigLoader

from covertype.config import Settings, load_settings
from covertype.settings import CONFIG_LOADER_ARGS
from tests.conftest import PROJECT_ROOT


@pytest.fixture
def clean_environment(monkeypatch) -> pytest.MonkeyPatch:
    """No variable of the settings is set, whatever the shell running the tests exports."""
    for name in Settings.variables():
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_without_variables_the_settings_are_the_embedded_local_setup(clean_environment):
    settings = load_settings()
    assert settings.tracking_uri == settings.registry_uri == "sqlite:///mlflow.db"
    assert (settings.model_name, settings.champion_alias, settings.challenger_alias) == (
        "covertype",
        "champion",
        "challenger",
    )
    assert settings.service_url == "http://127.0.0.1:3000" and settings.batch_api_url is None
    assert settings.champion_poll_seconds == 30 and settings.kedro_env == "local"
    assert settings.group_number == 1 and settings.airflow_url is None, "no Airflow for the UI to show"


def test_each_setting_is_read_from_its_variable_and_an_empty_one_counts_as_unset(clean_environment):
    clean_environment.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    clean_environment.setenv("COVERTYPE_CHAMPION_POLL_SECONDS", "0.5")
    clean_environment.setenv("COVERTYPE_API_SEED", "7")
    clean_environment.setenv("COVERTYPE_SERVICE_URL", "")
    settings = load_settings()
    assert settings.tracking_uri == settings.registry_uri == "http://mlflow:5000"
    assert settings.champion_poll_seconds == 0.5 and settings.api_seed == 7
    assert settings.service_url == "http://127.0.0.1:3000"


def test_a_registry_of_its_own_moves_only_the_models(clean_environment):
    clean_environment.setenv("MLFLOW_REGISTRY_URI", "http://registry:5000")
    settings = load_settings()
    assert (settings.tracking_uri, settings.registry_uri) == ("sqlite:///mlflow.db", "http://registry:5000")


def test_the_variables_of_some_settings_give_another_process_the_same_settings(clean_environment):
    values = {"tracking_uri": "http://127.0.0.1:5001", "api_port": 8123, "api_seed": 3}
    for name, value in Settings.environment(**values).items():
        clean_environment.setenv(name, value)
    settings = load_settings()
    assert {name: getattr(settings, name) for name in values} == values


@pytest.mark.parametrize("env", ["local", "stack"])
def test_training_registers_under_the_model_name_and_aliases_the_settings_give(clean_environment, env):
    clean_environment.setenv("COVERTYPE_MODEL_NAME", "covertype-trial")
    clean_environment.setenv("COVERTYPE_CHAMPION_ALIAS", "best")
    loader = OmegaConfigLoader(str(PROJECT_ROOT / "conf"), env=env, **CONFIG_LOADER_ARGS)
    registration = loader["catalog"]["model_registration"]["registry"]
    assert (registration["model_name"], registration["champion_alias"]) == ("covertype-trial", "best")
    assert registration["challenger_alias"] == "challenger"


def test_the_default_environment_trains_into_the_store_the_settings_name(clean_environment):
    clean_environment.setenv("MLFLOW_TRACKING_URI", "sqlite:////tmp/elsewhere.db")
    loader = OmegaConfigLoader(
        str(PROJECT_ROOT / "conf"), **CONFIG_LOADER_ARGS, config_patterns={"mlflow": ["mlflow*"]}
    )
    assert loader["mlflow"]["server"]["mlflow_tracking_uri"] == load_settings().tracking_uri
    registry = loader["catalog"]["model_registration"]["registry"]
    assert registry["tracking_uri"] == load_settings().tracking_uri


def test_the_env_example_lists_every_variable_of_the_settings():
    listed = set(re.findall(r"^#?\s*(\w+)=", (PROJECT_ROOT / ".env.example").read_text(), flags=re.MULTILINE))
    assert Settings.variables() <= listed, sorted(Settings.variables() - listed)
