#!/bin/sh
set -u
. "$PROV_LIB/service.sh"
svc_remove etcd
pkg_purge etcd-server etcd-client || exit 1
[ "${PROV_KEEP_DATA:-0}" = 1 ] || rm -rf /var/lib/prov/etcd
exit 0
