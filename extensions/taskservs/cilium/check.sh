#!/bin/sh
# cilium needs a running Kubernetes control plane, which this catalog does not provide.
. "$PROV_LIB/service.sh"
prov_unsupported "cilium needs a Kubernetes control plane, which $PROV_SERVER does not run"
