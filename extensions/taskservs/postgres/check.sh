#!/bin/sh
# Desired state: package installed, own cluster initialised on the configured port, accepting connections.
. "$PROV_LIB/service.sh"
pkg_installed postgresql || exit 1
data=/var/lib/prov/postgres/data
[ -f "$data/PG_VERSION" ] || exit 1
grep -q "^port = ${PROV_SETTING_PORT:-5432}\$" "$data/prov.conf" 2>/dev/null || exit 1
svc_running postgres || exit 1
pg_isready -q -h /var/lib/prov/postgres/run -p "${PROV_SETTING_PORT:-5432}" || exit 1
if [ -n "${PROV_SETTING_DB_NAME:-}" ]; then
  # The name reaches SQL as a psql variable (quoted by psql), never pasted into it.
  found=$(setpriv --reuid=postgres --regid=postgres --init-groups psql -X -tA -h /var/lib/prov/postgres/run -p "${PROV_SETTING_PORT:-5432}" -d postgres -f - 2>/dev/null <<'SQL'
\getenv db_name PROV_SETTING_DB_NAME
SELECT 1 FROM pg_database WHERE datname = :'db_name';
SQL
)
  [ "$found" = 1 ] || exit 1
fi
exit 0
