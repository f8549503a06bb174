#!/bin/sh
# docker-entrypoint-initdb.d hook of the compose stack's database (first start only): the
# read-only role the monitor logs in as (infra/postgres/monitor_role.sql).
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v role=scalpflow_monitor -v password="$SCALPFLOW_MONITOR_PASSWORD" \
  -v owner="$POSTGRES_USER" -v db="$POSTGRES_DB" \
  -f /scalpflow/monitor_role.sql
