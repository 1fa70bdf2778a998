#!/usr/bin/env bash
# The base images no registry gives this machine: local/debian:bookworm (base.sh) and, built on it,
# the image the project's Dockerfile starts FROM. Run once before
#   docker compose -f docker-compose.yml -f docker/stand-ins/compose.yml up -d --build
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
"$here/base.sh"
python_image=$(awk '/^FROM /{print $2; exit}' "$here/../../Dockerfile")
if ! docker image inspect "$python_image" >/dev/null 2>&1; then
  docker build -q --target python -t "$python_image" "$here" >/dev/null
  echo "made $python_image (stand-in)"
fi
