"""The project's services: as native processes (the demo, `make airflow`, the tests' fixtures) and as the
docker-compose stack (`covertype-stack`)."""
