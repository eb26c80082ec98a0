#!/bin/sh
# Installs etcd from Debian packages and runs a single-member cluster named after the server.
set -eu
. "$PROV_LIB/service.sh"
cport=${PROV_SETTING_CLIENT_PORT:-2379}
pport=${PROV_SETTING_PEER_PORT:-2380}
ip=${PROV_SERVER_IP:-127.0.0.1}
pkg_install etcd-server etcd-client
svc_disable_packaged etcd
mkdir -p /var/lib/prov/etcd
chmod 700 /var/lib/prov/etcd
svc_start etcd /usr/bin/etcd --name "$PROV_SERVER" --data-dir /var/lib/prov/etcd/data \
  --listen-client-urls "http://0.0.0.0:$cport" --advertise-client-urls "http://$ip:$cport" \
  --listen-peer-urls "http://127.0.0.1:$pport" --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
  --initial-cluster "$PROV_SERVER=http://127.0.0.1:$pport"
svc_wait 30 env ETCDCTL_API=3 etcdctl --endpoints "http://127.0.0.1:$cport" endpoint health
echo "etcd $(etcd --version | sed -n 's/^etcd Version: //p') serving on $cport"
