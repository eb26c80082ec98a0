#!/bin/sh
# Remove {{template.name}}. Idempotent: removing what is absent succeeds.
set -eu
echo "removing {{template.name}}"
