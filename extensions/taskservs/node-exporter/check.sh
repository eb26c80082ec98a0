#!/bin/sh
. "$PROV_LIB/service.sh"
pkg_installed prometheus-node-exporter || exit 1
[ "$(cat /var/lib/prov/node-exporter/port 2>/dev/null)" = "${PROV_SETTING_PORT:-9100}" ] || exit 1
svc_running node-exporter || exit 1
curl -fsS -o /dev/null "http://127.0.0.1:${PROV_SETTING_PORT:-9100}/metrics"
