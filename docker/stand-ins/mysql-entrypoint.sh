#!/bin/bash
# As the mysql image's entrypoint: an empty datadir is initialised from MYSQL_ROOT_PASSWORD,
# MYSQL_DATABASE, MYSQL_USER and MYSQL_PASSWORD, then /docker-entrypoint-initdb.d/*.sh|*.sql run
# against a server that listens on no network; flags given as the command go to the server.
set -euo pipefail
if [ "${1:0:1}" = "-" ]; then
  set -- mariadbd "$@"
fi
datadir=/var/lib/mysql
chown mysql:mysql "$datadir" /run/mysqld
if [ "$1" = mariadbd ] && [ ! -d "$datadir/mysql" ]; then
  : "${MYSQL_ROOT_PASSWORD:?MYSQL_ROOT_PASSWORD is required}"
  mariadb-install-db --user=mysql --datadir="$datadir" --skip-test-db >/dev/null
  mariadbd --user=mysql --datadir="$datadir" --skip-networking &
  server=$!
  for _ in $(seq 60); do
    mariadb-admin ping --silent 2>/dev/null && break
    sleep 1
  done
  mariadb <<SQL
CREATE DATABASE IF NOT EXISTS \`${MYSQL_DATABASE}\`;
CREATE USER '${MYSQL_USER}'@'%' IDENTIFIED BY '${MYSQL_PASSWORD}';
GRANT ALL PRIVILEGES ON \`${MYSQL_DATABASE}\`.* TO '${MYSQL_USER}'@'%';
CREATE USER 'root'@'%' IDENTIFIED BY '${MYSQL_ROOT_PASSWORD}';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;
ALTER USER 'root'@'localhost' IDENTIFIED BY '${MYSQL_ROOT_PASSWORD}';
FLUSH PRIVILEGES;
SQL
  for script in /docker-entrypoint-initdb.d/*; do
    case "$script" in
      *.sh) echo "running $script"; bash "$script" ;;
      *.sql) echo "running $script"; mariadb -u root -p"${MYSQL_ROOT_PASSWORD}" "${MYSQL_DATABASE}" <"$script" ;;
    esac
  done
  mariadb-admin -u root -p"${MYSQL_ROOT_PASSWORD}" shutdown
  wait "$server" || true
fi
if [ "$1" = mariadbd ]; then
  set -- "$@" --user=mysql --datadir="$datadir" --bind-address=0.0.0.0
fi
exec "$@"
