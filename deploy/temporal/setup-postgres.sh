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

for db in temporal temporal_visibility; do
    case "$db" in
        temporal) versions="$SCHEMA/temporal/versioned" ;;
        *) versions="$SCHEMA/visibility/versioned" ;;
    esac
    if sql --db "$db" create 2>/dev/null; then
        echo "database $db created"
        sql --db "$db" setup-schema -v 0.0
    else
        echo "database $db exists"
    fi
    sql --db "$db" update-schema -d "$versions"  # a no-op when the schema is current
done
echo "Temporal's schema is ready"
