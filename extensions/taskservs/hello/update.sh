#!/bin/sh
# Writes $PROV_SETTING_PATH/message and runs a command (records the host name and kernel).
set -eu
dir=${PROV_SETTING_PATH:-/etc/prov-hello}
mkdir -p "$dir"
printf '%s\n' "${PROV_SETTING_MESSAGE:-hello from prov}" > "$dir/message.tmp" && mv "$dir/message.tmp" "$dir/message"
printf '%s\n' "$PROV_VERSION" > "$dir/version"
uname -n > "$dir/ran"
echo "hello $PROV_VERSION written to $dir on $(cat "$dir/ran")"
