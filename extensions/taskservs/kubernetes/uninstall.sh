#!/bin/sh
set -u
. "$PROV_LIB/service.sh"
pkg_purge kubernetes-client || exit 1
rm -rf /etc/prov/kubernetes
exit 0
