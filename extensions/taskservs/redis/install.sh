#!/bin/sh
# Installs redis-server from Debian packages and runs it as prov daemon "redis".
set -eu
. "$PROV_LIB/service.sh"
port=${PROV_SETTING_PORT:-6379}
bind=$(printf '%s' "${PROV_SETTING_BIND:-0.0.0.0}" | tr ',' ' ')
pkg_install redis-server redis-tools
svc_disable_packaged redis-server
mkdir -p /etc/prov/redis /var/lib/prov/redis
chown redis:redis /var/lib/prov/redis
cat > /etc/prov/redis/redis.conf <<CONF
# managed by prov (taskserv redis $PROV_VERSION)
bind $bind
protected-mode no
port $port
daemonize no
supervised no
dir /var/lib/prov/redis
maxmemory ${PROV_SETTING_MAXMEMORY:-64mb}
logfile ""
CONF
chown redis:redis /etc/prov/redis/redis.conf
# A changed config needs a restart; an unchanged running one is left alone.
if svc_running redis && ! redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; then svc_stop redis; fi
if [ -f /var/lib/prov/redis/.conf.sum ] && ! cksum /etc/prov/redis/redis.conf | cmp -s - /var/lib/prov/redis/.conf.sum; then svc_stop redis; fi
cksum /etc/prov/redis/redis.conf > /var/lib/prov/redis/.conf.sum
SVC_USER=redis svc_start redis /usr/bin/redis-server /etc/prov/redis/redis.conf
redis_pong() { redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; }
svc_wait 20 redis_pong
echo "redis $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p') listening on $port"
