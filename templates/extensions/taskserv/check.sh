#!/bin/sh
# Exit 0 when {{template.name}} is already in the desired state, 1 when it is not.
set -eu
exit 1
