#!/bin/sh
set -u
. "$PROV_LIB/service.sh"
svc_remove containerd
pkg_purge containerd || exit 1
rm -rf /etc/prov/containerd
[ "${PROV_KEEP_DATA:-0}" = 1 ] || rm -rf /var/lib/prov/containerd
exit 0
