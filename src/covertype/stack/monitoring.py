"""Prometheus as a native process (Debian's ``prometheus``, from ``make system-deps``) with compose's config.

``docker/prometheus/prometheus.yml`` is the one configuration: each scrape job (``bentoml``,
``pushgateway``) finds its targets in a file next to it (``file_sd_configs``), and its alerting
rules are ``alerts.yml`` beside it. Compose mounts the folder with ``targets/bentoml.json``
(``bentoml:3000``) and ``targets/pushgateway.json`` (``pushgateway:9091``); here a copy of the
same files goes to a work folder with targets files naming ``host:port``s, and only the scrape and
evaluation intervals may be changed (a test wants samples quickly). The Pushgateway (Debian's
``prometheus-pushgateway``) runs natively too. Grafana has no Debian 12 package nor wheel: it runs
in compose only.

    python -m covertype.stack.monitoring --service 127.0.0.1:3000   # http://127.0.0.1:9090, Ctrl-C stops
    prometheus-pushgateway --web.listen-address=127.0.0.1:9091 &     # then add --pushgateway 127.0.0.1:9091
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
from collections.abc import Sequence
from pathlib import Path

from omegaconf import OmegaConf

from covertype.stack.processes import ServiceFailed, ServiceProcess, http_ok

PROJECT_ROOT = Path(__file__).resolve().parents[3]
PROMETHEUS_CONFIG = PROJECT_ROOT / "docker" / "prometheus" / "prometheus.yml"


def targets_file(config_path: Path = PROMETHEUS_CONFIG, job: str = "bentoml") -> Path:
    """The file the configuration's scrape ``job`` reads its targets from, resolved as Prometheus does."""
    config = OmegaConf.load(config_path)
    (scrape,) = [scrape for scrape in config.scrape_configs if scrape.job_name == job]
    ((targets,),) = (discovery.files for discovery in scrape.file_sd_configs)
    return config_path.parent / targets


def write_config(
    workdir: Path,
    targets: Sequence[str],
    scrape_interval: str | None = None,
    *,
    pushgateways: Sequence[str] = (),
    evaluation_interval: str | None = None,
) -> Path:
    """The shipped configuration and rules in ``workdir``, its targets files naming ``targets`` (the
    service's ``host:port``) and ``pushgateways``.

    ``scrape_interval`` and ``evaluation_interval`` (``"1s"``) replace the configuration's global
    ones; nothing else changes.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    config = OmegaConf.load(PROMETHEUS_CONFIG)
    if scrape_interval is not None:
        config["global"].scrape_interval = scrape_interval
    if evaluation_interval is not None:
        config["global"].evaluation_interval = evaluation_interval
    config_path = workdir / PROMETHEUS_CONFIG.name
    OmegaConf.save(config, config_path)
    for rules in config.rule_files:
        shutil.copy(PROMETHEUS_CONFIG.parent / rules, workdir / rules)
    for job, hosts in (("bentoml", targets), ("pushgateway", pushgateways)):
        written_targets = targets_file(config_path, job)
        written_targets.parent.mkdir(parents=True, exist_ok=True)
        written_targets.write_text(json.dumps([{"targets": list(hosts)}]))
    return config_path


def pushgateway_server(port: int, workdir: Path) -> ServiceProcess:
    """The Pushgateway on 127.0.0.1:``port`` (what was pushed lives in memory); its log in ``workdir``."""
    command = [
        shutil.which("prometheus-pushgateway") or "/usr/bin/prometheus-pushgateway",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    return ServiceProcess(
        name="pushgateway",
        command=command,
        ready=http_ok(f"http://127.0.0.1:{port}/-/ready"),
        log_path=workdir / "pushgateway.log",
        start_timeout=30,
        stop_timeout=10,
    )


def prometheus_server(
    port: int,
    workdir: Path,
    targets: Sequence[str],
    scrape_interval: str | None = None,
    *,
    pushgateways: Sequence[str] = (),
    evaluation_interval: str | None = None,
) -> ServiceProcess:
    """Prometheus on 127.0.0.1:``port`` scraping ``targets`` and ``pushgateways``; its config, data and
    log in ``workdir``."""
    config_path = write_config(
        workdir, targets, scrape_interval, pushgateways=pushgateways, evaluation_interval=evaluation_interval
    )
    command = [
        shutil.which("prometheus") or "/usr/bin/prometheus",
        f"--config.file={config_path}",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    return ServiceProcess(
        name="prometheus",
        command=command,
        ready=http_ok(f"http://127.0.0.1:{port}/-/ready"),
        log_path=workdir / "prometheus.log",
        start_timeout=60,
        stop_timeout=20,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m covertype.stack.monitoring", description=__doc__)
    parser.add_argument("--service", default="127.0.0.1:3000", help="host:port of the BentoML service")
    parser.add_argument("--port", type=int, default=9090, help="Prometheus' port (UI and HTTP API)")
    parser.add_argument(
        "--workdir", type=Path, default=PROJECT_ROOT / ".stack" / "prometheus", help="config, data, log"
    )
    parser.add_argument(
        "--pushgateway", action="append", default=[], help="host:port of a Pushgateway to scrape too"
    )
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with prometheus_server(
        args.port, args.workdir, [args.service], pushgateways=args.pushgateway
    ) as prometheus:
        print(
            f"Prometheus at http://127.0.0.1:{args.port}, scraping {args.service}; Ctrl-C stops it",
            flush=True,
        )
        try:
            code = prometheus.process.wait()
        except KeyboardInterrupt:
            return
    raise ServiceFailed(
        f"prometheus exited with code {code}; log {prometheus.log_path}:\n{prometheus.log_tail()}"
    )


if __name__ == "__main__":
    main()
