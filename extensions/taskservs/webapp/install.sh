#!/bin/sh
# Installs the webapp (Python standard library + psql) as daemon "webapp" talking to PostgreSQL at
# $PROV_SETTING_DB_HOST:$PROV_SETTING_DB_PORT. The database password goes to a 0600 .pgpass of
# the service user (the service needs it across restarts).
set -eu
. "$PROV_LIB/service.sh"
port=${PROV_SETTING_PORT:-8080}
pkg_install python3-minimal postgresql-client
id prov-webapp >/dev/null 2>&1 || useradd --system --no-create-home --home-dir /var/lib/prov/webapp --shell /usr/sbin/nologin prov-webapp
mkdir -p /opt/prov-webapp /var/lib/prov/webapp
cp "$PROV_DIR/files/app.py" /opt/prov-webapp/app.py
# .pgpass fields escape '\' and ':' with a backslash (the password may hold both).
pgpass_field() { printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/:/\\:/g'; }
umask 077
printf '%s:%s:%s:%s:%s\n' "$(pgpass_field "${PROV_SETTING_DB_HOST:-127.0.0.1}")" "${PROV_SETTING_DB_PORT:-5432}" "$(pgpass_field "${PROV_SETTING_DB_NAME:-app}")" \
  "$(pgpass_field "${PROV_SETTING_DB_USER:-app}")" "$(pgpass_field "${PROV_SETTING_DB_PASSWORD:-}")" > /var/lib/prov/webapp/.pgpass
umask 022
chown -R prov-webapp /var/lib/prov/webapp
want="$port ${PROV_SETTING_DB_HOST:-127.0.0.1} ${PROV_SETTING_DB_PORT:-5432} ${PROV_SETTING_DB_NAME:-app} ${PROV_SETTING_DB_USER:-app}"
[ "$(cat /var/lib/prov/webapp/settings 2>/dev/null)" = "$want" ] || svc_stop webapp
echo "$want" > /var/lib/prov/webapp/settings
SVC_USER=prov-webapp SVC_DIR=/var/lib/prov/webapp svc_start webapp env HOME=/var/lib/prov/webapp PGPASSFILE=/var/lib/prov/webapp/.pgpass \
  PORT="$port" DB_HOST="${PROV_SETTING_DB_HOST:-127.0.0.1}" DB_PORT="${PROV_SETTING_DB_PORT:-5432}" \
  DB_NAME="${PROV_SETTING_DB_NAME:-app}" DB_USER="${PROV_SETTING_DB_USER:-app}" /usr/bin/python3 /opt/prov-webapp/app.py
svc_wait 30 curl -fsS -o /dev/null "http://127.0.0.1:$port/health"
echo "webapp on $port using postgres at ${PROV_SETTING_DB_HOST:-127.0.0.1}:${PROV_SETTING_DB_PORT:-5432}"
