#!/bin/bash
# Runs once, on the first start of an empty MySQL volume (after MYSQL_DATABASE and MYSQL_USER exist):
# the MLflow backend store gets its own database, owned by the same application user.
set -euo pipefail
mysql -u root -p"${MYSQL_ROOT_PASSWORD}" <<SQL
CREATE DATABASE IF NOT EXISTS \`${MLFLOW_DATABASE}\` CHARACTER SET utf8mb4;
GRANT ALL PRIVILEGES ON \`${MLFLOW_DATABASE}\`.* TO '${MYSQL_USER}'@'%';
FLUSH PRIVILEGES;
SQL
