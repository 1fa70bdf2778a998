#!/bin/bash
# `minio server DIR [--console-address ADDR]` as MinIO's image runs it: an S3 API on :9000 with one
# identity (MINIO_ROOT_USER / MINIO_ROOT_PASSWORD) and its data in DIR, served by SeaweedFS.
# MinIO's web console has no stand-in: the address is accepted and not served.
set -euo pipefail
if [ "${1:-}" != server ] || [ -z "${2:-}" ]; then
  echo "usage: minio server DIR [--console-address ADDR]" >&2
  exit 2
fi
data=$2
: "${MINIO_ROOT_USER:?MINIO_ROOT_USER is required}" "${MINIO_ROOT_PASSWORD:?MINIO_ROOT_PASSWORD is required}"
mkdir -p "$data"
config=$(mktemp --suffix=.json)
python3 - "$config" <<'PY'
import json, os, sys
identity = {
    "name": "root",
    "credentials": [{"accessKey": os.environ["MINIO_ROOT_USER"], "secretKey": os.environ["MINIO_ROOT_PASSWORD"]}],
    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
}
json.dump({"identities": [identity]}, open(sys.argv[1], "w"))
PY
# Each bucket takes several volumes at its first write: small, many volumes (they are sparse).
exec weed server -ip=127.0.0.1 -ip.bind=0.0.0.0 -dir="$data" -master.telemetry=false \
  -master.volumeSizeLimitMB=64 -volume.max=200 -volume.preStopSeconds=0 \
  -s3 -s3.port=9000 -s3.config="$config" -s3.port.iceberg=0 -s3.port.lance=0
