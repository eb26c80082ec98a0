#!/bin/sh
# Kubernetes client tools on top of containerd + etcd (Debian 12 packages no control plane).
set -eu
. "$PROV_LIB/service.sh"
pkg_install kubernetes-client
mkdir -p /etc/prov/kubernetes
printf 'version=%s\netcd=http://127.0.0.1:2379\nruntime=/var/lib/prov/containerd/containerd.sock\n' "$PROV_VERSION" > /etc/prov/kubernetes/info
kubectl version --client 2>/dev/null | head -n 1
