#!/bin/sh
# Install {{template.name}}. Idempotent: running it again converges to the same state.
# Inputs: PROV_VERSION, PROV_SETTING_* (manifest settings), PROV_SERVER, PROV_SERVER_IP, PROV_DIR
# (this folder on the server), PROV_LIB (the service helper). See docs/taskserv-authoring.md.
set -eu
. "$PROV_LIB/service.sh"
# pkg_install some-debian-package
mkdir -p /etc/{{template.name}}
printf '%s\n' "$PROV_VERSION" > /etc/{{template.name}}/version
# svc_start {{template.name}} /usr/bin/some-daemon --foreground
echo "{{template.name}} $PROV_VERSION installed on $PROV_SERVER"
