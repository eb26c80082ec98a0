#!/bin/sh
set -u
. "$PROV_LIB/service.sh"
svc_remove haproxy
pkg_purge haproxy || exit 1
rm -rf /etc/prov/haproxy
exit 0
