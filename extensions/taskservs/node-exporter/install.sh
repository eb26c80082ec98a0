#!/bin/sh
set -eu
. "$PROV_LIB/service.sh"
port=${PROV_SETTING_PORT:-9100}
pkg_install prometheus-node-exporter
svc_disable_packaged prometheus-node-exporter
mkdir -p /var/lib/prov/node-exporter
if svc_running node-exporter && [ "$(cat /var/lib/prov/node-exporter/port 2>/dev/null)" != "$port" ]; then svc_stop node-exporter; fi
echo "$port" > /var/lib/prov/node-exporter/port
SVC_USER=prometheus svc_start node-exporter /usr/bin/prometheus-node-exporter "--web.listen-address=:$port"
svc_wait 20 curl -fsS -o /dev/null "http://127.0.0.1:$port/metrics"
echo "node-exporter serving /metrics on $port"
