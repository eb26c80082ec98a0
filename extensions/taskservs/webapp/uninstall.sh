#!/bin/sh
set -u
. "$PROV_LIB/service.sh"
svc_remove webapp
rm -rf /opt/prov-webapp /var/lib/prov/webapp
id prov-webapp >/dev/null 2>&1 && userdel prov-webapp
exit 0
