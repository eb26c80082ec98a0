#!/bin/sh
# Healthy when nginx answers HTTP 200 on /healthz.
curl -fsS "http://127.0.0.1:${PROV_SETTING_PORT:-80}/healthz"
