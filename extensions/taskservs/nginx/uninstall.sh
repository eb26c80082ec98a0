#!/bin/sh
set -u
. "$PROV_LIB/service.sh"
svc_remove nginx
pkg_purge nginx nginx-common || exit 1
rm -rf /etc/prov/nginx
[ "${PROV_KEEP_DATA:-0}" = 1 ] || rm -rf /var/lib/prov/nginx
exit 0
