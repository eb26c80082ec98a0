#!/bin/sh
set -eu
rm -rf "${PROV_SETTING_PATH:-/etc/prov-hello}"
