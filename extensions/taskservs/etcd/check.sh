#!/bin/sh
. "$PROV_LIB/service.sh"
pkg_installed etcd-server || exit 1
svc_running etcd || exit 1
ETCDCTL_API=3 etcdctl --endpoints "http://127.0.0.1:${PROV_SETTING_CLIENT_PORT:-2379}" endpoint health >/dev/null 2>&1
