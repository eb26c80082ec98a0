#!/bin/sh
. "$PROV_LIB/service.sh"
[ -f /opt/prov-webapp/app.py ] && cmp -s "$PROV_DIR/files/app.py" /opt/prov-webapp/app.py || exit 1
want="${PROV_SETTING_PORT:-8080} ${PROV_SETTING_DB_HOST:-127.0.0.1} ${PROV_SETTING_DB_PORT:-5432} ${PROV_SETTING_DB_NAME:-app} ${PROV_SETTING_DB_USER:-app}"
[ "$(cat /var/lib/prov/webapp/settings 2>/dev/null)" = "$want" ] || exit 1
svc_running webapp || exit 1
curl -fsS -o /dev/null "http://127.0.0.1:${PROV_SETTING_PORT:-8080}/health"
