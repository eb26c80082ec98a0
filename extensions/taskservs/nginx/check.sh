#!/bin/sh
. "$PROV_LIB/service.sh"
pkg_installed nginx || exit 1
grep -q "listen ${PROV_SETTING_PORT:-80};" /etc/prov/nginx/nginx.conf 2>/dev/null || exit 1
svc_running nginx || exit 1
curl -fsS -o /dev/null "http://127.0.0.1:${PROV_SETTING_PORT:-80}/healthz"
