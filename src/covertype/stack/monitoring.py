"""Prometheus as a native process (Debian's ``prometheus``, from ``make system-deps``) with compose's config.

``docker/prometheus/prometheus.yml`` is the one configuration: its scrape job finds its targets in a
file next to it (``file_sd_configs``). Compose mounts the folder with ``targets/bentoml.json``
(``bentoml:3000``); here a copy of the same file goes to a work folder with a targets file naming the
service's ``host:port``, and only the scrape interval may be changed (a test wants samples quickly).
Grafana has no Debian 12 package nor wheel: it runs in compose only.

    python -m covertype.stack.monitoring --service 127.0.0.1:3000   # http://127.0.0.1:9090, Ctrl-C stops
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


def targets_file(config_path: Path = PROMETHEUS_CONFIG) -> Path:
    """The file the configuration's one scrape job reads its targets from, resolved as Prometheus does."""
    config = OmegaConf.load(config_path)
    (job,) = config.scrape_configs
    ((targets,),) = (discovery.files for discovery in job.file_sd_configs)
    return config_path.parent / targets


def write_config(workdir: Path, targets: Sequence[str], scrape_interval: str | None = None) -> Path:
    """The shipped configuration in ``workdir``, its targets file naming ``targets`` (``host:port``).

    ``scrape_interval`` (``"1s"``) replaces the configuration's global one; nothing else changes.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    config = OmegaConf.load(PROMETHEUS_CONFIG)
    if scrape_interval is not None:
        config["global"].scrape_interval = scrape_interval
    config_path = workdir / PROMETHEUS_CONFIG.name
    OmegaConf.save(config, config_path)
    written_targets = targets_file(config_path)
    written_targets.parent.mkdir(parents=True, exist_ok=True)
    written_targets.write_text(json.dumps([{"targets": list(targets)}]))
    return config_path


def prometheus_server(
    port: int, workdir: Path, targets: Sequence[str], scrape_interval: str | None = None
) -> ServiceProcess:
    """Prometheus on 127.0.0.1:``port`` scraping ``targets``; its config, data and log in ``workdir``."""
    config_path = write_config(workdir, targets, scrape_interval)
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
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with prometheus_server(args.port, args.workdir, [args.service]) as prometheus:
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
