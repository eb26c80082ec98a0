#!/bin/sh
. "$PROV_LIB/service.sh"
pkg_installed containerd || exit 1
svc_running containerd || exit 1
ctr --address /var/lib/prov/containerd/containerd.sock version >/dev/null 2>&1
