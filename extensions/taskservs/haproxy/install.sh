#!/bin/sh
# Installs haproxy from Debian packages; balances $PROV_SETTING_PORT over $PROV_SETTING_BACKENDS
# (comma-separated host:port); /healthz on $PROV_SETTING_MONITOR_PORT answers when it runs.
set -eu
# The backends list is split on commas; no word of it is ever a glob pattern.
set -f
. "$PROV_LIB/service.sh"
port=${PROV_SETTING_PORT:-80}
mon=${PROV_SETTING_MONITOR_PORT:-8404}
pkg_install haproxy
svc_disable_packaged haproxy
mkdir -p /etc/prov/haproxy
{
  echo "# managed by prov (taskserv haproxy $PROV_VERSION)"
  echo "global"
  echo "  maxconn 256"
  echo "defaults"
  echo "  mode http"
  echo "  timeout connect 5s"
  echo "  timeout client 30s"
  echo "  timeout server 30s"
  echo "frontend monitor"
  echo "  bind *:$mon"
  echo "  monitor-uri /healthz"
  echo "frontend web"
  echo "  bind *:$port"
  echo "  default_backend app"
  echo "backend app"
  echo "  balance roundrobin"
  echo "  option httpchk GET /health"
  i=0
  IFS=,
  for b in ${PROV_SETTING_BACKENDS:-127.0.0.1:8080}; do
    i=$((i + 1))
    echo "  server app$i $b check"
  done
  unset IFS
} > /etc/prov/haproxy/haproxy.cfg.new
haproxy -c -q -f /etc/prov/haproxy/haproxy.cfg.new
changed=0
cmp -s /etc/prov/haproxy/haproxy.cfg.new /etc/prov/haproxy/haproxy.cfg || changed=1
mv /etc/prov/haproxy/haproxy.cfg.new /etc/prov/haproxy/haproxy.cfg
[ "$changed" = 1 ] && svc_stop haproxy
svc_start haproxy /usr/sbin/haproxy -W -db -f /etc/prov/haproxy/haproxy.cfg
svc_wait 15 curl -fsS "http://127.0.0.1:$mon/healthz"
echo "haproxy on $port -> ${PROV_SETTING_BACKENDS:-127.0.0.1:8080}"
