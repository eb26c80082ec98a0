#!/bin/sh
# Installs containerd from Debian packages; its own root, state and socket under /var/lib/prov.
set -eu
. "$PROV_LIB/service.sh"
pkg_install containerd
svc_disable_packaged containerd
mkdir -p /etc/prov/containerd /var/lib/prov/containerd/root /var/lib/prov/containerd/state
cat > /etc/prov/containerd/config.toml <<CONF
# managed by prov (taskserv containerd $PROV_VERSION)
version = 2
root = "/var/lib/prov/containerd/root"
state = "/var/lib/prov/containerd/state"
[grpc]
  address = "/var/lib/prov/containerd/containerd.sock"
CONF
svc_start containerd /usr/bin/containerd --config /etc/prov/containerd/config.toml
svc_wait 30 ctr --address /var/lib/prov/containerd/containerd.sock version
echo "containerd $(containerd --version | awk '{print $3}') running"
