#!/bin/sh
# Stops the prov cluster; removes its data unless PROV_KEEP_DATA=1. The postgresql package is
# purged only when no other cluster of the distribution exists on the host.
set -u
. "$PROV_LIB/service.sh"
svc_remove postgres
[ "${PROV_KEEP_DATA:-0}" = 1 ] || rm -rf /var/lib/prov/postgres
if [ -z "$(ls /etc/postgresql/*/ 2>/dev/null)" ]; then pkg_purge postgresql || exit 1; fi
exit 0
