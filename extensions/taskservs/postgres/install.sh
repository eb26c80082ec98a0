#!/bin/sh
# Installs PostgreSQL from Debian packages and runs its own cluster (data under
# /var/lib/prov/postgres, never the distribution's /var/lib/postgresql clusters).
# Optional: PROV_SETTING_DB_NAME / DB_USER / DB_PASSWORD (a secret reference) create an app database.
set -eu
. "$PROV_LIB/service.sh"
port=${PROV_SETTING_PORT:-5432}
pkg_install postgresql postgresql-client
bin=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
data=/var/lib/prov/postgres/data
sock=/var/lib/prov/postgres/run
mkdir -p "$data" "$sock"
chown -R postgres:postgres /var/lib/prov/postgres
chmod 700 "$data"
if [ ! -f "$data/PG_VERSION" ]; then
  setpriv --reuid=postgres --regid=postgres --init-groups "$bin/initdb" -D "$data" --auth-local=peer --auth-host=scram-sha-256 -E UTF8 >/dev/null
fi
cat > "$data/prov.conf" <<CONF
# managed by prov (taskserv postgres $PROV_VERSION)
port = $port
listen_addresses = '${PROV_SETTING_LISTEN:-*}'
unix_socket_directories = '$sock'
CONF
grep -q "^include_if_exists = 'prov.conf'" "$data/postgresql.conf" || echo "include_if_exists = 'prov.conf'" >> "$data/postgresql.conf"
grep -q '^host all all 0.0.0.0/0 scram-sha-256' "$data/pg_hba.conf" || echo 'host all all 0.0.0.0/0 scram-sha-256' >> "$data/pg_hba.conf"
chown postgres:postgres "$data/prov.conf" "$data/postgresql.conf" "$data/pg_hba.conf"
if svc_running postgres && ! grep -q "^port = $port\$" "$data/postmaster.opts" 2>/dev/null; then
  setpriv --reuid=postgres --regid=postgres --init-groups "$bin/pg_ctl" -D "$data" reload >/dev/null 2>&1 || true
fi
if svc_running postgres && ! "$bin/pg_isready" -q -h "$sock" -p "$port"; then svc_stop postgres; fi
SVC_USER=postgres svc_start postgres "$bin/postgres" -D "$data"
svc_wait 30 "$bin/pg_isready" -q -h "$sock" -p "$port"
psql_admin() { setpriv --reuid=postgres --regid=postgres --init-groups psql -X -q -v ON_ERROR_STOP=1 -h "$sock" -p "$port" -d postgres "$@"; }
if [ -n "${PROV_SETTING_DB_USER:-}" ]; then
  user=$PROV_SETTING_DB_USER
  # The password travels on stdin, never in argv or a file.
  printf '%s\n' "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$user') THEN CREATE ROLE \"$user\" LOGIN; END IF; END \$\$;" \
    "ALTER ROLE \"$user\" PASSWORD '$(printf '%s' "${PROV_SETTING_DB_PASSWORD:-}" | sed "s/'/''/g")';" | psql_admin -f - >/dev/null
fi
if [ -n "${PROV_SETTING_DB_NAME:-}" ]; then
  db=$PROV_SETTING_DB_NAME
  exists=$(psql_admin -tA -c "SELECT 1 FROM pg_database WHERE datname = '$db'")
  [ "$exists" = 1 ] || psql_admin -c "CREATE DATABASE \"$db\" OWNER \"${PROV_SETTING_DB_USER:-postgres}\"" >/dev/null
fi
echo "postgres $("$bin/postgres" --version | awk '{print $3}') listening on $port (data $data)"
