#!/bin/sh
# Remove {{template.name}}. Idempotent: removing what is absent succeeds. PROV_KEEP_DATA=1 keeps data.
set -u
. "$PROV_LIB/service.sh"
# svc_remove {{template.name}}
# pkg_purge some-debian-package
rm -rf /etc/{{template.name}}
exit 0
