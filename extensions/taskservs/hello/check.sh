#!/bin/sh
# Desired state: the message and version files hold the requested values.
dir=${PROV_SETTING_PATH:-/etc/prov-hello}
[ "$(cat "$dir/message" 2>/dev/null)" = "${PROV_SETTING_MESSAGE:-hello from prov}" ] || exit 1
[ "$(cat "$dir/version" 2>/dev/null)" = "$PROV_VERSION" ] || [ "$PROV_ACTION" = status ] || [ "$PROV_ACTION" = remove ] || exit 1
[ -s "$dir/ran" ]
