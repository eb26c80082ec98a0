#!/bin/sh
set -f
. "$PROV_LIB/service.sh"
pkg_installed haproxy || exit 1
cfg=/etc/prov/haproxy/haproxy.cfg
grep -q "bind \*:${PROV_SETTING_PORT:-80}\$" "$cfg" 2>/dev/null || exit 1
IFS=,
for b in ${PROV_SETTING_BACKENDS:-127.0.0.1:8080}; do grep -qF " $b check" "$cfg" || exit 1; done
unset IFS
[ "$(grep -c '^  server ' "$cfg")" = "$(echo "${PROV_SETTING_BACKENDS:-127.0.0.1:8080}" | tr ',' '\n' | grep -c .)" ] || exit 1
svc_running haproxy || exit 1
curl -fsS -o /dev/null "http://127.0.0.1:${PROV_SETTING_MONITOR_PORT:-8404}/healthz"
