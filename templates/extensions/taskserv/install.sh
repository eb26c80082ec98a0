#!/bin/sh
# Install {{template.name}}. Idempotent; inputs: PROV_VERSION, PROV_SETTING_*. See docs/taskserv-authoring.md.
set -eu
echo "installing {{template.name}} ${PROV_VERSION:-}"
