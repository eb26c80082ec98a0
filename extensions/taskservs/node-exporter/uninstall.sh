#!/bin/sh
set -u
. "$PROV_LIB/service.sh"
svc_remove node-exporter
pkg_purge prometheus-node-exporter || exit 1
rm -rf /var/lib/prov/node-exporter
exit 0
