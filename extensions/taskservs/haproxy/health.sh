#!/bin/sh
# Healthy when haproxy's monitor URI answers 200; prints the front page status too.
curl -fsS "http://127.0.0.1:${PROV_SETTING_MONITOR_PORT:-8404}/healthz" >/dev/null || exit 1
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${PROV_SETTING_PORT:-80}/")
echo "haproxy up; front page HTTP $code"
