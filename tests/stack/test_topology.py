"""The native stack takes its topology from docker-compose.yml: the same services, order and ports."""

from __future__ import annotations

import graphlib

import pytest

from covertype.config import Settings
from covertype.stack.native import AIRFLOW_STEPS, FOLDED_INTO_OTHER_STEPS, StackLayout, service_plan
from covertype.stack.topology import Topology, compose_topology


def test_every_service_starts_after_all_it_depends_on():
    topology = compose_topology()
    order = topology.start_order()
    assert sorted(order) == sorted(topology.services)
    for service in order:
        for dependency in topology.dependencies(service):
            assert order.index(dependency) < order.index(service), f"{dependency} before {service}"


def test_optional_profiles_are_not_part_of_the_stack():
    assert {"prometheus", "grafana"}.isdisjoint(compose_topology().services)


def test_ties_keep_the_order_of_the_file():
    topology = Topology({"b": {}, "a": {"depends_on": ["c"]}, "c": {}, "d": {"depends_on": {"b": {}}}})
    assert topology.start_order() == ["b", "c", "a", "d"]


def test_a_dependency_cycle_is_refused():
    with pytest.raises(graphlib.CycleError):
        Topology({"a": {"depends_on": ["b"]}, "b": {"depends_on": ["a"]}}).start_order()


def test_the_host_port_is_the_published_one_not_the_containers():
    assert compose_topology().host_port("batch-api") == 8000
    assert Topology({"s": {"ports": ["127.0.0.1:18000:80"]}}).host_port("s") == 18000


def test_the_native_stack_starts_every_compose_service_in_compose_order(tmp_path):
    layout = StackLayout(workdir=tmp_path)
    steps = [name for name, _ in service_plan(layout, Settings())]
    covered = set(steps) | set(FOLDED_INTO_OTHER_STEPS)
    assert covered == set(compose_topology().services), "a compose service the native stack does not run"
    order = compose_topology().start_order()
    assert steps == [name for name in order if name in steps]


def test_a_stack_without_airflow_leaves_only_airflow_out(tmp_path):
    def steps(layout: StackLayout) -> list[str]:
        return [name for name, _ in service_plan(layout, Settings())]

    with_airflow = steps(StackLayout(workdir=tmp_path))
    without = steps(StackLayout(workdir=tmp_path, with_airflow=False))
    assert without == [name for name in with_airflow if name not in AIRFLOW_STEPS]


def test_the_native_ports_are_the_ones_compose_publishes(tmp_path):
    layout = StackLayout(workdir=tmp_path)
    published = {
        "batch-api": layout.batch_api_port, "minio": layout.s3_port, "mlflow": layout.mlflow_port,
        "bentoml": layout.bentoml_port, "streamlit": layout.streamlit_port,
        "airflow-apiserver": layout.airflow_port,
    }  # fmt: skip
    assert published == {service: compose_topology().host_port(service) for service in published}
