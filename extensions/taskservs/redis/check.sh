#!/bin/sh
# Desired state: package installed, config written, daemon running and answering PING.
. "$PROV_LIB/service.sh"
pkg_installed redis-server || exit 1
[ -f /etc/prov/redis/redis.conf ] || exit 1
grep -q "^port ${PROV_SETTING_PORT:-6379}\$" /etc/prov/redis/redis.conf || exit 1
svc_running redis || exit 1
redis-cli -p "${PROV_SETTING_PORT:-6379}" ping 2>/dev/null | grep -q PONG
