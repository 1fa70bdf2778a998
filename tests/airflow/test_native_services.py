"""The native Airflow services follow the executor setting: Celery adds a triggerer and workers."""

from __future__ import annotations

from covertype.stack.airflow import airflow_environment, airflow_services, dag_queues

CELERY = {
    "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
    "AIRFLOW__CELERY__BROKER_URL": "redis://127.0.0.1:6379/3",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql+psycopg2://postgres@127.0.0.1:5432/airflow",
}


def commands(services) -> dict[str, list[str]]:
    return {service.name: list(service.command[1:]) for service in services}


def test_without_an_executor_setting_the_local_executor_runs_the_tasks_in_the_scheduler(tmp_path):
    env = airflow_environment(tmp_path, settings={})
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert commands(airflow_services(env, tmp_path)) == {
        "airflow api-server": ["api-server"],
        "airflow dag-processor": ["dag-processor"],
        "airflow scheduler": ["scheduler"],
    }


def test_the_settings_choose_the_celery_executor_which_adds_a_triggerer_and_a_worker_on_every_queue(tmp_path):
    env = airflow_environment(tmp_path, settings={**CELERY, "PATH": "/usr/bin"})
    assert {name: env[name] for name in CELERY} == CELERY
    assert "PATH" not in env, "only Airflow's own settings are taken over"
    started = commands(airflow_services(env, tmp_path))
    assert list(started)[:3] == ["airflow api-server", "airflow dag-processor", "airflow scheduler"]
    assert started["airflow triggerer"] == ["triggerer", "--skip-serve-logs"]
    worker = started["airflow worker worker"]
    assert worker[:2] == ["celery", "worker"]
    assert worker[worker.index("--queues") + 1] == ",".join(dag_queues()) == "default,training"


def test_workers_can_be_named_each_with_its_own_queues(tmp_path):
    env = airflow_environment(tmp_path, settings=CELERY)
    workers = {"default": ["default"], "training": ["training"]}
    started = commands(airflow_services(env, tmp_path, workers=workers))
    for name, queues in workers.items():
        command = started[f"airflow worker {name}"]
        assert command[command.index("--queues") + 1] == ",".join(queues)
        assert command[command.index("--celery-hostname") + 1].startswith(f"{name}@")
    assert len({tuple(command) for command in started.values()}) == len(started)
