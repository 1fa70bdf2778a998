#!/bin/bash
# `mc ready local`, the MinIO client's readiness check the minio service's healthcheck runs:
# exit 0 once the S3 API on :9000 answers its status page.
set -euo pipefail
if [ "${1:-}" != ready ]; then
  echo "this stand-in only answers 'mc ready local'" >&2
  exit 2
fi
python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9000/status', timeout=4)"
