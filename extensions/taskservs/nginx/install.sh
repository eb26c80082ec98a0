#!/bin/sh
# Installs nginx from Debian packages and serves $PROV_SETTING_ROOT on $PROV_SETTING_PORT.
set -eu
. "$PROV_LIB/service.sh"
port=${PROV_SETTING_PORT:-80}
root=${PROV_SETTING_ROOT:-/var/lib/prov/nginx/www}
pkg_install nginx
svc_disable_packaged nginx
mkdir -p /etc/prov/nginx "$root" /var/lib/prov/nginx/tmp
[ -f "$root/index.html" ] || printf '<h1>prov nginx on %s</h1>\n' "$PROV_SERVER" > "$root/index.html"
cat > /etc/prov/nginx/nginx.conf.new <<CONF
# managed by prov (taskserv nginx $PROV_VERSION)
worker_processes 1;
pid /var/lib/prov/nginx/nginx.pid;
error_log stderr;
events { worker_connections 256; }
http {
  include /etc/nginx/mime.types;
  access_log off;
  client_body_temp_path /var/lib/prov/nginx/tmp;
  server {
    listen $port;
    root $root;
    location = /healthz { return 200 "ok\n"; }
  }
}
CONF
changed=0
cmp -s /etc/prov/nginx/nginx.conf.new /etc/prov/nginx/nginx.conf || changed=1
mv /etc/prov/nginx/nginx.conf.new /etc/prov/nginx/nginx.conf
nginx -t -c /etc/prov/nginx/nginx.conf
[ "$changed" = 1 ] && svc_stop nginx
svc_start nginx /usr/sbin/nginx -c /etc/prov/nginx/nginx.conf -g 'daemon off;'
svc_wait 15 curl -fsS "http://127.0.0.1:$port/healthz"
echo "nginx serving $root on $port"
