#!/bin/sh
# Temporal's two PostgreSQL databases (history and visibility) and their schema: created on the first start,
# brought up to date on every later one (after an image upgrade too). Run by docker-compose.yml's temporal-schema.
set -eu
: "${POSTGRES_SEEDS:?POSTGRES_SEEDS must name the PostgreSQL host}"
: "${POSTGRES_USER:?POSTGRES_USER must be set}"
: "${SQL_PASSWORD:?SQL_PASSWORD must be set}"
PORT="${DB_PORT:-5432}"
SCHEMA=/etc/temporal/schema/postgresql/v12

sql() {
    temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -u "$POSTGRES_USER" -p "$PORT" "$@"
}

# Each step is idempotent on temporal-sql-tool: `create` accepts a database that exists (the postgres image makes
# one named after its user), `setup-schema -v 0.0` skips a schema already set up, `update-schema` applies only
# the versions a database lacks; a first start stopped half-way is finished by the next.
for db in temporal temporal_visibility; do
    case "$db" in
        temporal) versions="$SCHEMA/temporal/versioned" ;;
        *) versions="$SCHEMA/visibility/versioned" ;;
    esac
    sql --db "$db" create
    sql --db "$db" setup-schema -v 0.0
    sql --db "$db" update-schema -d "$versions"
done
echo "Temporal's schema is ready"
