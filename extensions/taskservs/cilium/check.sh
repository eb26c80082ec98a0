#!/bin/sh
# cilium needs a running Kubernetes control plane, which this catalog does not provide: exit 100 = unsupported here.
echo "cilium: no Kubernetes control plane on $PROV_SERVER; unsupported" >&2
exit 100
