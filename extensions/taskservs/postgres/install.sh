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
# Names and the password reach SQL as psql variables read from the environment (\getenv) and quoted
# by psql (:'x' literal, format(%I/%L) identifier/literal): a value never becomes SQL, and the
# password is neither in argv nor in a file.
if [ -n "${PROV_SETTING_DB_USER:-}" ]; then
  PROV_SETTING_DB_PASSWORD=${PROV_SETTING_DB_PASSWORD:-}
  export PROV_SETTING_DB_PASSWORD
  psql_admin -f - >/dev/null <<'SQL'
\getenv db_user PROV_SETTING_DB_USER
\getenv db_password PROV_SETTING_DB_PASSWORD
SELECT format('CREATE ROLE %I LOGIN', :'db_user') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'db_user') \gexec
SELECT format('ALTER ROLE %I PASSWORD %L', :'db_user', :'db_password') \gexec
SQL
fi
if [ -n "${PROV_SETTING_DB_NAME:-}" ]; then
  PROV_DB_OWNER=${PROV_SETTING_DB_USER:-postgres}
  export PROV_DB_OWNER
  psql_admin -f - >/dev/null <<'SQL'
\getenv db_name PROV_SETTING_DB_NAME
\getenv db_owner PROV_DB_OWNER
SELECT format('CREATE DATABASE %I OWNER %I', :'db_name', :'db_owner') WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db_name') \gexec
SQL
fi
echo "postgres $("$bin/postgres" --version | awk '{print $3}') listening on $port (data $data)"
