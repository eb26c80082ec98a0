#!/bin/sh
# Removes only the files install.sh wrote, then the folder if that left it empty: the folder is a
# setting, so it is never removed with whatever else it holds.
set -eu
dir=${PROV_SETTING_PATH:-/etc/prov-hello}
rm -f "$dir/message" "$dir/message.tmp" "$dir/version" "$dir/ran"
rmdir "$dir" 2>/dev/null || true
