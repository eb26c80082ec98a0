#!/bin/sh
# Exit 0 when {{template.name}} is already in the desired state (then install.sh is not run), non-zero when not.
. "$PROV_LIB/service.sh"
[ "$(cat /etc/{{template.name}}/version 2>/dev/null)" = "$PROV_VERSION" ] || exit 1
# svc_running {{template.name}} || exit 1
exit 0
