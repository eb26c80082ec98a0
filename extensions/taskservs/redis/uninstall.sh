#!/bin/sh
# Stops redis and purges the packages; PROV_KEEP_DATA=1 keeps /var/lib/prov/redis.
set -u
. "$PROV_LIB/service.sh"
svc_remove redis
pkg_purge redis-server redis-tools || exit 1
rm -rf /etc/prov/redis
[ "${PROV_KEEP_DATA:-0}" = 1 ] || rm -rf /var/lib/prov/redis
exit 0
