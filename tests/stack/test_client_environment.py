"""What the native stack hands its clients (`.stack/stack.env`): the settings' variables and conf/stack's."""

from __future__ import annotations

from covertype.config import Settings
from covertype.stack.native import StackLayout, layout_from_settings
from tests.conftest import conf_variables


def test_the_clients_get_every_variable_the_stack_environment_reads_and_nothing_else(tmp_path):
    environment = set(StackLayout(workdir=tmp_path).client_environment())
    assert conf_variables("stack") <= environment
    assert environment <= Settings.variables() | conf_variables("stack")


def test_the_clients_settings_point_at_the_stacks_own_services(tmp_path):
    layout = StackLayout(workdir=tmp_path, mlflow_port=5123, bentoml_port=3123, batch_api_port=8123)
    settings = Settings(**layout.client_environment())
    assert settings.tracking_uri == settings.registry_uri == "http://127.0.0.1:5123"
    assert settings.service_url == "http://127.0.0.1:3123"
    assert settings.batch_api_url == "http://127.0.0.1:8123"
    assert settings.kedro_env == "stack"
    assert (settings.mysql_host, settings.mysql_port, settings.mysql_database) == (
        layout.mysql_host,
        layout.mysql_port,
        layout.mysql_database,
    )


def test_the_layout_takes_the_mysql_server_rotation_and_airflow_from_the_settings(tmp_path):
    settings = Settings(mysql_host="db", mysql_port=3307, batch_rotation_seconds=60, stack_airflow=False)
    layout = layout_from_settings(tmp_path, settings)
    assert (layout.mysql_host, layout.mysql_port, layout.batch_rotation_seconds) == ("db", 3307, 60)
    assert layout.with_airflow is False
