#!/bin/bash
# As the postgres image's entrypoint: an empty PGDATA is initialised with POSTGRES_USER (a superuser
# with POSTGRES_PASSWORD) and POSTGRES_DB; clients on the network log in with a password.
set -euo pipefail
mkdir -p "$PGDATA" /var/run/postgresql
chown postgres:postgres "$PGDATA" /var/run/postgresql
chmod 700 "$PGDATA"
if [ "$1" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
  : "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is required}"
  user=${POSTGRES_USER:-postgres}
  password_file=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" >"$password_file"
  chown postgres "$password_file"
  runuser -u postgres -- initdb -D "$PGDATA" -U "$user" --pwfile="$password_file" \
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$password_file"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
  runuser -u postgres -- pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
  if [ "${POSTGRES_DB:-$user}" != postgres ]; then
    runuser -u postgres -- psql -v ON_ERROR_STOP=1 -U "$user" -d postgres \
      -c "CREATE DATABASE \"${POSTGRES_DB:-$user}\" OWNER \"$user\"" >/dev/null
  fi
  runuser -u postgres -- pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
fi
if [ "$1" = postgres ]; then
  exec runuser -u postgres -- "$@"
fi
exec "$@"
